"""WeChat login the way tutorials write it: the baseline the guarded site is measured against.

* login: a random ``state`` kept in the session, redirect to WeChat's page: the authorize page
  of the Official Account (``mp``), the qrconnect page (QR login) of the website app (``web``);
* callback: pop the state from the session and compare, exchange the code with
  ``requests.get`` (same timeouts as the app's client); for the website app (snsapi_login)
  fetch the profile (``/sns/userinfo``), as QR-login tutorials do; ``get_or_create`` the user
  by unionid when WeChat sends one (WeChat's docs: it names a person across the apps of one
  Open Platform account), else by openid; log in;
* Mini Program session (``mini_session``): the JSON body's code straight to
  ``/sns/jscode2session``, the user as above, a signed token back (Django's signing) with the
  openid, unionid and user id; ``Authorization: Bearer <token>`` then names the user on
  ``/whoami/`` (:func:`whoami`);
* WeCom (``wecom_login``, ``wecom_callback``): the in-app authorisation inside WeCom
  (``wxwork`` in the User-Agent), else the SSO page; the callback as above with the app token
  (``/cgi-bin/gettoken``, kept per process until it expires) and ``/cgi-bin/auth/getuserinfo``;
  the user ``wecom_<userid>``.

Nothing here is wrong by a tutorial's standard; it just assumes one callback (one POST) per
code.

(The ``phase`` blocks of the callback mark its parts for the storm's per-phase profile,
bench/storm/phases.py; they do nothing unless the request asks for it. A profiled request
with ``X-Storm-Floor`` exchanges its code inside the bare fence of models.py: the profile's
floor, what exactly-once costs at the least.)
"""

import hashlib
import json
import secrets
import threading
import time
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.core import signing
from django.db import router, transaction
from django.http import HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt

from bench.storm import serverside
from bench.storm.naive.models import CodeFence
from bench.storm.phases import FLOOR_META, phase, switch

TIMEOUT = (3.05, 5.0)
TOKEN_SALT = "naive-mini-session"


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
    with phase("state_check"):
        valid = code and state and state == request.session.pop("wechat_state", None)
    if not valid:
        return HttpResponseBadRequest("Invalid state, please log in again.")
    answer = _exchange(
        request,
        code,
        lambda: requests.get(
            f"{api}/sns/oauth2/access_token",
            params={
                "appid": conf["APP_ID"],
                "secret": conf["APP_SECRET"],
                "code": code,
                "grant_type": "authorization_code",
            },
            timeout=TIMEOUT,
        ).json(),
    )
    if "errcode" in answer:
        return _failed(answer)
    nickname = ""
    if conf["SCOPE"] == "snsapi_login":
        with phase("profile_fetch"):
            profile = requests.get(
                f"{api}/sns/userinfo",
                params={"access_token": answer["access_token"], "openid": answer["openid"]},
                timeout=TIMEOUT,
            ).json()
        if "errcode" in profile:
            return _failed(profile)
        nickname = profile.get("nickname", "")[:150]
    key = answer.get("unionid") or answer["openid"]
    with phase("identity"):
        user, _ = get_user_model().objects.get_or_create(
            username=f"wx_{key}", defaults={"first_name": nickname}
        )
    with phase("login_session"):
        login(request, user)
    with phase("response"):
        return redirect(settings.LOGIN_REDIRECT_URL)


def _exchange(request, code, send):
    """WeChat's answer to ``send()``, the code exchange. For the per-phase profile's floor
    (``X-Storm-Floor``, bench/storm/phases.py) inside the bare fence: the code's row inserted
    in a transaction before the call, WeChat's answer written to it and committed after it,
    marked as the guard's own phases are."""
    if FLOOR_META not in request.META:
        with phase("upstream"):
            return send()
    with phase("fence_claim"), transaction.atomic(using=router.db_for_write(CodeFence)):
        fence = CodeFence.objects.create(code_hash=hashlib.sha256(code.encode()).hexdigest())
        with phase("upstream"):
            answer = send()
        switch("outcome_commit")
        fence.answer = json.dumps(answer)
        fence.save(update_fields=["answer"])
    return answer


# -- Mini Program -----------------------------------------------------------------------------


