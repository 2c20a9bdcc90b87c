"""The control API under ``/_fake/``: drive a fake in another process (JSON in, JSON out)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from wechat_oauth.testing.state import FakeState, Fault, JsCodeRequest, WeComCodeRequest
from wechat_oauth.testing.web import BadRequest, Request, Response


class ControlViews:
    """``/_fake/codes``, ``js_codes``, ``session_keys``, ``apps``, ``stats``, ``faults``,
    ``latency``, ``clock``, ``reset``, ``config``; WeCom's ``wecom/corps``, ``wecom/codes``,
    ``wecom/invalidate``."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self._routes: dict[tuple[str, str], Callable[[Request], Any]] = {
            ("POST", "/_fake/codes"): self._issue_code,
            ("POST", "/_fake/js_codes"): self._issue_js_code,
            ("GET", "/_fake/session_keys"): self._session_key,
            ("POST", "/_fake/apps"): self._add_app,
            ("POST", "/_fake/wecom/corps"): lambda r: {"secret": state.add_corp(**r.json())},
            ("POST", "/_fake/wecom/codes"): lambda r: {
                "code": state._issue_wecom_code(WeComCodeRequest(**r.json()))
            },
            ("POST", "/_fake/wecom/invalidate"): self._invalidate_wecom_token,
            ("GET", "/_fake/stats"): lambda r: state.stats(r.query.get("code")),
            ("POST", "/_fake/faults"): self._add_fault,
            ("POST", "/_fake/latency"): self._set_latency,
            ("POST", "/_fake/clock"): self._advance,
            ("POST", "/_fake/reset"): self._reset,
            ("GET", "/_fake/config"): self._config,
        }

    def handle(self, request: Request) -> Response:
        route = self._routes.get((request.method, request.path))
        if route is None:
            known = any(path == request.path for _, path in self._routes)
            return Response.json(
                {"error": "method not allowed" if known else "not found"}, 405 if known else 404
            )
        try:
            return Response.json(route(request), content_type="application/json")
        except (BadRequest, KeyError, TypeError, ValueError) as exc:
            return Response.json({"error": f"{type(exc).__name__}: {exc}"}, 400, "application/json")

    def _issue_code(self, request: Request) -> dict[str, str]:
        # An unknown field is a TypeError of issue_code: answered 400 like any bad argument.
        return {"code": self.state.issue_code(**request.json())}

    def _issue_js_code(self, request: Request) -> dict[str, str]:
        return {"code": self.state._issue_js_code(JsCodeRequest(**request.json()))}

    def _session_key(self, request: Request) -> dict[str, Any]:
        app_id, openid = request.query["app_id"], request.query["openid"]
        if not self.state.knows_app(app_id):
            return {"app_known": False, "session_key": None}
        return {"app_known": True, "session_key": self.state.session_key_of(app_id, openid)}

    def _invalidate_wecom_token(self, request: Request) -> dict[str, bool]:
        self.state.invalidate_wecom_token(**request.json())
        return {"ok": True}

    def _add_app(self, request: Request) -> dict[str, str]:
        return {"app_secret": self.state.add_app(**request.json())}

    def _add_fault(self, request: Request) -> dict[str, bool]:
        self.state.add_fault(Fault(**request.json()))
        return {"ok": True}

    def _set_latency(self, request: Request) -> dict[str, bool]:
        self.state.set_latency(float(request.json()["seconds"]))
        return {"ok": True}

    def _advance(self, request: Request) -> dict[str, bool]:
        self.state.advance(float(request.json()["advance"]))
        return {"ok": True}

    def _reset(self, request: Request) -> dict[str, bool]:
        self.state.reset()
        return {"ok": True}

    def _config(self, request: Request) -> dict[str, Any]:
        return {
            "app_id": self.state.app_id,
            "app_secret": self.state.app_secret,
            "apps": [asdict(app) for app in self.state.apps()],
            "wecom_agents": [asdict(agent) for agent in self.state.wecom_agents()],
            "code_ttl": self.state.code_ttl,
            "latency": self.state.latency,
            "auto_approve": self.state.auto_approve,
        }
