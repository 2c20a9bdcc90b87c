"""The load generator's browser: one cookie jar (``requests.Session``) per browser.

Every request is sent without following redirects and timed in this process (from just before
it is sent to its last byte read); the SQL count comes back in ``X-Storm-SQL`` when asked for;
of a 4xx/5xx answer, the start of its text as a reader sees it; of a JSON answer (a Mini
Program's session endpoint), the object too. Every request of a browser (and of its tabs)
carries one User-Agent: WeChat's in-app browser's, a desktop browser's for a website app's QR
login, WeCom's (``wxwork``) for a WeCom login, a Mini Program's for its wx.request.
WeChat's aborted first callback is :func:`wechat_oauth.testing.wechat_client.send_and_abort`:
the request goes out over a raw socket, which is closed ~5 ms later without reading the answer
(the server still handles it); a Mini Program's aborted POST the same, with its JSON body.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests

from bench.storm.serverside import COUNT_HEADER, CPU_HEADER, SQL_HEADER, SQL_TIME_HEADER, TIME_HEADER
from wechat_oauth.testing.wechat_client import WECHAT_USER_AGENT as USER_AGENT

TIMEOUT = 60.0


@dataclass
class Hit:
    """One request and what came back (status 0: no answer)."""

    role: str
    url: str
    started: float
    elapsed: float
    status: int = 0
    location: str = ""
    sql: int | None = None
    server_ms: float | None = None
    cpu_ms: float | None = None
    sql_ms: float | None = None
    body: str = ""
    error: str = ""
    #: A JSON object answered (the Mini Program's session endpoint), else None.
    answer: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 400


def page_text(body: str) -> str:
    """What a reader sees of an HTML page (its title and text, no markup, styles or scripts),
    whitespace collapsed; a body that is not HTML as it is."""
    text = re.sub(r"<(style|script)\b.*?</\1>|<[^>]*>", " ", body, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(text).split())


def with_query(url: str, extra: str) -> str:
    """``url`` without its fragment, with ``extra`` (encoded) appended to the query."""
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, extra]))
    return urlunsplit(parts._replace(query=query, fragment=""))


def on_netloc(url: str, netloc: str) -> str:
    return urlunsplit(urlsplit(url)._replace(netloc=netloc))


class Browser:
    """``user_agent``: WeChat's in-app browser by default (an Official Account's login); a
    website app's QR login runs in a desktop browser."""

    def __init__(self, *, count_sql: bool, cookies: Any = None, user_agent: str = USER_AGENT) -> None:
        self.count_sql = count_sql
        self.user_agent = user_agent
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        if count_sql:
            self.session.headers[COUNT_HEADER] = "1"
        if cookies is not None:
            self.session.cookies.update(cookies)

    def copy(self) -> Browser:
        """A tab of the same browser: a new connection, the same cookies."""
        return Browser(count_sql=self.count_sql, cookies=self.session.cookies, user_agent=self.user_agent)

    def close(self) -> None:
        self.session.close()

    def get(self, url: str, role: str) -> Hit:
        return self._send("GET", url, role)

    def post_json(self, url: str, body: bytes, role: str) -> Hit:
        """POST ``body`` (JSON, as wx.request sends it)."""
        return self._send("POST", url, role, data=body, headers={"Content-Type": "application/json"})

    def post_form(self, url: str, fields: dict[str, str], role: str) -> Hit:
        """POST ``fields`` as a form (a login page's button)."""
        return self._send("POST", url, role, data=fields)

    def _send(self, method: str, url: str, role: str, **options: Any) -> Hit:
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, allow_redirects=False, timeout=TIMEOUT, **options)
        except requests.RequestException as exc:
            return Hit(role, url, started, time.perf_counter() - started, error=type(exc).__name__)
        elapsed = time.perf_counter() - started
        headers = response.headers
        sql, server, cpu, sql_ms = (
            headers.get(name) for name in (SQL_HEADER, TIME_HEADER, CPU_HEADER, SQL_TIME_HEADER)
        )
        body = "" if response.status_code < 400 else page_text(response.text)[:160]
        answer = None
        if headers.get("Content-Type", "").startswith("application/json"):
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            answer = parsed if isinstance(parsed, dict) else None
        return Hit(
            role,
            url,
            started,
            elapsed,
            response.status_code,
            headers.get("Location", ""),
            int(sql) if sql else None,
            float(server) if server else None,
            float(cpu) if cpu else None,
            float(sql_ms) if sql_ms else None,
            body,
            answer=answer,
        )

    def whoami(
        self,
        base_url: str,
        *,
        token: str | None = None,
        read: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> str | None:
        """Who the site says is logged in: by this browser's cookies, or by a Mini Program's
        session ``token`` (``Authorization: Bearer``). ``read``: what of the site's /whoami/
        answer names them (default: its ``user``; a library site's: bench/storm/libraries.py)."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            response = self.session.get(f"{base_url}/whoami/", timeout=TIMEOUT, headers=headers)
            if response.status_code != 200:
                return "!error"
            answer = response.json()
            return read(answer) if read is not None else answer.get("user")
        except (requests.RequestException, ValueError, AttributeError, KeyError, TypeError):
            return "!error"


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released at one instant; their results (exceptions as values)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except Exception as exc:  # reported as the result
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT + 10)
    return results


def authorize_url_for(login_location: str, person: str, who: str = "fake_person") -> str:
    """The authorize (or qrconnect) URL of a login view's redirect, answered at once by the fake
    for ``person`` (its openid in the app named by the URL's appid, and its unionid); ``who``
    the page's parameter naming them (``fake_userid``: a WeCom member, ``person`` their
    userid)."""
    return with_query(login_location, urlencode({who: person}))
