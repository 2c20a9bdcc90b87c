"""The demo's drop-in modes: the same demo site, also set up django-allauth's or
python-social-auth's way, logging in through this app's drop-in for that library.

``python manage.py demo --drop-in allauth`` (or ``social``), or the environment variable
``WECHAT_OAUTH_DEMO_DROP_IN=allauth`` (which a child process reads; the setting
``DEMO_DROP_IN`` is its value). The library's apps, middleware, URLs and provider or backend
settings are added to the demo's (demo_project/settings.py); the provider (allauth's
``weixin``) or backend (social-auth's ``weixinapp``) is the demo's Official Account, on the same
fake WeChat at ``/fake-wechat/``, and the home page gets a button that starts the login the
library's way. Unset: the plain demo, which needs nothing but this package.

Settings-free at import time: ``demo_project.settings`` imports it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass

#: The environment variable naming the drop-in mode (``allauth``, ``social``; unset: none).
DROP_IN_ENV = "WECHAT_OAUTH_DEMO_DROP_IN"


@dataclass(frozen=True)
class DropIn:
    """One drop-in mode of the demo."""

    #: The mode's name: ``--drop-in NAME``, ``WECHAT_OAUTH_DEMO_DROP_IN=NAME``.
    name: str
    #: The library, as its users call it.
    library: str
    #: The extra of this package that installs the library (``pip install -e ".[extra]"``).
    extra: str
    #: The top-level packages the mode imports.
    packages: tuple[str, ...]
    #: The drop-in's module in this package.
    module: str
    #: The provider (allauth) or backend (social-auth) name the login goes through.
    provider: str
    #: The authentication backend a login through the library leaves in the session.
    session_backend: str
    #: The URL name (and arguments) of the library's callback, where the drop-in's codes arrive.
    callback: tuple[str, tuple[str, ...]]
    #: The template of the home page's login button.
    button_template: str

    @property
    def button(self) -> str:
        return f"Log in through {self.library} (drop-in)"

    @property
    def provider_label(self) -> str:
        """What it logs in through, as the library names it."""
        return f"{'provider' if self.name == 'allauth' else 'backend'} {self.provider}"

    @property
    def install(self) -> str:
        return f'pip install -e ".[{self.extra}]"'


DROP_INS: dict[str, DropIn] = {
    "allauth": DropIn(
        name="allauth",
        library="django-allauth",
        extra="allauth",
        packages=("allauth",),
        module="wechat_oauth.contrib.allauth",
        provider="weixin",
        session_backend="allauth.account.auth_backends.AuthenticationBackend",
        callback=("weixin_callback", ()),
        button_template="demo/drop_in_allauth.html",
    ),
    "social": DropIn(
        name="social",
        library="python-social-auth",
        extra="social",
        packages=("social_django", "social_core"),
        module="wechat_oauth.contrib.social",
        provider="weixinapp",
        session_backend="wechat_oauth.contrib.social.backends.WeixinOAuth2APP",
        callback=("social:complete", ("weixinapp",)),
        button_template="demo/drop_in_social.html",
    ),
}


def requested(environ: Mapping[str, str] = os.environ) -> DropIn | None:
    """The mode the environment asks for, or None (the plain demo); ValueError for an unknown
    one."""
    name = environ.get(DROP_IN_ENV, "").strip()
    if not name:
        return None
    if name not in DROP_INS:
        raise ValueError(
            f"{DROP_IN_ENV}={name!r}: the demo's drop-in modes are "
            f"{', '.join(DROP_INS)} (unset: the plain demo)."
        )
    return DROP_INS[name]


def missing(drop_in: DropIn) -> str | None:
    """Why ``drop_in`` cannot run here (its library is not installed), with the command that
    installs it; None if it can."""
    absent = [package for package in drop_in.packages if _not_importable(package)]
    if not absent:
        return None
    return (
        f"The demo's {drop_in.name} drop-in mode needs {drop_in.library}, which is not "
        f"installed here (no module named {absent[0]!r}). Install it with this package's "
        f"{drop_in.extra} extra, from the clone: {drop_in.install}"
    )


def _not_importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is None
    except (ImportError, ValueError):  # a parent that fails to import; a module without a spec
        return True
