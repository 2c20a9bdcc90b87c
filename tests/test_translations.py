"""Every message of the app has its Simplified Chinese translation, compiled."""

from __future__ import annotations

import re
from pathlib import Path

from django.utils import translation

import wechat_oauth

CATALOG = Path(wechat_oauth.__file__).parent / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
#: Messages that read the same in Chinese (identifiers WeChat itself names so).
SAME_IN_CHINESE = {"openid", "unionid", "errcode", "errmsg"}


def catalog_entries() -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of every entry but the header, single-line or wrapped."""
    entries = []
    for block in CATALOG.read_text(encoding="utf-8").split("\n\n"):
        msgid = _joined(block, "msgid")
        if msgid:
            entries.append((msgid, _joined(block, r"msgstr(?:\[0\])?"), "#, fuzzy" in block))
    return entries


def _joined(block: str, keyword: str) -> str:
    match = re.search(rf'^{keyword} "(.*)"\n((?:".*"\n?)*)', block + "\n", re.M)
    if match is None:
        return ""
    return match.group(1) + "".join(re.findall(r'^"(.*)"$', match.group(2), re.M))


def test_every_message_is_translated_and_none_is_fuzzy():
    entries = catalog_entries()

    assert len(entries) > 100
    assert [msgid for msgid, msgstr, fuzzy in entries if not msgstr or fuzzy] == []


def test_the_compiled_catalog_has_every_translation():
    with translation.override("zh-hans"):
        untranslated = [
            msgid
            for msgid, _, _ in catalog_entries()
            if "%" not in msgid
            and "\\" not in msgid
            and msgid not in SAME_IN_CHINESE
            and translation.gettext(msgid) == msgid
        ]

    assert untranslated == []


def source_messages() -> set[str]:
    """The constant strings the package's Python code marks for translation (``_()``,
    ``gettext``, ``gettext_lazy``, ``ngettext``'s singular) and its templates' ``translate``
    tags: what ``makemessages`` extracts, without needing GNU gettext installed."""
    import ast

    root = Path(wechat_oauth.__file__).parent
    names = {"_", "gettext", "gettext_lazy", "ngettext", "pgettext"}
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in names
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    for path in root.rglob("*.html"):
        found.update(re.findall(r'{%\s*translate\s+"([^"]+)"', path.read_text(encoding="utf-8")))
    return found


def test_the_catalog_has_every_message_of_the_code():
    in_catalog = {msgid.replace('\\"', '"').replace("\\n", "\n") for msgid, _, _ in catalog_entries()}

    assert sorted(source_messages() - in_catalog) == []
