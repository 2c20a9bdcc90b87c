"""Run the demo site (``python manage.py demo``, or ``demo --drop-in allauth|social``) as a real
child process, for the browser test and the live demo tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from tests import services
from wechat_oauth.testing.process import stop_process

if TYPE_CHECKING:
    from typing import Self

ROOT = Path(__file__).resolve().parent.parent
#: Environment variables of this test run that must not reach the demo: pytest-django sets
#: DJANGO_SETTINGS_MODULE=tests.settings, and manage.py only *defaults* it to the demo's; a
#: drop-in mode is the ``drop_in`` argument's.
_NOT_INHERITED = ("DJANGO_SETTINGS_MODULE", "WECHAT_OAUTH_DEMO_ORIGIN", "WECHAT_OAUTH_DEMO_DROP_IN")


class DemoServer:
    """``python manage.py demo 127.0.0.1:<free port>`` on a SQLite file of its own;
    ``drop_in``: with ``--drop-in allauth`` (or ``social``); ``asgi``: with ``--asgi``."""

    def __init__(
        self,
        db_path: Path,
        log_path: Path,
        *,
        startup_timeout: float = 60.0,
        drop_in: str | None = None,
        asgi: bool = False,
    ) -> None:
        self.db_path = db_path
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.drop_in = drop_in
        self.asgi = asgi
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
        env.update(WECHAT_OAUTH_DEMO_DB=str(self.db_path), PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "demo",
                    f"127.0.0.1:{self.port}",
                    *(["--drop-in", self.drop_in] if self.drop_in else []),
                    *(["--asgi"] if self.asgi else []),
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends all of it
            )
        try:
            services.wait_until_answering(
                self._process,
                self.url + "/",
                name="the demo",
                log_path=self.log_path,
                timeout=self.startup_timeout,
            )
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_process(process, group=True, grace=10)

    def log(self) -> str:
        return services.read_log(self.log_path)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
