"""The documentation does not drift from the code, builds without a warning, and the README
renders on PyPI.

* docs/02-configuration.rst documents every key of ``wechat_oauth.conf.DEFAULTS`` exactly
  once, with its default as a Python literal equal to the one in DEFAULTS, and no key that
  DEFAULTS lacks;
* docs/06-operations.rst documents every system check id of wechat_oauth/checks.py's table;
* ``python -m sphinx -W`` builds the docs (skipped without Sphinx: the ``docs`` extra);
* README.rst renders as PyPI renders it, has no Sphinx-only roles and keeps the Quickstart's
  two commands (CI runs them).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wechat_oauth.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "02-configuration.rst"
OPERATIONS = DOCS / "06-operations.rst"
README = ROOT / "README.rst"

#: A setting's entry on the configuration page: its name as a definition-list term at the start
#: of a line, then ``Default: ``<Python literal>`` as the first line of its description.
ENTRY = re.compile(r"^``(?P<key>[A-Z][A-Z0-9_]*)``\n {4}Default: ``(?P<default>.*?)``", re.M)
#: Any "Default:" line of a definition: each must belong to an entry of the form above.
DEFAULT_LINE = re.compile(r"^ {4}Default: ", re.M)
CHECK_ID = re.compile(r"\bwechat_oauth\.[EWI]\d{3}\b")

#: The Quickstart's commands, byte for byte (.ci/run and the README's readers run them).
QUICKSTART = (
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python manage.py demo",
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/pytest',
)


def documented_settings() -> list[tuple[str, str]]:
    return [
        (match["key"], match["default"])
        for match in ENTRY.finditer(CONFIGURATION.read_text(encoding="utf-8"))
    ]


def test_every_setting_is_documented_once() -> None:
    keys = [key for key, _ in documented_settings()]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicated, f"documented more than once: {duplicated}"
    missing = sorted(set(DEFAULTS) - set(keys))
    assert not missing, f"in DEFAULTS, not documented in {CONFIGURATION.name}: {missing}"
    unknown = sorted(set(keys) - set(DEFAULTS))
    assert not unknown, f"documented in {CONFIGURATION.name}, not in DEFAULTS: {unknown}"


def test_every_default_line_belongs_to_a_setting() -> None:
    """A "Default:" the entry pattern does not see (a typo in the term, an indent) would
    escape the two tests around it."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    assert len(DEFAULT_LINE.findall(text)) == len(documented_settings())


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_documented_default_is_the_default(key: str) -> None:
    defaults = dict(documented_settings())
    if key not in defaults:
        pytest.fail(f"{key} is not documented in {CONFIGURATION.name}")
    try:
        documented = ast.literal_eval(defaults[key])
    except (ValueError, SyntaxError):
        pytest.fail(f"{key}: the documented default {defaults[key]!r} is not a Python literal")
    assert documented == DEFAULTS[key], f"{key}: documented {documented!r}, DEFAULTS {DEFAULTS[key]!r}"
    assert type(documented) is type(DEFAULTS[key]), f"{key}: {type(documented)} vs {type(DEFAULTS[key])}"


def check_ids_of_checks_module() -> set[str]:
    """The ids of the table in wechat_oauth/checks.py's docstring (the checks' reference)."""
    source = (ROOT / "wechat_oauth" / "checks.py").read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    return {
        line.split()[0]
        for line in docstring.splitlines()
        if CHECK_ID.fullmatch(line.split()[0] if line.split() else "")
    }


def test_every_system_check_is_documented() -> None:
    ids = check_ids_of_checks_module()
    assert len(ids) > 30, "checks.py's table was not found"
    documented = set(CHECK_ID.findall(OPERATIONS.read_text(encoding="utf-8")))
    assert not sorted(ids - documented), f"not on {OPERATIONS.name}: {sorted(ids - documented)}"
    assert not sorted(documented - ids), f"on {OPERATIONS.name}, not in checks.py: {sorted(documented - ids)}"


def test_sphinx_builds_without_warnings(tmp_path: Path) -> None:
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("Sphinx is not installed (pip install -e '.[docs]')")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "html" / "index.html").exists()


def test_readme_keeps_the_quickstart_commands() -> None:
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()]
    for command in QUICKSTART:
        assert command in lines, f"the Quickstart lost: {command}"


def test_readme_renders_on_pypi() -> None:
    """No Sphinx-only role or directive, no relative image; and it renders as PyPI's
    readme_renderer renders it (docutils alone when readme_renderer is not installed)."""
    text = README.read_text(encoding="utf-8")
    sphinx_only = re.findall(
        r":(?:doc|ref|class|func|meth|mod|attr|data|setting):`|"
        r"^\.\. (?:toctree|include|automodule)::",
        text,
        re.M,
    )
    assert not sphinx_only, sphinx_only
    for target in re.findall(r"^\.\. (?:image|figure):: (\S+)", text, re.M):
        assert target.startswith("https://"), f"relative image: {target}"
    if importlib.util.find_spec("readme_renderer") is not None:
        from readme_renderer.rst import render

        assert render(text, stream=sys.stderr) is not None, "readme_renderer refused README.rst"
        return
    if importlib.util.find_spec("docutils") is None:
        pytest.skip("neither readme_renderer nor docutils is installed")
    from docutils.core import publish_string

    # PyPI's settings: halt on warnings, no file insertion, no raw directive.
    publish_string(
        text,
        writer_name="html",
        settings_overrides={
            "halt_level": 2,
            "report_level": 2,
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "warning_stream": sys.stderr,
        },
    )
