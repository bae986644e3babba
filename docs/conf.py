"""Sphinx configuration for the usagetally docs."""

import importlib.util

project = "usagetally"
copyright = "2026, the usagetally developers"
author = "the usagetally developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "furo"
html_static_path = ["_static"]
html_title = "usagetally"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_attr_annotations = True
nitpicky = False

# usagetally.prices imports genai-prices, which needs Python 3.11+: where it is not
# installed, its page is built from a stand-in.
if importlib.util.find_spec("genai_prices") is None:
    autodoc_mock_imports = ["genai_prices"]
