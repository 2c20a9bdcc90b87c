"""Sphinx configuration of django-wechat-oauth's documentation.

Build (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

project = "django-wechat-oauth"
author = "The django-wechat-oauth authors"
copyright = "the django-wechat-oauth authors"
# The package's version, read without importing it (importing needs Django settings).
_match = re.search(
    r'^__version__\s*=\s*["\']([^"\']+)["\']',
    (ROOT / "wechat_oauth" / "__init__.py").read_text(encoding="utf-8"),
    re.M,
)
release = _match.group(1) if _match else "unknown"
version = release

extensions: list[str] = []
root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
# docs/benchmarks/*.inc are included by 09-benchmarks.rst, not documents of their own.
exclude_patterns = ["_build", "benchmarks"]
language = "en"
highlight_language = "python"
# Figures of CJK text (网页授权, 企业微信) and the fence's ASCII diagrams render as written.
smartquotes = False

try:
    import furo  # noqa: F401
except ImportError:  # the docs extra installs furo; any Sphinx still builds
    html_theme = "alabaster"
else:
    html_theme = "furo"
html_title = f"django-wechat-oauth {release}"
html_static_path: list[str] = []
