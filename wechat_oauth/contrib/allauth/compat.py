"""What the drop-in relies on in django-allauth beyond its provider API, in one place.

Everything else it uses is what allauth documents for writing a provider (``OAuth2Provider``,
``OAuth2Adapter``, ``OAuth2LoginView``, ``sociallogin_from_response``) and for finishing a
login (``allauth.socialaccount.helpers.complete_social_login``, ``render_authentication_error``).
Two things are allauth's internal conventions; tests/test_contrib_allauth.py
(``test_allauth_internals_still_have_the_shape_the_drop_in_relies_on``) checks both against the
installed allauth and fails loudly the day either changes:

* **The state dict.** allauth hands its completion what the login start knew as
  ``SocialLogin.state``: ``Provider.stash_redirect_state`` writes ``process``, ``data``, any
  extra keyword (``headless``) and ``next``; ``flows.login`` reads ``process``,
  ``SocialLogin.get_redirect_url`` ``next``, ``SocialLogin.is_headless`` ``headless``. The
  session store under it (``allauth.socialaccount.internal.statekit``) changed shape between
  65.19 and 65.20 (``(state, time)`` became ``(state, time, provider id)``, and its functions
  took keyword-only arguments); the drop-in never touches that store (its state travels, signed,
  in the callback URL), so only the dict's keys matter: :func:`allauth_state` builds it.
* **The unique constraints** that make a concurrent first login lose with an IntegrityError
  (rolled back and tried again, :mod:`.completion`) instead of making a second user or token:
  :data:`UNIQUE_TOGETHER`.
"""

from __future__ import annotations

from typing import Any

#: The keys of allauth's state dict the drop-in carries from the login start to the callback.
STATE_KEYS = ("process", "next", "data", "headless")

#: Model name -> the fields allauth makes unique together, which the drop-in's race safety needs.
UNIQUE_TOGETHER = {
    "SocialAccount": ("provider", "uid"),
    "SocialToken": ("app", "account"),
}


def allauth_state(
    *, process: str, next_url: str | None = None, data: Any = None, headless: bool = False
) -> dict[str, Any]:
    """The state dict as ``Provider.stash_redirect_state`` builds it for these arguments."""
    state: dict[str, Any] = {"process": process, "data": data}
    if headless:
        state["headless"] = True
    if next_url:
        state["next"] = next_url
    return state
