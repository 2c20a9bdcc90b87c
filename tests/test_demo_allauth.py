"""The demo in django-allauth drop-in mode, live: ``python manage.py demo --drop-in allauth`` as a
child process. Its home page's button POSTs to allauth's login view for provider ``weixin`` (a
form, as allauth wants by default); after the fake WeChat's consent with the double callback the
browser lands logged in through allauth, with one exchange of the code (tests/demo_drop_in.py).

Collected only under the allauth site's settings (``--ds tests.allauth_site.settings_dropin``:
``tox -e allauth-oldest,allauth-newest``; tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo_drop_in import assert_logs_in_through_the_drop_in
from tests.demo_server import DemoServer

MODE = "allauth"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    directory = tmp_path_factory.mktemp(f"demo-{MODE}")
    with DemoServer(directory / "db.sqlite3", directory / "server.log", drop_in=MODE) as server:
        yield server


def test_the_drop_in_button_logs_in_through_allauth(demo: DemoServer) -> None:
    assert_logs_in_through_the_drop_in(demo)