@csrf_exempt
def mini_session(request, app="mini"):
    """POST {"code": ...}: jscode2session, the user, a token."""
    conf = settings.NAIVE_WECHAT["APPS"][app]
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    try:
        code = json.loads(request.body)["code"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "no code"}, status=400)
    answer = requests.get(
        f"{settings.NAIVE_WECHAT['API_BASE_URL']}/sns/jscode2session",
        params={
            "appid": conf["APP_ID"],
            "secret": conf["APP_SECRET"],
            "js_code": code,
            "grant_type": "authorization_code",
        },
        timeout=TIMEOUT,
    ).json()
    if answer.get("errcode"):
        return JsonResponse({"error": f"WeChat login failed ({answer['errcode']})"}, status=400)
    key = answer.get("unionid") or answer["openid"]
    user, _ = get_user_model().objects.get_or_create(username=f"wx_{key}")
    token = signing.dumps({"user": user.pk}, salt=TOKEN_SALT)
    return JsonResponse(
        {"token": token, "openid": answer["openid"], "unionid": answer.get("unionid", ""), "user_id": user.pk}
    )


def whoami(request):
    """/whoami/, where ``Authorization: Bearer <mini_session's token>`` names its user."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            pk = signing.loads(token.strip(), salt=TOKEN_SALT)["user"]
        except (signing.BadSignature, KeyError, TypeError):
            pk = None
        user = get_user_model().objects.filter(pk=pk).first() if pk else None
        if user is not None:
            request.user = user
    return serverside.whoami(request)


# -- WeCom ------------------------------------------------------------------------------------

_wecom_tokens = {}  # (corp id, agent id) -> (token, expires at): per process
_wecom_lock = threading.Lock()


def _wecom_token(conf):
    key = (conf["APP_ID"], conf["AGENT_ID"])
    with _wecom_lock:
        token, expires_at = _wecom_tokens.get(key, ("", 0.0))
    if token and expires_at > time.monotonic():
        return token
    answer = requests.get(
        f"{settings.NAIVE_WECHAT['API_BASE_URL']}/cgi-bin/gettoken",
        params={"corpid": conf["APP_ID"], "corpsecret": conf["APP_SECRET"]},
        timeout=TIMEOUT,
    ).json()
    if answer.get("errcode"):
        return None
    with _wecom_lock:
        _wecom_tokens[key] = (
            answer["access_token"],
            time.monotonic() + int(answer.get("expires_in", 7200)) - 60,
        )
    return answer["access_token"]


def wecom_login(request, app="corp"):
    conf = settings.NAIVE_WECHAT["APPS"][app]
    state = secrets.token_hex(16)
    request.session["wechat_state"] = state
    redirect_uri = request.build_absolute_uri(conf["CALLBACK"])
    if "wxwork" in request.headers.get("User-Agent", "").lower():
        params = {
            "appid": conf["APP_ID"],
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": conf["SCOPE"],
            "state": state,
            "agentid": conf["AGENT_ID"],
        }
        return redirect(f"{conf['PAGE_URL']}?{urlencode(params)}#wechat_redirect")
    params = {
        "login_type": "CorpApp",
        "appid": conf["APP_ID"],
        "agentid": conf["AGENT_ID"],
        "redirect_uri": redirect_uri,
        "state": state,
    }
    return redirect(f"{conf['SSO_URL']}?{urlencode(params)}")


def wecom_callback(request, app="corp"):
    conf = settings.NAIVE_WECHAT["APPS"][app]
    code = request.GET.get("code")
    state = request.GET.get("state")
    if not code or not state or state != request.session.pop("wechat_state", None):
        return HttpResponseBadRequest("Invalid state, please log in again.")
    token = _wecom_token(conf)
    if token is None:
        return HttpResponseBadRequest("WeCom login failed (gettoken), please try again.")
    answer = requests.get(
        f"{settings.NAIVE_WECHAT['API_BASE_URL']}/cgi-bin/auth/getuserinfo",
        params={"access_token": token, "code": code},
        timeout=TIMEOUT,
    ).json()
    if answer.get("errcode"):
        return _failed(answer)
    userid = answer.get("userid") or answer["openid"]
    user, _ = get_user_model().objects.get_or_create(username=f"wecom_{userid}")
    login(request, user)
    return redirect(settings.LOGIN_REDIRECT_URL)
