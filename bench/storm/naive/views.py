"""WeChat login the way tutorials write it: the baseline the guarded site is measured against.

* login: a random ``state`` kept in the session, redirect to WeChat's page: the authorize page
  of the Official Account (``mp``), the qrconnect page (QR login) of the website app (``web``);
* callback: pop the state from the session and compare, exchange the code with
  ``requests.get`` (same timeouts as the app's client); for the website app (snsapi_login)
  fetch the profile (``/sns/userinfo``), as QR-login tutorials do; ``get_or_create`` the user
  by unionid when WeChat sends one (WeChat's docs: it names a person across the apps of one
  Open Platform account), else by openid; log in.

Nothing here is wrong by a tutorial's standard; it just assumes one callback per code.
"""

import secrets
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect

TIMEOUT = (3.05, 5.0)


def _failed(answer):
    return HttpResponseBadRequest(f"WeChat login failed ({answer['errcode']}), please try again.")


def login_view(request, app="mp"):
    conf = settings.NAIVE_WECHAT["APPS"][app]
    state = secrets.token_hex(16)
    request.session["wechat_state"] = state
    params = {
        "appid": conf["APP_ID"],
        "redirect_uri": request.build_absolute_uri(conf["CALLBACK"]),
        "response_type": "code",
        "scope": conf["SCOPE"],
        "state": state,
    }
    return redirect(f"{conf['PAGE_URL']}?{urlencode(params)}#wechat_redirect")


def callback(request, app="mp"):
    conf = settings.NAIVE_WECHAT["APPS"][app]
    api = settings.NAIVE_WECHAT["API_BASE_URL"]
    code = request.GET.get("code")
    state = request.GET.get("state")
    if not code or not state or state != request.session.pop("wechat_state", None):
        return HttpResponseBadRequest("Invalid state, please log in again.")
    answer = requests.get(
        f"{api}/sns/oauth2/access_token",
        params={"appid": conf["APP_ID"], "secret": conf["APP_SECRET"], "code": code,
                "grant_type": "authorization_code"},
        timeout=TIMEOUT,
    ).json()
    if "errcode" in answer:
        return _failed(answer)
    nickname = ""
    if conf["SCOPE"] == "snsapi_login":
        profile = requests.get(
            f"{api}/sns/userinfo",
            params={"access_token": answer["access_token"], "openid": answer["openid"]},
            timeout=TIMEOUT,
        ).json()
        if "errcode" in profile:
            return _failed(profile)
        nickname = profile.get("nickname", "")[:150]
    key = answer.get("unionid") or answer["openid"]
    user, _ = get_user_model().objects.get_or_create(username=f"wx_{key}",
                                                     defaults={"first_name": nickname})
    login(request, user)
    return redirect(settings.LOGIN_REDIRECT_URL)
