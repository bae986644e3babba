"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
from hypothesis import settings

# `make quick` (pytest --hypothesis-profile=quick): properties run 10 examples instead of
# Hypothesis' 100, for a fast loop. Properties with their own max_examples keep it.
settings.register_profile("quick", max_examples=10)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test on both backends.

    Pinned rather than left to anyio's default fixture, which since anyio 4.12 covers only
    the installed backends: a missing trio must fail the trio runs, not drop them.
    """
    backend: str = request.param
    return backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run the long fuzzing campaign of tests/test_fuzz.py (100,000 examples a property)",
    )
