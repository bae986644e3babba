"""The install lines the README and the error messages give, run as a user would run them.

The wheel is built and installed into a fresh virtual environment that sees nothing of this
checkout; there it is imported and its command line replays an example. The requirements that
the install hints and ``make demo`` name are checked against ``pyproject.toml``, and resolved
against the package index (``pip install --dry-run``) so that each hint is an install that
works.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from usagetally._install import EXTRAS, install_hint

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def _run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def _readme_lines(prefix: str) -> list[str]:
    return [line.split("#")[0].strip() for line in README.splitlines() if line.startswith(prefix)]


def test_install_hints_name_the_extras_of_pyproject() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    for extra, requirements in EXTRAS.items():
        assert list(requirements) == extras[extra], extra
        hint = install_hint(extra)
        assert hint.startswith("install it with: pip install ")
        assert "usagetally[" not in hint  # usagetally is on no package index


def test_make_demo_installs_exactly_the_runtime_dependencies() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^DEMO_DEPS := (.*)$", makefile, re.MULTILINE)
    assert match is not None
    assert shlex.split(match.group(1)) == _pyproject()["project"]["dependencies"]


def test_the_hinted_requirements_resolve_on_the_index() -> None:
    requirements = [r for reqs in EXTRAS.values() for r in reqs]
    _run(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", *requirements)


def test_the_readme_wheel_lines_install_a_working_usagetally(tmp_path: Path) -> None:
    # The README's lines, with the clone's path and the wheel's name filled in.
    [build] = _readme_lines("pip wheel ")
    [install] = _readme_lines("pip install dist/")
    assert build == "pip wheel --no-deps -w dist /path/to/usagetally"
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT)
    [wheel] = dist.glob("usagetally-*.whl")
    assert install.startswith("pip install dist/usagetally-")
    assert wheel.name == install.removeprefix("pip install dist/")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # The outer pip, run for the fresh venv: the same install, without bootstrapping a pip.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", wheel)

    elsewhere = tmp_path / "project"
    elsewhere.mkdir()
    probe = (
        "import sys, usagetally, usagetally.testing; "
        "print(usagetally.__version__, usagetally.__file__, "
        "sorted(m for m in ('anthropic', 'opentelemetry') if m in sys.modules))"
    )
    version, where, optional = _run(python, "-c", probe, cwd=elsewhere).stdout.split(" ", 2)
    assert version == _pyproject()["project"]["version"]
    assert Path(where).is_relative_to(venv)  # not this checkout
    assert optional.strip() == "[]"

    replay = _run(venv / "bin" / "usagetally", "replay", ROOT / "examples" / "plain.sse")
    assert "plain.sse" in replay.stdout
    assert re.search(r"\b21\s+42\b", replay.stdout), replay.stdout  # input 21, output 42
    assert "Traceback" not in replay.stderr

    # Without the extra, the hint it prints is the one checked above.
    no_sdk = subprocess.run(
        [python, "-c", "import usagetally.testing as t; t.anthropic_client(b'')"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert no_sdk.returncode == 1
    assert install_hint("anthropic") in no_sdk.stderr
