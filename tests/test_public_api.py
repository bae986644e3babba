"""Tests of the public namespace: ``__all__``, docstrings, ``py.typed``, a pure core."""

from __future__ import annotations

import importlib.resources
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import usagetally
import usagetally.otel

ROOT = Path(__file__).resolve().parent.parent
ALL = list(usagetally.__all__)


def _defined_in_usagetally(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "usagetally" or module.startswith("usagetally.")


def _public_classes_and_functions() -> list[tuple[str, Any]]:
    return [
        (name, obj)
        for name, obj in sorted(vars(usagetally).items())
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and _defined_in_usagetally(obj)
    ]


# --- __all__ ---------------------------------------------------------------------------------


def test_all_is_sorted() -> None:
    assert sorted(ALL) == ALL


def test_all_has_no_duplicates() -> None:
    assert len(set(ALL)) == len(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_name_in_all_exists(name: str) -> None:
    assert hasattr(usagetally, name)


def test_every_public_class_and_function_is_in_all() -> None:
    missing = [name for name, _ in _public_classes_and_functions() if name not in ALL]
    assert missing == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from usagetally import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(ALL)


def _pyproject() -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        tomllib = pytest.importorskip("tomli")
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return data


def test_version_matches_pyproject() -> None:
    assert usagetally.__version__ == _pyproject()["project"]["version"]


# --- Docstrings ------------------------------------------------------------------------------


def _documented_items() -> list[Any]:
    """Every public class and function of the namespace, and the public methods of the classes."""
    items = []
    for name in ALL:
        obj = getattr(usagetally, name, None)
        if isinstance(obj, types.GenericAlias):
            # A type alias such as UsageHook (Python 3.10's inspect.isclass() says True for
            # one): its docstring is an attribute docstring, read by Sphinx, not __doc__.
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        items.append(pytest.param(obj, id=name))
        if not inspect.isclass(obj):
            continue
        for attr, member in vars(obj).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, property):
                items.append(pytest.param(member, id=f"{name}.{attr}"))
    return items


def test_module_has_a_docstring() -> None:
    assert (usagetally.__doc__ or "").strip()


@pytest.mark.parametrize("obj", _documented_items())
def test_public_item_has_a_docstring(obj: Any) -> None:
    # __doc__ itself, not inspect.getdoc(): a docstring inherited from a base class does not
    # document what this class or method adds.
    assert (obj.__doc__ or "").strip()


def test_the_docstring_checks_cover_methods() -> None:
    ids = {param.id for param in _documented_items()}
    assert "make_converter" in ids
    assert "UsageValidationError.prefixed" in ids


# --- Packaging -------------------------------------------------------------------------------


def test_py_typed_is_in_the_package() -> None:
    marker = importlib.resources.files("usagetally").joinpath("py.typed")
    assert marker.is_file()


def test_py_typed_is_shipped_in_the_wheel() -> None:
    # The wheel ships the whole package directory, py.typed included, and nothing excludes it.
    config = _pyproject()
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "src/usagetally" in wheel["packages"]
    excluded = [
        *wheel.get("exclude", []),
        *config["tool"]["hatch"]["build"].get("exclude", []),
    ]
    assert not [pattern for pattern in excluded if "py.typed" in pattern or "*.typed" in pattern]
    assert (ROOT / "src" / "usagetally" / "py.typed").is_file()
    assert "Typing :: Typed" in config["project"]["classifiers"]


# --- A pure core -----------------------------------------------------------------------------

PURE_MODULES = [
    "_sse",
    "_accumulator",
    "_models",
    "_converter",
    "_errors",
    "_figures",
    "_feeding",
    "_sync",
    "_install",
    "_sdk_events",
    "_cost",
]

# Modules that mean I/O, an event loop or an async framework. threading is not in the list:
# cattrs imports it (and the pure core uses no thread).
FORBIDDEN = [
    "anyio",
    "asyncio",
    "trio",
    "sniffio",
    "socket",
    "ssl",
    "selectors",
    "subprocess",
    "http.client",
    "urllib.request",
    "httpx",
    "httpcore",
    "h11",
    "concurrent.futures",
    "multiprocessing",
]

# Runs in a fresh interpreter. The package is installed as an empty stand-in, so that
# importing usagetally.<module> runs that module and what it imports, but not
# usagetally/__init__.py (which imports the async shell on purpose).
_PROBE = """
import importlib, importlib.util, json, sys, types
forbidden = json.loads(sys.argv[2])
at_start = sorted(m for m in forbidden if m in sys.modules)
spec = importlib.util.find_spec("usagetally")
stand_in = types.ModuleType("usagetally")
stand_in.__path__ = list(spec.submodule_search_locations)
sys.modules["usagetally"] = stand_in
import attrs, cattrs  # the core's dependencies, measured apart
by_dependencies = sorted(m for m in forbidden if m in sys.modules)
importlib.import_module(sys.argv[1])
print(json.dumps({
    "at_start": at_start,
    "dependencies": by_dependencies,
    "after": sorted(m for m in forbidden if m in sys.modules and m not in by_dependencies),
}))
"""

# What attrs and cattrs import themselves. On Python 3.10 attrs imports platform, which there
# imports subprocess (and so selectors) at the top; from 3.11 platform imports it only inside
# the functions that run commands. Neither is used: the core still does no I/O.
DEPENDENCIES_MAY_BRING = {"subprocess", "selectors"} if sys.version_info < (3, 11) else set()


def _probe(module: str) -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(FORBIDDEN)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_core_module_imports_no_io(name: str) -> None:
    report = _probe(f"usagetally.{name}")
    assert report["at_start"] == []
    assert report["after"] == []
    assert set(report["dependencies"]) <= DEPENDENCIES_MAY_BRING


def test_the_purity_probe_sees_io_imports() -> None:
    # The probe must be able to fail: importing asyncio drags in socket, selectors, ssl...
    report = _probe("asyncio")
    assert report["at_start"] == []
    assert {"asyncio", "socket", "selectors"} <= {*report["after"], *report["dependencies"]}
    assert {"asyncio", "socket"} <= set(report["after"])


_OPTIONAL = ["anthropic", "httpx2", "pydantic", "opentelemetry", "pytest", "genai_prices"]


def test_importing_the_package_imports_no_optional_dependency() -> None:
    # The SDK interop, the testing kit and the OpenTelemetry module import what they need
    # only when called: a user without the extras can import everything but usagetally.otel.
    code = (
        "import json, sys; import usagetally, usagetally.testing; "
        f"print(json.dumps(sorted(m for m in {_OPTIONAL!r} if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


# --- Reference docs --------------------------------------------------------------------------

_DOCS = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        *(("usagetally", name) for name in ALL if name != "__version__"),
        *(("usagetally.otel", name) for name in usagetally.otel.__all__),
    ],
)
def test_public_name_has_a_reference_entry(module: str, name: str) -> None:
    # Each name has its own autodoc directive on some page of docs/.
    assert re.search(rf"^\.\. auto\w+:: {re.escape(module)}\.{name}$", _DOCS, re.MULTILINE)


