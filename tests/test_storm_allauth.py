"""The storm's library patterns (``python -m bench.storm --library allauth``) on the allauth
site: each login through the storm's own load generator (allauth's login link, its
confirmation POSTed, the fake WeChat's authorize page, the pattern's callbacks, ``/whoami/``)
against both allauth sites of tests/test_contrib_allauth_sites.py (server processes under
``settings_stock`` and ``settings_dropin`` on the suite's database, its fixtures). What the
storm reports under gunicorn is what these logins do.

Runs under the allauth site's settings (``pytest --ds tests.allauth_site.settings_dropin
tests/test_storm_allauth.py``, tox's allauth envs); under other settings it is not collected
(tests/conftest.py ``SITE_MODULES``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("allauth", reason="django-allauth is not installed (pip install -e '.[allauth]')")

from allauth.socialaccount.models import SocialAccount

from bench.storm.libraries import ALLAUTH, LibrarySite
from bench.storm.library_storm import lands_on
from bench.storm.patterns import SiteHandle, run_login

# The allauth sites' fixtures (both server processes, the SocialApp on the fake WeChat),
# requested below through ``servers``.
from tests.test_contrib_allauth_sites import LATENCY, sites, weixin_app  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

#: The duplicate patterns run here (the storm runs every pattern of its mp kind; 20 and 50
#: parallel duplicates only under gunicorn).
PATTERNS = (
    "plain",
    "abort_resend",
    "parallel_5",
    "two_codes",
    "refresh",
    "spread_abort_resend",
    "spread_parallel_4",
)


@pytest.fixture
def servers(request: pytest.FixtureRequest, fake_wechat: Any) -> dict[str, SiteHandle]:
    """The storm's view of both sites (one server each: both "instances" are the same), their
    app the fake's (the SocialApp of ``weixin_app``)."""
    running = request.getfixturevalue("sites")
    request.getfixturevalue("weixin_app")
    fake_wechat.set_latency(LATENCY)
    library = replace(ALLAUTH, app_id=fake_wechat.app_id, app_secret=fake_wechat.app_secret)
    return {
        mode: SiteHandle(library.site(mode), [site.url, site.url], fake_wechat.base_url, library=library)
        for mode, site in running.items()
    }


def library_of(handle: SiteHandle) -> LibrarySite:
    assert handle.library is not None
    return handle.library


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_dropin_logs_in_every_storm_pattern_with_one_exchange_per_code(
    servers: dict[str, SiteHandle], fake_wechat: Any, pattern: str
) -> None:
    dropin = servers["dropin"]
    login = run_login(dropin, pattern, 0, count_sql=False, kind=ALLAUTH.kind)

    assert login.outcome == "ok", login.reason
    openid = library_of(dropin).openid(login.person)
    assert login.user == f"weixin:{openid}"
    assert [fake_wechat.exchange_calls(code) for code in login.codes] == [1] * (
        2 if pattern == "two_codes" else 1
    )
    assert all(lands_on(hit, fake_wechat.base_url) for hit in login.callbacks), login.callbacks
    assert SocialAccount.objects.filter(provider="weixin", uid=openid).count() == 1


def test_the_stock_provider_fails_the_refresh_and_the_parallel_duplicates(
    servers: dict[str, SiteHandle], fake_wechat: Any
) -> None:
    stock = servers["stock"]
    parallel = run_login(stock, "parallel_5", 1, count_sql=False, kind=ALLAUTH.kind)
    off = [hit for hit in parallel.callbacks if not lands_on(hit, fake_wechat.base_url)]
    assert len(parallel.callbacks) == 5 and len(off) >= 4, [hit.status for hit in parallel.callbacks]
    assert {hit.status for hit in off} <= {200, 401}  # allauth's "Third-Party Login Failure" page


def test_the_allauth_site_takes_the_storms_app_and_database_from_its_environment():
    """Served with the description's environment, both allauth sites have its app (the
    SocialApp in settings) and the storm's database."""
    import json
    import os
    import subprocess
    import sys

    from bench.storm.libraries import ALLAUTH
    from bench.storm.services import ROOT, server_environment

    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/storm-allauth-check.sqlite3"}
    show = (
        "from django.conf import settings; import json; print(json.dumps(["
        "settings.SOCIALACCOUNT_PROVIDERS['weixin']['APPS'], settings.DATABASES['default']"
        "['NAME'], settings.SOCIALACCOUNT_PROVIDERS['weixin']['AUTHORIZE_URL']]))"
    )
    for mode in ("stock", "dropin"):
        env = {
            **server_environment(ALLAUTH.settings[mode]),
            **ALLAUTH.environment("http://127.0.0.1:9", database),
        }
        env.pop("WECHAT_OAUTH_TEST_DB", None)
        done = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {show}"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        apps, name, authorize = json.loads(done.stdout.strip().splitlines()[-1])
        assert apps == [{"client_id": ALLAUTH.app_id, "secret": ALLAUTH.app_secret}], mode
        assert name == database["NAME"] and authorize == "http://127.0.0.1:9/connect/oauth2/authorize"
