"""Install hints for the optional dependencies, written so that the line they give works.

usagetally is installed from a clone or a built wheel (README, "Install"), not from a package
index, so ``pip install 'usagetally[otel]'`` would fail. A hint names the requirements of the
extra itself, which are on PyPI, so the line works however usagetally was installed; the
extras in ``pyproject.toml`` list the same requirements (``tests/test_install.py`` checks that
they agree).
"""

from __future__ import annotations

__all__ = ["EXTRAS", "install_hint"]

EXTRAS: dict[str, tuple[str, ...]] = {
    "anthropic": ("anthropic>=2.12",),
    "otel": ("opentelemetry-api>=1.30",),
}
"""The requirements of each optional extra, as ``pyproject.toml`` declares them."""


def install_hint(extra: str) -> str:
    """Return the install line for an extra's requirements.

    Args:
        extra: The extra's name, a key of :data:`EXTRAS`.

    Returns:
        Such as ``install it with: pip install 'anthropic>=2.12' (usagetally's anthropic
        extra)``.

    """
    requirements = " ".join(f"'{requirement}'" for requirement in EXTRAS[extra])
    return f"install it with: pip install {requirements} (usagetally's {extra} extra)"
