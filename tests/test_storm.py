"""The storm's load generator (bench/storm) on the kinds of login it drives besides the web
ones: the Mini Program (a careless front end's POSTs of one wx.login() code) and WeCom
(WeChat's abort-and-resend in WeCom's browser). Each pattern runs through the load generator's
own code against this app and against the storm's naive baseline (bench/storm/naive), both
served in this process (pytest-django's live server), on the fake WeChat: what the storm
reports is what these logins do. The storm itself (gunicorn, its databases) is
``python -m bench.storm``."""

from __future__ import annotations

import pytest

from bench.storm.__main__ import parse_args, split_logins
from bench.storm.apps import APP_IDS, WECOM_AGENT_ID, user_name
from bench.storm.patterns import KIND_PATTERNS, MINI_PATTERNS, SiteHandle, run_login
from bench.storm.report import app_calls_delta, gettoken_target

pytestmark = pytest.mark.django_db(transaction=True)


def guarded_settings(fake) -> dict:
    """WECHAT_OAUTH of the storm's guarded site (bench/storm/guarded/settings.py), its
    Mini Program and WeCom apps on the test fake."""
    mini, corp = APP_IDS["guarded"]["mini"], APP_IDS["guarded"]["wecom"]
    urls = {key: value for key, value in fake.settings().items() if key.endswith("_URL")}
    return {
        **urls,
        "DEFAULT_APP": "mp",
        "APPS": {
            "mp": {"KIND": "mp", "APP_ID": fake.app_id, "APP_SECRET": fake.app_secret},
            "mini": {"KIND": "miniprogram", "APP_ID": mini, "APP_SECRET": fake.add_app(mini)},
            "corp": {
                "KIND": "wecom",
                "CORP_ID": corp,
                "AGENT_ID": WECOM_AGENT_ID,
                "SECRET": fake.add_corp(corp, WECOM_AGENT_ID),
                "SCOPE": "snsapi_base",
            },
        },
    }


@pytest.fixture
def guarded(live_server, fake_wechat, settings) -> SiteHandle:
    settings.WECHAT_OAUTH = guarded_settings(fake_wechat)
    fake_wechat.set_latency(0.05)  # duplicates arrive while the exchange is in flight
    return SiteHandle("guarded", [live_server.url, live_server.url], fake_wechat.base_url)


@pytest.fixture
def naive(live_server, fake_wechat, settings) -> SiteHandle:
    mini, corp = APP_IDS["naive"]["mini"], APP_IDS["naive"]["wecom"]
    base = fake_wechat.base_url
    settings.ROOT_URLCONF = "bench.storm.naive.urls"
    settings.LOGIN_REDIRECT_URL = "/whoami/"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]  # its own
    settings.NAIVE_WECHAT = {
        "API_BASE_URL": base,
        "APPS": {
            "mini": {"APP_ID": mini, "APP_SECRET": fake_wechat.add_app(mini)},
            "corp": {
                "APP_ID": corp,
                "APP_SECRET": fake_wechat.add_corp(corp, WECOM_AGENT_ID),
                "AGENT_ID": WECOM_AGENT_ID,
                "SCOPE": "snsapi_base",
                "PAGE_URL": fake_wechat.authorize_url,
                "SSO_URL": fake_wechat.wecom_sso_url,
                "CALLBACK": "/wechat/corp/callback/",
            },
        },
    }
    fake_wechat.set_latency(0.05)
    return SiteHandle("naive", [live_server.url, live_server.url], base)


def exchanges(fake, login) -> list[int]:
    return [fake.exchange_calls(code) for code in login.codes]


# -- the command line ------------------------------------------------------------------------


def test_the_default_kinds_stay_the_web_ones_and_the_new_kinds_are_asked_for():
    assert parse_args([]).kinds == ["mp", "open"]
    assert parse_args(["--kind", "mini,wecom", "--kind", "mini"]).kinds == ["mini", "wecom"]
    with pytest.raises(SystemExit):
        parse_args(["--kind", "miniapp"])


