"""Linking a WeChat identity to a user when its username is taken or the site's hook fails."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.test_login_flow import authorize, first_logins_at_once, whoami
from wechat_oauth.models import WeChatAccount
from wechat_oauth.results import TokenResult
from wechat_oauth.users import create_user

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(client: Client, openid: str) -> Any:
    """The callback's response of a login of ``openid`` that the fake WeChat approved."""
    return client.get(authorize(client, openid))


def user_named(username: str) -> Any:
    return get_user_model().objects.create_user(username)


def create_user_named_taken(token: TokenResult, profile: Any) -> Any:
    """A site's CREATE_USER hook whose username is not unique per identity."""
    return get_user_model().objects.create_user("taken")


# -- the default hook picks a free username ----------------------------------------------------


def test_login_of_an_openid_whose_username_is_taken_logs_in_as_a_new_user(client, fake_wechat):
    someone_else = user_named("wx_o_x")

    response = log_in(client, "o_x")

    assert response.status_code == 302 and response["Location"] == "/whoami/"
    username = whoami(client)["user"]
    assert username.startswith("wx_o_x_") and len(username) > len("wx_o_x_")
    account = WeChatAccount.objects.get()
    assert account.user.get_username() == username
    assert not someone_else.wechat_accounts.exists()


def test_login_after_the_account_was_deleted_in_the_admin_logs_in_as_a_new_user(
    client, admin_client, fake_wechat
):
    assert log_in(client, "o_y").status_code == 302
    unlinked = WeChatAccount.objects.get()
    delete = reverse("admin:wechat_oauth_wechataccount_delete", args=[unlinked.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not WeChatAccount.objects.exists()

    browser = Client()
    response = log_in(browser, "o_y")

    assert response.status_code == 302 and response["Location"] == "/whoami/"
    account = WeChatAccount.objects.get()
    assert account.user != unlinked.user
    assert whoami(browser)["user"] == account.user.get_username() != "wx_o_y"


def test_racing_first_logins_of_an_openid_whose_username_is_taken_create_one_user(fake_wechat):
    user_named("wx_o_ivy")
    fake_wechat.set_latency(0.05)
    results = first_logins_at_once("o_ivy")

    assert all(kind == "ok" and value.status_code == 302 for kind, value in results), results
    assert get_user_model().objects.count() == 2
    assert WeChatAccount.objects.get().user.get_username().startswith("wx_o_ivy_")


@pytest.mark.parametrize("openid_length", [140, 147, 200])
def test_a_fresh_username_fits_the_username_field(openid_length):
    model = get_user_model()
    max_length = model._meta.get_field(model.USERNAME_FIELD).max_length
    openid = "o" * openid_length
    token = TokenResult.from_payload(
        {"access_token": "a", "refresh_token": "r", "openid": openid, "scope": "snsapi_base"}
    )

    first, second = create_user(token, None), create_user(token, None)

    assert first.get_username() == f"wx_{openid}"[:max_length]
    assert second.get_username() != first.get_username()
    assert len(second.get_username()) <= max_length
    assert second.get_username().startswith(f"wx_{openid}"[: max_length - 7])


# -- a site's hook that fails ------------------------------------------------------------------


@pytest.fixture
def failing_hook(settings: Any) -> None:
    settings.WECHAT_OAUTH = {
        **settings.WECHAT_OAUTH,
        "CREATE_USER": "tests.test_identity.create_user_named_taken",
    }
    user_named("taken")


@pytest.mark.usefixtures("failing_hook")
def test_a_create_user_hook_that_hits_a_unique_constraint_shows_a_readable_page(client, fake_wechat):
    response = log_in(client, "o_z")

    assert response.status_code == 503
    html = response.content.decode()
    assert "Could not link your WeChat account" in html
    assert "could not link it to an account on this site" in html
    assert whoami(client)["user"] is None
    assert not WeChatAccount.objects.exists()
    assert get_user_model().objects.count() == 1


@pytest.mark.usefixtures("failing_hook")
def test_the_page_of_a_failing_hook_in_chinese(fake_wechat):
    browser = Client(headers={"accept-language": "zh-hans"})

    response = log_in(browser, "o_z")

    assert response.status_code == 503
    assert "无法关联您的微信账号" in response.content.decode()


def _token(openid: str, unionid: str) -> TokenResult:
    from django.utils import timezone

    now = timezone.now()
    return TokenResult(
        access_token="a",
        refresh_token="r",
        openid=openid,
        scope="snsapi_base",
        expires_at=now,
        refresh_expires_at=now,
        unionid=unionid,
    )


def test_a_person_linked_without_its_union_row_keeps_one_user(settings, fake_wechat):
    """An account made by hand (or by a site's own code) with a unionid but no WeChatUnion
    row: the person's next identity joins that account's user."""
    from tests.test_several_apps import two_apps_settings
    from wechat_oauth.identity import link_account
    from wechat_oauth.models import WeChatUnion
    from wechat_oauth.registry import get_app

    settings.WECHAT_OAUTH = two_apps_settings(fake_wechat)
    user = get_user_model().objects.create(username="made_by_hand")
    WeChatAccount.objects.create(
        user=user, app_id=get_app("mp").app_id, openid="o_hand", unionid="u_hand", scope="snsapi_base"
    )

    account, created = link_account(_token("o_hand_web", "u_hand"), app=get_app("web"))

    assert created and account.user == user
    assert WeChatUnion.objects.get(unionid="u_hand").user == user


def test_a_person_whose_accounts_are_gone_keeps_the_user_of_its_union_row(settings, fake_wechat):
    """The person's row outlives its accounts (deleted by hand): the person's next identity
    finds no account, and still joins the row's user (its first try to register the person
    collides with the row, and the link reads it)."""
    from tests.test_several_apps import two_apps_settings
    from wechat_oauth.identity import link_account
    from wechat_oauth.models import WeChatUnion
    from wechat_oauth.registry import get_app

    settings.WECHAT_OAUTH = two_apps_settings(fake_wechat)
    first, _ = link_account(_token("o_gone", "u_gone"), app=get_app("mp"))
    WeChatAccount.objects.all().delete()

    account, created = link_account(_token("o_gone_web", "u_gone"), app=get_app("web"))

    assert created and account.user == first.user
    assert WeChatUnion.objects.get(unionid="u_gone").user == first.user
    assert get_user_model().objects.count() == 1


def test_a_new_persons_first_link_costs_its_statements_and_no_more(settings, fake_wechat):
    """SELECT the identity's account (and any of its person's), BEGIN, INSERT the user, the
    person and the account, COMMIT. Nothing read first: with no account of the person
    anywhere it is new, or its row's unique unionid says otherwise; its username is free, or
    the user's unique username says otherwise (and the link tries again, checking)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.test_several_apps import two_apps_settings
    from wechat_oauth.identity import link_account
    from wechat_oauth.registry import get_app

    settings.WECHAT_OAUTH = two_apps_settings(fake_wechat)
    with CaptureQueriesContext(connection) as queries:
        link_account(_token("o_new_person", "u_new_person"), app=get_app("mp"))

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    expected = {"sqlite": 7, "postgresql": 6, "mysql": 6}[connection.vendor]
    assert len(statements) == expected, statements
