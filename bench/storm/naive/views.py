"""WeChat login the way tutorials write it: the baseline the guarded site is measured against.

* login: a random ``state`` kept in the session, redirect to WeChat's authorize page;
* callback: pop the state from the session and compare, exchange the code with
  ``requests.get`` (same timeouts as the app's client), ``get_or_create`` the user, log in.

Nothing here is wrong by a tutorial's standard; it just assumes one callback per code.
"""

import secrets
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect


def login_view(request):
    conf = settings.NAIVE_WECHAT
    state = secrets.token_hex(16)
    request.session["wechat_state"] = state
    params = {
        "appid": conf["APP_ID"],
        "redirect_uri": request.build_absolute_uri("/wechat/callback/"),
        "response_type": "code",
        "scope": "snsapi_base",
        "state": state,
    }
    return redirect(f"{conf['AUTHORIZE_URL']}?{urlencode(params)}#wechat_redirect")


def callback(request):
    conf = settings.NAIVE_WECHAT
    code = request.GET.get("code")
    state = request.GET.get("state")
    if not code or not state or state != request.session.pop("wechat_state", None):
        return HttpResponseBadRequest("Invalid state, please log in again.")
    answer = requests.get(
        f"{conf['API_BASE_URL']}/sns/oauth2/access_token",
        params={"appid": conf["APP_ID"], "secret": conf["APP_SECRET"], "code": code,
                "grant_type": "authorization_code"},
        timeout=(3.05, 5.0),
    ).json()
    if "errcode" in answer:
        return HttpResponseBadRequest(f"WeChat login failed ({answer['errcode']}), please try again.")
    user, _ = get_user_model().objects.get_or_create(username=f"wx_{answer['openid']}")
    login(request, user)
    return redirect(settings.LOGIN_REDIRECT_URL)
