"""``python manage.py demo [addrport] [--drop-in allauth|social] [--asgi]``: migrate, then serve
the demo and its fake WeChat.

``--asgi`` serves them under uvicorn (demo_project/asgi.py, one process) instead of runserver.

``--drop-in`` (or ``WECHAT_OAUTH_DEMO_DROP_IN``) serves it in a drop-in mode
(demo_project/drop_in.py). The mode changes INSTALLED_APPS, which are loaded before a command
runs: the flag runs the command again in a new process with the environment variable set.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.commands.runserver import naiveip_re

import demo_project
from demo_project.drop_in import DROP_IN_ENV, DROP_INS, DropIn, missing
from demo_project.fake import MOUNT, ORIGIN_ENV, serve_fake_wechat_at

DEFAULT_ADDRPORT = "127.0.0.1:8000"
#: Bind-all addresses, reached from this machine through the loopback address.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "0": "127.0.0.1", "[::]": "[::1]"}


def origin_of(addrport: str) -> str:
    """``http://host:port`` where a server started with ``addrport`` can be reached here."""
    match = naiveip_re.match(addrport)
    if match is None:
        raise CommandError(f"{addrport!r} is not a port number or an address:port pair.")
    addr, _ipv4, _ipv6, _fqdn, port = match.groups()
    if int(port) == 0:
        raise CommandError("Give a real port: the fake WeChat's URLs must name it.")
    host = _WILDCARDS.get(addr or "127.0.0.1", addr or "127.0.0.1")
    return f"http://{host}:{int(port)}"


def bind_of(addrport: str) -> tuple[str, int]:
    """The host and port a server started with ``addrport`` binds (IPv6 without brackets)."""
    match = naiveip_re.match(addrport)
    if match is None:
        raise CommandError(f"{addrport!r} is not a port number or an address:port pair.")
    addr, _ipv4, _ipv6, _fqdn, port = match.groups()
    host = (addr or "127.0.0.1").strip("[]")
    return ("0.0.0.0" if host == "0" else host), int(port)


def serve_asgi(addrport: str) -> None:
    """demo_project/asgi.py under uvicorn in this process (one worker: the fake's state and
    counters are this process's, as under runserver), until CONTROL-C. Imported only now: the
    fake's URLs are in the settings already (serve_fake_wechat_at)."""
    import uvicorn

    from demo_project.asgi import application

    host, port = bind_of(addrport)
    # lifespan off: Django's ASGI handler serves HTTP only.
    uvicorn.run(application, host=host, port=port, lifespan="off", log_level="info")


class Command(BaseCommand):
    help = (
        "Run the demo site with a fake WeChat built in (no configuration, no internet): "
        "migrate the SQLite database quietly, then runserver on ADDRPORT."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addrport",
            nargs="?",
            default=DEFAULT_ADDRPORT,
            help=f"port or address:port to serve on (default {DEFAULT_ADDRPORT})",
        )
        parser.add_argument(
            "--drop-in",
            choices=sorted(DROP_INS),
            dest="drop_in",
            help="also set the site up django-allauth's (allauth) or python-social-auth's "
            "(social) way, with this app's drop-in, and add its login button (needs "
            f'pip install -e ".[allauth]" or ".[social]"; or set {DROP_IN_ENV})',
        )
        parser.add_argument(
            "--asgi",
            action="store_true",
            help="serve the site and its fake WeChat as an ASGI application under uvicorn "
            "(demo_project/asgi.py; needs uvicorn) instead of runserver",
        )

    def handle(
        self, *args: Any, addrport: str, drop_in: str | None = None, asgi: bool = False, **options: Any
    ) -> None:
        origin = origin_of(addrport)
        if asgi and importlib.util.find_spec("uvicorn") is None:
            raise CommandError('--asgi needs uvicorn: pip install uvicorn (or -e ".[test]")')
        mode = DROP_INS.get(getattr(settings, "DEMO_DROP_IN", ""))
        if drop_in is not None and (mode is None or mode.name != drop_in):
            wanted = DROP_INS[drop_in]
            problem = missing(wanted)
            if problem is not None:
                raise CommandError(problem)
            if os.environ.get(DROP_IN_ENV) == drop_in:  # run again already: never loop
                raise CommandError(
                    f"{DROP_IN_ENV}={drop_in} is set, but these settings "
                    f"({settings.SETTINGS_MODULE}) do not read it: --drop-in "
                    "needs the demo's (demo_project.settings)."
                )
            self._run_again(wanted, addrport, origin, asgi=asgi)
        serve_fake_wechat_at(origin)
        call_command("migrate", verbosity=0, interactive=False)
        self.stdout.write(self.style.SUCCESS(f"django-wechat-oauth demo: {origin}/"))
        self.stdout.write(
            f"  Fake WeChat: {origin}{MOUNT}/ (in this server: nothing leaves this machine)\n"
            f"  Database:    {settings.DATABASES['default']['NAME']}\n"
            "  Click 'Log in with WeChat', tick 'Simulate WeChat's double callback' on the\n"
            "  consent page, and Allow; then log out and 'Scan to log in' as the same person\n"
            "  (alice): one user, two WeChat apps. 'Mini Program' POSTs one wx.login() code\n"
            "  twice at once: one call to WeChat, one identity. Quit with CONTROL-C.\n"
        )
        if mode is not None:
            self.stdout.write(
                f"  Drop-in:     {mode.library}, set up its own way, through {mode.module}\n"
                f"               ({mode.provider}: the Official Account): click '{mode.button}'.\n"
            )
        if asgi:
            self.stdout.write("  Server:      uvicorn (ASGI, demo_project/asgi.py)\n")
            self.stdout.flush()
            serve_asgi(addrport)
            return
        self.stdout.flush()
        # Threaded: the code exchange is an HTTP request from a request thread to this very
        # server. No autoreloader: one process, so the fake's counters are the ones shown.
        call_command("runserver", addrport, use_reloader=False, use_threading=True, skip_checks=True)

    def _run_again(self, drop_in: DropIn, addrport: str, origin: str, *, asgi: bool = False) -> NoReturn:
        """This command in a new process whose settings are the drop-in mode's (the
        environment variable set), on the same address; this process becomes it (POSIX) or
        waits for it."""
        arguments = [sys.executable, "-m", "django", "demo", addrport, *(["--asgi"] if asgi else [])]
        project = str(Path(demo_project.__file__).resolve().parent.parent)
        environ = {
            **os.environ,
            DROP_IN_ENV: drop_in.name,
            ORIGIN_ENV: origin,
            "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")])),
        }
        self.stdout.flush()
        self.stderr.flush()
        if os.name == "posix":
            os.execve(sys.executable, arguments, environ)
        child = subprocess.Popen(arguments, env=environ)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # CONTROL-C reached the child too: let it stop
            code = child.wait()
        raise SystemExit(code)
