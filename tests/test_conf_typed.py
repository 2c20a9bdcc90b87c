"""conf.AppSettings: one typed property per key of DEFAULTS (the type checker sees each setting's
type), read as before (the user's value over the default, import strings imported, re-read on
setting_changed)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from wechat_oauth.conf import DEFAULTS, IMPORT_STRINGS, AppSettings, app_settings


def _setting_properties() -> set[str]:
    return {
        name for name, value in vars(AppSettings).items() if isinstance(value, property) and name.isupper()
    }


def test_every_default_has_a_typed_property_and_no_other() -> None:
    properties = _setting_properties()
    assert properties == set(DEFAULTS)
    for name in properties:
        assert vars(AppSettings)[name].fget.__annotations__.get("return"), name


@pytest.mark.parametrize("name", sorted(set(DEFAULTS) - IMPORT_STRINGS))
def test_each_property_answers_the_default_or_the_users_value(name: str) -> None:
    with override_settings(WECHAT_OAUTH={}):
        assert getattr(app_settings, name) == DEFAULTS[name]
    with override_settings(WECHAT_OAUTH={name: "sentinel"}):
        assert getattr(app_settings, name) == "sentinel"


def test_import_strings_are_imported_and_reloaded() -> None:
    from wechat_oauth.budget import remote_addr
    from wechat_oauth.users import create_user

    with override_settings(WECHAT_OAUTH={}):
        assert app_settings.CREATE_USER is create_user
        assert app_settings.CLIENT_KEY is remote_addr
    with override_settings(WECHAT_OAUTH={"CLIENT_KEY": "wechat_oauth.users.create_user"}):
        assert app_settings.CLIENT_KEY is create_user


def test_unknown_names_and_custom_defaults() -> None:
    for name in ("NOPE", "_private"):
        with pytest.raises(AttributeError, match=f"Invalid WECHAT_OAUTH setting: '{name}'"):
            getattr(app_settings, name)
    custom, extra = AppSettings({**DEFAULTS, "EXTRA": 1}), "EXTRA"
    assert getattr(custom, extra) == 1