def test_the_new_kinds_run_as_many_logins_per_pattern_as_the_web_ones():
    web, mini, wecom = (split_logins(66, kind) for kind in ("mp", "mini", "wecom"))
    assert list(mini) == list(MINI_PATTERNS) and list(wecom) == list(KIND_PATTERNS["wecom"])
    assert mini["plain"] == wecom["plain"] == web["plain"] == 12
    assert {mini["double_retry"], wecom["abort_resend"]} == {web["abort_resend"]} == {6}


# -- the Mini Program ------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", list(MINI_PATTERNS))
def test_every_mini_program_pattern_logs_in_with_one_call_per_code(guarded, fake_wechat, pattern):
    login = run_login(guarded, pattern, 0, count_sql=False, kind="mini")

    assert login.outcome == "ok", login.reason
    assert login.user == user_name("guarded", "mini", login.person)
    assert exchanges(fake_wechat, login) == [1]
    kept = {"plain": 1, "double_post": 2, "abort_retry": 1}.get(pattern, 2)
    assert [hit.status for hit in login.visible] == [200] * kept
    assert login.aborted == (1 if "retry" in pattern else 0)


def test_the_naive_session_view_answers_one_post_and_fails_the_careless_front_end(naive, fake_wechat):
    plain = run_login(naive, "plain", 0, count_sql=False, kind="mini")
    assert plain.outcome == "ok", plain.reason
    assert plain.user == user_name("naive", "mini", plain.person)

    for pattern, calls in (("double_post", 2), ("double_retry", 3)):
        login = run_login(naive, pattern, 1, count_sql=False, kind="mini")
        assert login.outcome == "failed"
        assert "40163" in login.reason  # "code been used": one POST of the code got it
        assert exchanges(fake_wechat, login) == [calls]


# -- WeCom -----------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["plain", "abort_resend", "spread_abort_resend"])
def test_wecom_logins_survive_the_abort_and_resend_with_one_getuserinfo(guarded, fake_wechat, pattern):
    corp = APP_IDS["guarded"]["wecom"]
    login = run_login(guarded, pattern, 0, count_sql=False, kind="wecom")

    assert login.outcome == "ok", login.reason
    assert login.user == user_name("guarded", "wecom", login.person)
    assert exchanges(fake_wechat, login) == [1]
    assert fake_wechat.gettoken_calls(corp, WECOM_AGENT_ID) == 1
    assert login.callbacks[-1].role == ("callback" if pattern == "plain" else "re-sent callback")


def test_the_naive_wecom_callback_fails_the_resent_duplicate(naive, fake_wechat):
    plain = run_login(naive, "plain", 0, count_sql=False, kind="wecom")
    assert plain.outcome == "ok", plain.reason
    assert plain.user == user_name("naive", "wecom", plain.person)

    login = run_login(naive, "abort_resend", 1, count_sql=False, kind="wecom")
    assert login.outcome == "failed"
    assert login.reason.startswith("re-sent callback answered 400")
    assert exchanges(fake_wechat, login) == [2]  # the aborted callback spent the code


# -- the report ------------------------------------------------------------------------------


def test_the_report_reads_a_wecom_agents_counters_and_the_gettoken_target(fake_wechat):
    from bench.storm.apps import KINDS

    corp = APP_IDS["guarded"]["wecom"]
    fake_wechat.add_corp(corp, WECOM_AGENT_ID)
    before = fake_wechat.stats()
    fake_wechat.issue_wecom_code(corp, WECOM_AGENT_ID, "u1")
    after = {
        **before,
        "wecom_calls": {
            corp: {
                WECOM_AGENT_ID: {
                    "authorize": 3,
                    "wwlogin": 0,
                    "gettoken": 1,
                    "getuserinfo": 4,
                    "getuserdetail": 0,
                }
            }
        },
    }

    delta = app_calls_delta(before, after, corp, KINDS["wecom"])

    assert (delta["codes_issued"], delta["getuserinfo_requests"]) == (3, 4)
    assert delta["getuserinfo_per_code"] == 1.333
    assert gettoken_target({"guarded": 1, "naive": 8})["met"]
    assert not gettoken_target({"guarded": 2, "naive": 8})["met"]


