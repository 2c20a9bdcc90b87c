"""``python manage.py demo [addrport]``: migrate, then serve the demo and its fake WeChat."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.commands.runserver import naiveip_re

from demo_project.fake import MOUNT, serve_fake_wechat_at

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


class Command(BaseCommand):
    help = ("Run the demo site with a fake WeChat built in (no configuration, no internet): "
            "migrate the SQLite database quietly, then runserver on ADDRPORT.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default=DEFAULT_ADDRPORT,
                            help=f"port or address:port to serve on (default {DEFAULT_ADDRPORT})")

    def handle(self, *args: Any, addrport: str, **options: Any) -> None:
        origin = origin_of(addrport)
        serve_fake_wechat_at(origin)
        call_command("migrate", verbosity=0, interactive=False)
        self.stdout.write(self.style.SUCCESS(f"django-wechat-oauth demo: {origin}/"))
        self.stdout.write(
            f"  Fake WeChat: {origin}{MOUNT}/ (in this server: nothing leaves this machine)\n"
            f"  Database:    {settings.DATABASES['default']['NAME']}\n"
            "  Click 'Log in with WeChat', tick 'Simulate WeChat's double callback' on the\n"
            "  consent page, and Allow; then log out and 'Scan to log in' as the same person\n"
            "  (alice): one user, two WeChat apps. 'Mini Program' POSTs one wx.login() code\n"
            "  twice at once: one call to WeChat, one identity. Quit with CONTROL-C.\n")
        self.stdout.flush()
        # Threaded: the code exchange is an HTTP request from a request thread to this very
        # server. No autoreloader: one process, so the fake's counters are the ones shown.
        call_command("runserver", addrport, use_reloader=False, use_threading=True,
                     skip_checks=True)