def test_the_testing_kit_is_documented_whole() -> None:
    # usagetally.testing is documented by automodule, which takes the names in its __all__.
    assert re.search(r"^\.\. automodule:: usagetally\.testing\n   :members:$", _DOCS, re.MULTILINE)


def test_the_async_layer_is_imported_on_first_use() -> None:
    # `import usagetally` leaves anyio, the async layer and the worker out until one of
    # their names is read (the package's __getattr__); __all__ and dir() list them anyway.
    code = (
        "import json, sys, usagetally; "
        "before = [m for m in ('anyio', 'usagetally._aio', 'usagetally._worker') "
        "if m in sys.modules]; "
        "listed = all(n in dir(usagetally) for n in usagetally.__all__); "
        "worker = usagetally.UsageWorker.__module__; "
        "print(json.dumps([before, listed, worker, 'anyio' in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == [[], True, "usagetally._worker", True]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        usagetally.nothing  # noqa: B018


_LOADED_LATER = [
    "logging",
    "decimal",
    "anyio",
    "usagetally._cost",
    "usagetally._figures",
    "usagetally._sync",
    "usagetally._feeding",
    "usagetally._anthropic",
]


def test_import_loads_only_what_feeding_bytes_needs() -> None:
    # What `import usagetally` defers (the package docstring lists it), and that each deferred
    # name is the very object its module defines once read; the default converter is built
    # when first read, and a stream that logs nothing never imports logging.
    code = (
        "import json, sys, usagetally; "
        f"before = [m for m in {_LOADED_LATER!r} if m in sys.modules]; "
        "built = 'converter' in vars(usagetally); "
        "acc = usagetally.UsageAccumulator(); "
        "acc.feed(open('examples/plain.sse', 'rb').read()); acc.finish(); "
        f"fed = [m for m in {_LOADED_LATER!r} if m in sys.modules]; "
        "import usagetally._cost as c, usagetally._figures as f, usagetally._converter as v; "
        "same = [usagetally.billed_cost is c.billed_cost, usagetally.UsageTotals is f.UsageTotals, "
        "usagetally.converter is v.default_converter() is v.converter]; "
        "print(json.dumps([before, built, fed, same]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=ROOT,
    )
    before, built, fed, same = json.loads(result.stdout)
    assert before == []
    assert built is False
    # Reading a stream needs the figures (the top-level check) and, through them, nothing else.
    assert set(fed) <= {"usagetally._figures"}
    assert same == [True, True, True]