# -- the library sites (python -m bench.storm --library; tests/test_storm_social.py runs their
# -- logins on the social-auth site) --------------------------------------------------------


def test_library_runs_are_asked_for_and_replace_the_kinds():
    from bench.storm.libraries import LIBRARIES

    assert parse_args([]).libraries == []
    assert parse_args(["--library", "social", "--library", "social"]).libraries == ["social"]
    assert set(LIBRARIES) >= {"social", "allauth"}
    for wrong in (
        ["--library", "socialauth"],
        ["--library", "social", "--kind", "mp"],
        ["--library", "social", "--only", "probe"],
    ):
        with pytest.raises(SystemExit):
            parse_args(wrong)


def test_the_social_site_description_is_the_site_as_its_settings_say():
    """The app, secrets, modules and paths the storm uses are those of tests/social_site."""
    import importlib.util

    from bench.storm.libraries import SOCIAL
    from tests.social_site import settings as site_settings

    assert (SOCIAL.app_id, SOCIAL.app_secret) == (
        site_settings.SOCIAL_AUTH_WEIXINAPP_KEY,
        site_settings.SOCIAL_AUTH_WEIXINAPP_SECRET,
    )
    assert SOCIAL.other_apps == (
        (site_settings.SOCIAL_AUTH_WEIXIN_KEY, site_settings.SOCIAL_AUTH_WEIXIN_SECRET),
    )
    for module in [*SOCIAL.settings.values(), SOCIAL.wsgi.split(":")[0]]:
        assert importlib.util.find_spec(module) is not None, module
    assert SOCIAL.sites == ("social_stock", "social_dropin")
    env = SOCIAL.environment("http://127.0.0.1:1", {"ENGINE": "x"})
    assert env == {"SOCIAL_SITE_FAKE_WECHAT": "http://127.0.0.1:1", "SOCIAL_SITE_DATABASE": '{"ENGINE": "x"}'}
    assert SOCIAL.identity("p") == f"weixinapp:{SOCIAL.openid('p')}"
    assert SOCIAL.who({"user": "u", "accounts": [{"provider": "weixinapp", "uid": "o1"}]}) == "weixinapp:o1"


def test_a_library_missing_here_is_skipped_saying_what_to_install():
    from dataclasses import replace

    from bench.storm.libraries import SOCIAL

    missing = replace(SOCIAL, requires=("no_such_library_here",))
    assert missing.unavailable() == (
        "no_such_library_here is not installed (pip install -e '.[bench,social]')"
    )


def test_the_library_table_and_targets_put_the_dropin_first():
    from bench.storm.libraries import SOCIAL
    from bench.storm.library_storm import COLUMNS, targets
    from bench.storm.report import table
    from bench.storm.users import SiteUsers

    def figures(failed: int, exchanges: list[int]) -> dict:
        return {
            "logins": 4,
            "user_visible_failure_rate": failed / 4,
            "any_callback_not_landing_rate": failed / 4,
            "exchanges_per_code": {
                "max": max(exchanges),
                "mean": sum(exchanges) / len(exchanges),
                "codes": len(exchanges),
                "codes_not_exactly_1": sum(n != 1 for n in exchanges),
            },
            "users_per_person": {"persons": 4, "max": 1, "persons_without_user": 0},
            "callback_ms": {"p50": 100.0},
        }

    patterns = {"refresh": {"dropin": figures(0, [1] * 4), "stock": figures(4, [1] * 4)}}
    lines = table({"social": patterns}, None, sites=("dropin", "stock"), columns=COLUMNS).splitlines()
    assert lines[0].split()[:5] == ["kind", "pattern", "logins", "failed", "failed"]
    assert lines[2].split()[:5] == ["social", "refresh", "4", "0/4", "0/100"]

    users = {site: SiteUsers(site, users_without_account=0) for site in SOCIAL.sites}
    assert all(target["met"] for target in targets(SOCIAL, patterns, users))
    patterns["refresh"]["dropin"] = figures(1, [1, 1, 1, 2])
    met = [target["met"] for target in targets(SOCIAL, patterns, users)]
    assert met == [False, False, True]
