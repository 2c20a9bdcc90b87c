"""Drive a fake WeChat running in another process through its ``/_fake/`` control API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import requests

from wechat_oauth.testing.base import FakeWeChatBase
from wechat_oauth.testing.state import CodeRequest, JsCodeRequest, WeComCodeRequest


class FakeWeChatControlError(RuntimeError):
    """The fake refused a control request (bad arguments) or did not answer."""


class RemoteFakeWeChat(FakeWeChatBase):
    """A handle on a fake already listening at ``base_url`` (asks it for appid and secret).

    What the fake refuses (a bad fault, a code for an unknown app, an app changed) raises
    :class:`FakeWeChatControlError`; :meth:`app_secret_of` an unknown app, ``ValueError``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        self._app_id = app_id
        self._app_secret = app_secret
        self.timeout = timeout

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("the fake is not started")
        return self._base_url

    @property
    def app_id(self) -> str:
        return self._configured("_app_id")

    @property
    def app_secret(self) -> str:
        return self._configured("_app_secret")

    def _configured(self, attribute: str) -> str:
        """``self.<attribute>``, asking the fake for its config first if it is not known yet."""
        if getattr(self, attribute) is None:
            self._load_config()
        value: str | None = getattr(self, attribute)
        assert value is not None
        return value

    def _load_config(self) -> None:
        config = self._call("GET", "config")
        self._app_id, self._app_secret = config["app_id"], config["app_secret"]

    def _call(
        self,
        method: str,
        name: str,
        payload: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        url = f"{self.base_url}/_fake/{name}"
        try:
            response = requests.request(method, url, json=payload, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise FakeWeChatControlError(f"{method} {url}: {exc}") from exc
        if response.status_code != 200:
            raise FakeWeChatControlError(f"{method} {url}: HTTP {response.status_code} {response.text[:200]}")
        return response.json()

    def start(self) -> None:
        """Check the fake answers (and learn its appid and secret)."""
        self._load_config()

    def stop(self) -> None:
        """Nothing to release: the fake belongs to someone else."""

    def add_app(self, app_id: str, app_secret: str | None = None, *, unionid: bool = True) -> str:
        payload = {"app_id": app_id, "app_secret": app_secret, "unionid": unionid}
        return str(self._call("POST", "apps", payload)["app_secret"])

    def app_secret_of(self, app_id: str) -> str:
        for app in self._call("GET", "config")["apps"]:
            if app["app_id"] == app_id:
                return str(app["app_secret"])
        raise ValueError(f"unknown app {app_id!r}: add it with add_app() first")

    def _issue_code(self, request: CodeRequest) -> str:
        return str(self._call("POST", "codes", asdict(request))["code"])

    def _issue_js_code(self, request: JsCodeRequest) -> str:
        return str(self._call("POST", "js_codes", asdict(request))["code"])

    def session_key_of(self, app_id: str, openid: str) -> str | None:
        answer = self._call("GET", "session_keys", params={"app_id": app_id, "openid": openid})
        if not answer["app_known"]:
            raise ValueError(f"unknown app {app_id!r}: add it with add_app() first")
        return None if answer["session_key"] is None else str(answer["session_key"])

    def add_corp(self, corp_id: str, agent_id: int | str, secret: str | None = None) -> str:
        payload = {"corp_id": corp_id, "agent_id": str(agent_id), "secret": secret}
        return str(self._call("POST", "wecom/corps", payload)["secret"])

    def wecom_secret_of(self, corp_id: str, agent_id: int | str) -> str:
        for agent in self._call("GET", "config")["wecom_agents"]:
            if (agent["corp_id"], agent["agent_id"]) == (corp_id, str(agent_id).strip()):
                return str(agent["secret"])
        raise ValueError(f"unknown agent {agent_id} of corp {corp_id!r}: add it with add_corp()")

    def invalidate_wecom_token(self, corp_id: str, agent_id: int | str) -> None:
        self._call("POST", "wecom/invalidate", {"corp_id": corp_id, "agent_id": str(agent_id)})

    def _issue_wecom_code(self, request: WeComCodeRequest) -> str:
        payload = asdict(request) | {"agent_id": str(request.agent_id)}
        return str(self._call("POST", "wecom/codes", payload)["code"])

    def stats(self, code: str | None = None) -> dict[str, Any]:
        return dict(self._call("GET", "stats", params={"code": code} if code is not None else None))

    def _add_fault(self, fields: dict[str, Any]) -> None:
        self._call("POST", "faults", fields)

    def set_latency(self, seconds: float) -> None:
        self._call("POST", "latency", {"seconds": seconds})

    def advance(self, seconds: float) -> None:
        self._call("POST", "clock", {"advance": seconds})

    def reset(self) -> None:
        self._call("POST", "reset")
