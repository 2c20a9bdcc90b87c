"""Real Django server processes and a scripted "browser" for the end-to-end tests.

* :func:`running_servers` starts instances of the test project (``runserver --noreload``,
  threaded) on free ports with ``DJANGO_SETTINGS_MODULE=tests.server_settings`` and kills them
  on exit. Each writes its log to a file: :meth:`LiveServer.log_text`.
* :class:`Browser` is a cookie jar (a ``requests.Session``) with the steps of a WeChat login:
  the login view, WeChat's authorize page (the fake's ``fake_openid=`` shortcut), callbacks.
* :func:`send_and_abort` sends a request over a raw socket and hangs up without reading the
  answer, as WeChat's client does before it re-sends a callback.
* :class:`Tally` records every response a user would see, and what went wrong.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urldefrag, urlencode, urlsplit, urlunsplit

import requests

from tests import concurrency, services
from tests.services import CONFIG_VARIABLE
from wechat_oauth.flow import OAUTH_PARAMETERS
from wechat_oauth.testing.process import stop_process
from wechat_oauth.testing.web import add_query
from wechat_oauth.testing.wechat_client import (  # noqa: F401  (send_and_abort re-exported)
    WECHAT_USER_AGENT,
    send_and_abort,
)

ROOT = Path(__file__).resolve().parent.parent
#: The re-send parameters of the origin article (oauth-40029-origin.md).
RESEND_QUERY = "uin=MTMyMjE0NDU%3D&key=63e987ba88ddfb44&pass_ticket=SISrTjV8ln27168AZM%2FsFXkc2yp5i2lm"
TIMEOUT = 20


# -- servers -------------------------------------------------------------------------------------


@dataclass
class LiveServer:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    #: Serve through uvicorn (tests/asgi.py) instead of runserver (WSGI).
    asgi: bool = False
    #: Extra environment variables of the server process.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def log_text(self) -> str:
        return services.read_log(self.log_path)

    def start(self, config: dict[str, Any]) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.server_settings",
            CONFIG_VARIABLE: json.dumps(config),
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        if self.asgi:
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "django",
                "runserver",
                self.netloc,
                "--noreload",
                "--skip-checks",
            ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = TIMEOUT) -> None:
        assert self.process is not None
        services.wait_until_answering(
            self.process,
            f"{self.url}/whoami/",
            name=f"server {self.name}",
            log_path=self.log_path,
            timeout=timeout,
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)


@contextlib.contextmanager
def running_servers(
    names: list[str], config: dict[str, Any], log_dir: Path
) -> Iterator[dict[str, LiveServer]]:
    """Instances of the test project named ``names``, ready; all stopped on exit."""
    servers = {name: LiveServer(name, services.free_port(), log_dir / f"server-{name}.log") for name in names}
    try:
        for server in servers.values():
            server.start(config)
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


# -- URLs ----------------------------------------------------------------------------------------


def on_server(url: str, server: LiveServer) -> str:
    """``url`` with its host:port replaced by ``server``'s."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=server.netloc))


def with_query(url: str, extra: str) -> str:
    """``url`` (fragment dropped) with ``extra`` (an encoded query) appended."""
    return add_query(urldefrag(url).url, extra)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def oauth_parameters_in(url: str) -> list[str]:
    """Which of WeChat's callback parameters ``url`` still carries."""
    query = query_of(url)
    return [name for name in OAUTH_PARAMETERS if name in query]


# -- the browser ---------------------------------------------------------------------------------


class Browser:
    """One WeChat in-app browser: a cookie jar and WeChat's User-Agent (which its aborted and
    re-sent callbacks share). Every response it receives is recorded in ``tally``."""

    def __init__(self, tally: Tally, cookies: requests.cookies.RequestsCookieJar | None = None) -> None:
        self.tally = tally
        self.session = requests.Session()
        self.session.headers["User-Agent"] = WECHAT_USER_AGENT
        if cookies is not None:
            self.session.cookies.update(cookies)

    def copy(self) -> Browser:
        """Another browser starting with this one's cookies (a parallel request of one tab)."""
        return Browser(self.tally, self.session.cookies)

    @property
    def session_cookie(self) -> str | None:
        return self.session.cookies.get("sessionid")

    def get(self, url: str, step: str) -> requests.Response:
        """GET without following redirects; a 4xx/5xx or no answer is a user-visible failure."""
        try:
            response = self.session.get(url, allow_redirects=False, timeout=TIMEOUT)
        except requests.RequestException as exc:
            self.tally.fail(step, url, f"no answer: {exc!r}")
            raise
        self.tally.saw(step, url, response)
        return response

    def start_login(self, server: LiveServer, next_url: str = "/whoami/") -> str:
        """The authorize URL the login view sends the browser to (fragment dropped)."""
        response = self.get(f"{server.url}/wechat/login/?{urlencode({'next': next_url})}", "login view")
        assert response.status_code == 302, response.status_code
        return with_query(response.headers["Location"], "")

    def authorize(self, authorize_url: str, openid: str) -> str:
        """WeChat's answer to the authorize URL: the callback URL with a fresh code."""
        response = self.get(with_query(authorize_url, urlencode({"fake_openid": openid})), "authorize")
        assert response.status_code == 302, response.status_code
        return response.headers["Location"]

    def whoami(self, server: LiveServer) -> dict[str, Any]:
        response = self.get(f"{server.url}/whoami/", "whoami")
        return response.json() if response.status_code == 200 else {}


def run_together(calls: list[Callable[[], Any]], timeout: float = TIMEOUT) -> list[Any]:
    """Run ``calls`` in threads released at one instant; their results (or exceptions)."""
    return [value for _, value in concurrency.run_together(calls, timeout)]


# -- what the users saw --------------------------------------------------------------------------


@dataclass
class Tally:
    """Every response a user saw in one scenario, and the failures among them."""

    scenario: str
    responses: int = 0
    logins: int = 0
    failures: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def saw(self, step: str, url: str, response: requests.Response) -> None:
        with self._lock:
            self.responses += 1
            if response.status_code >= 400:
                body = " ".join(response.text.split())[:300]
                self.failures.append(f"{step}: {response.status_code} for {_path(url)}: {body}")

    def fail(self, step: str, url: str, what: str) -> None:
        with self._lock:
            self.failures.append(f"{step}: {what} for {_path(url)}")

    def expect(self, condition: bool, what: str) -> None:
        """A wrong outcome the user would notice (not logged in, sent elsewhere)."""
        if not condition:
            with self._lock:
                self.failures.append(what)

    def code_of(self, callback_url: str) -> str:
        code = query_of(callback_url)["code"]
        with self._lock:
            self.codes.append(code)
        return code


def _path(url: str) -> str:
    """The URL without its query values' secrets: the path and the parameter names."""
    parts = urlsplit(url)
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    return f"{parts.netloc}{parts.path}?{'&'.join(names)}" if names else f"{parts.netloc}{parts.path}"
