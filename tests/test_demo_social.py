"""The demo in python-social-auth drop-in mode, live: ``python manage.py demo --drop-in social``
as a child process. Its home page's button POSTs to ``social:begin`` for backend ``weixinapp``;
after the fake WeChat's consent with the double callback the browser lands logged in through
social-auth, with one exchange of the code (tests/demo_drop_in.py).

Collected only under the social-auth site's settings (``--ds tests.social_site.settings_stock``:
``tox -e py311-social62,py313-social70``; tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.demo_drop_in import assert_logs_in_through_the_drop_in
from tests.demo_server import DemoServer

MODE = "social"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    directory = tmp_path_factory.mktemp(f"demo-{MODE}")
    with DemoServer(directory / "db.sqlite3", directory / "server.log", drop_in=MODE) as server:
        yield server


def test_the_drop_in_button_logs_in_through_social(demo: DemoServer) -> None:
    assert_logs_in_through_the_drop_in(demo)
