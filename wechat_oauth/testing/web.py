"""Minimal WSGI request/response objects for the fake (standard library only)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

#: The Content-Type WeChat's API answers with.
WECHAT_JSON = "application/json; encoding=utf-8"
MAX_BODY = 1 << 20


class BadRequest(Exception):
    """The request cannot be handled (answered 400 with the message)."""


class Request:
    """The parts of a WSGI environ the fake reads."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        #: Where the app is mounted, without a trailing slash ("" at the root).
        self.script_name = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        self.path = str(environ.get("PATH_INFO", "")).rstrip("/") or "/"
        self.query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        self._body: bytes | None = None

    def url_for(self, path: str) -> str:
        """An absolute path to ``path`` of this app, under its mount point."""
        return f"{self.script_name}{path}"

    @property
    def body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get("CONTENT_LENGTH") or 0)
            except ValueError as exc:
                raise BadRequest("bad Content-Length") from exc
            if length > MAX_BODY:
                raise BadRequest("body too large")
            self._body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        return self._body

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise BadRequest("body is not JSON") from exc
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data


@dataclass
class Response:
    """Status, body and the few headers the fake sends."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    location: str | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, content_type: str = WECHAT_JSON) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, content_type)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"))

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", "text/html; charset=utf-8", location)

    @property
    def status_line(self) -> str:
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Unknown"
        return f"{self.status} {phrase}"

    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", "no-store"),
        ]
        if self.location is not None:
            headers.append(("Location", self.location))
        return headers


def wechat_error(errcode: int, errmsg: str) -> dict[str, Any]:
    """WeChat's error body: the message carries a fresh request id, as live answers do."""
    return {"errcode": errcode, "errmsg": f"{errmsg}, rid: {new_rid()}"}


def new_rid() -> str:
    """A request id shaped like WeChat's (``6541f2a3-0b61c2f3-2e4b5f5d``)."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def add_query(url: str, params: list[tuple[str, str]] | str) -> str:
    """``url`` with ``params`` appended to its query string (its own query is kept as is)."""
    parts = urlsplit(url)
    extra = params if isinstance(params, str) else urlencode(params)
    return urlunsplit(parts._replace(query="&".join(filter(None, [parts.query, extra]))))
