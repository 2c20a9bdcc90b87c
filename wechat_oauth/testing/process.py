"""Run the fake as its own process (``python -m wechat_oauth.testing``) and drive it over HTTP."""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import wechat_oauth
from wechat_oauth.testing.apps import FakeApp
from wechat_oauth.testing.base import ServeOptions
from wechat_oauth.testing.remote import RemoteFakeWeChat
from wechat_oauth.testing.state import DEFAULT_APP_ID
from wechat_oauth.testing.wecom import FakeAgent

READY_PREFIX = "READY "


def _package_root() -> str:
    """The directory holding the ``wechat_oauth`` package, so the child imports the same code."""
    return str(Path(wechat_oauth.__file__).resolve().parent.parent)


def stop_process(process: subprocess.Popen[Any] | None, *, group: bool = False, grace: float = 5.0) -> None:
    """SIGTERM ``process`` (its whole process group if ``group``), SIGKILL after ``grace`` s.

    For any server a test starts as a child process: the fake, a site under runserver or
    gunicorn. Nothing happens if it has already exited.
    """
    if process is None or process.poll() is not None:
        return
    send = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
    with contextlib.suppress(ProcessLookupError):
        send(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            send(signal.SIGKILL)
        process.wait(5)
    if group:  # children orphaned by a parent killed hard
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class FakeWeChatProcess(RemoteFakeWeChat):
    """A fake WeChat in a child process: started on :meth:`start`, terminated on :meth:`stop`."""

    def __init__(
        self,
        app_id: str = DEFAULT_APP_ID,
        app_secret: str | None = None,
        *,
        apps: Iterable[FakeApp] = (),
        corps: Iterable[FakeAgent] = (),
        python: str | None = None,
        asgi: bool = False,
        startup_timeout: float = 15.0,
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        """``apps``: more apps than the default one and ``corps``: WeCom agents, both added over
        the control API on every :meth:`start`; ``asgi``: served as an ASGI app under uvicorn
        (``--asgi``) instead of the threaded WSGI server; ``options``: the fields of
        :class:`~.base.ServeOptions` (host, port, latency, ...)."""
        self.options = ServeOptions(**options)
        self.apps = tuple(apps)
        self.corps = tuple(corps)
        super().__init__(app_id=app_id, app_secret=app_secret or secrets.token_hex(16), timeout=timeout)
        self.python = python or sys.executable
        self.asgi = asgi
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        served = self.options
        command = [
            self.python,
            "-m",
            "wechat_oauth.testing",
            "--host",
            served.host,
            "--port",
            str(served.port),
            "--latency",
            str(served.latency),
            "--code-ttl",
            str(served.code_ttl),
            "--app-id",
            self.app_id,
        ]
        if self.asgi:
            command.append("--asgi")
        return command if served.auto_approve else [*command, "--consent"]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # The secret goes through the environment, not argv, so `ps` does not show it.
        env["WECHAT_FAKE_APP_SECRET"] = self.app_secret
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> None:
        if self.running:
            return
        process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=self._environment(),
        )
        self._process = process
        line = self._first_line(process)
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"the fake WeChat process did not start (exit code {process.poll()})")
        self._base_url = line[len(READY_PREFIX) :].strip()
        try:
            for app in self.apps:
                self.add_app(app.app_id, app.app_secret, unionid=app.unionid)
            for agent in self.corps:
                self.add_corp(agent.corp_id, agent.agent_id, agent.secret)
        except BaseException:
            self.stop()
            raise

    def _first_line(self, process: subprocess.Popen[str]) -> str:
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            return lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            return ""

    def stop(self) -> None:
        """SIGTERM the process (SIGKILL if it lingers) and wait for it."""
        process = self._process
        if process is None:
            return
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()
