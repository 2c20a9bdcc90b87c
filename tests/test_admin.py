"""The admin: read-only code-use history with its summary, WeChat accounts, no secret on any page."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import settings as test_settings
from wechat_oauth.admin import EstimatedCountPaginator, OAuthCodeUseAdmin, summary_cache_key
from wechat_oauth.exceptions import CodeSpent
from wechat_oauth.guard import exchange_once
from wechat_oauth.identity import link_account
from wechat_oauth.models import OAuthCodeUse, WeChatAccount

CHANGELIST = reverse("admin:wechat_oauth_oauthcodeuse_changelist")
ACCOUNTS = reverse("admin:wechat_oauth_wechataccount_changelist")
_serial = itertools.count()


@pytest.fixture(autouse=True)
def uncached_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every render computes the summary (one test turns the cache back on)."""
    monkeypatch.setattr(OAuthCodeUseAdmin, "summary_cache_timeout", 0)


def code_use(*, ago: timedelta = timedelta(minutes=5), using: str = "default", **fields: Any) -> OAuthCodeUse:
    """A finished code use first seen ``ago`` before now."""
    at = timezone.now() - ago
    code_hash = hashlib.sha256(str(next(_serial)).encode()).hexdigest()
    values = {
        "app_id": "wxtestappid0000001",
        "code_hash": code_hash,
        "status": OAuthCodeUse.Status.EXCHANGED,
        "openid": "o_someone",
        "first_seen_at": at,
        "last_seen_at": at,
        "completed_at": at,
        "exchange_ms": 80,
    }
    if fields.get("status") == OAuthCodeUse.Status.FAILED:
        values.update(openid="", error="spent", errcode=40163, errmsg="code been used", request_id="rid-0001")
    return OAuthCodeUse.objects.using(using).create(**{**values, **fields})


def listed(response: Any) -> set[int]:
    """Primary keys of the rows a change list response shows."""
    return {row.pk for row in response.context["cl"].result_list}


def change_url(row: OAuthCodeUse) -> str:
    return reverse("admin:wechat_oauth_oauthcodeuse_change", args=[row.pk])


# -- the code-use change list --------------------------------------------------------------


@pytest.mark.django_db
def test_changelist_lists_newest_first_with_every_column(admin_client):
    old = code_use(ago=timedelta(hours=3))
    failed = code_use(ago=timedelta(hours=2), status=OAuthCodeUse.Status.FAILED)
    new = code_use(ago=timedelta(hours=1), duplicates=2, resent_variant_seen=True, max_gap_ms=1500)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [new.pk, failed.pk, old.pk]
    html = response.content.decode()
    assert new.code_hash[:12] in html and new.code_hash not in html
    for text in ("40163", "rid-0001", "1500", "o_someone", "wxtestappid0000001"):
        assert text in html
    assert 'alt="True"' in html  # the re-sent variant's boolean icon


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=failed", {"failed", "timeout"}),
        ("status__exact=exchanged", {"plain", "duplicated", "old"}),
        ("has_duplicates=yes", {"duplicated"}),
        ("has_duplicates=no", {"plain", "failed", "timeout", "old"}),
        ("failed=yes", {"failed", "timeout"}),
        ("failed=errcode", {"failed"}),
        ("failed=other", {"timeout"}),
        ("failed=no", {"plain", "duplicated", "old"}),
        ("q=o_findme", {"duplicated"}),
        ("q=u_findme", {"plain"}),
        ("q=o_find", set()),  # exact match only
    ],
)
def test_filters_and_search(admin_client, query, expected):
    rows = {
        "plain": code_use(unionid="u_findme"),
        "duplicated": code_use(openid="o_findme", duplicates=3),
        "failed": code_use(status=OAuthCodeUse.Status.FAILED),
        "timeout": code_use(status=OAuthCodeUse.Status.FAILED, error="timeout", errcode=None),
        "old": code_use(ago=timedelta(days=40)),
    }

    response = admin_client.get(f"{CHANGELIST}?{query}")

    assert response.status_code == 200
    assert listed(response) == {rows[name].pk for name in expected}


@pytest.mark.django_db
def test_first_seen_date_filter_links(admin_client):
    today, old = code_use(ago=timedelta(minutes=1)), code_use(ago=timedelta(days=40))
    cl: ChangeList = admin_client.get(CHANGELIST).context["cl"]
    (date_filter,) = [spec for spec in cl.filter_specs if getattr(spec, "field_path", "") == "first_seen_at"]
    links = {str(title): cl.get_query_string(params) for title, params in date_filter.links}

    assert listed(admin_client.get(CHANGELIST + links["Past 7 days"])) == {today.pk}
    assert listed(admin_client.get(CHANGELIST + links["Any date"])) == {today.pk, old.pk}


@pytest.mark.django_db
def test_date_hierarchy_drill_down(admin_client):
    now = timezone.localtime()
    recent, old = code_use(ago=timedelta(minutes=1)), code_use(ago=timedelta(days=400))
    last_year = timezone.localtime(old.first_seen_at)

    top = admin_client.get(CHANGELIST)
    assert top.status_code == 200
    # Two years of rows: the drill-down starts with the years, each a link.
    years = top.context["cl"].date_hierarchy_from_range["choices"]
    assert [choice["title"] for choice in years] == [str(y) for y in range(last_year.year, now.year + 1)]
    assert f"first_seen_at__year={now.year}" in top.content.decode()

    year = admin_client.get(f"{CHANGELIST}?first_seen_at__year={now.year}")
    month = admin_client.get(f"{CHANGELIST}?first_seen_at__year={now.year}&first_seen_at__month={now.month}")
    day = admin_client.get(
        f"{CHANGELIST}?first_seen_at__year={now.year}&first_seen_at__month={now.month}"
        f"&first_seen_at__day={now.day}"
    )
    for response in (year, month, day):
        assert response.status_code == 200
        assert listed(response) == {recent.pk}
    day_links = month.context["cl"].date_hierarchy_from_range["choices"]
    assert [link["link"] for link in day_links] == [
        f"?first_seen_at__day={now.day}&first_seen_at__month={now.month}&first_seen_at__year={now.year}"
    ]
    assert "date-back" in day.content.decode()


@pytest.mark.django_db
def test_date_hierarchy_of_an_empty_table(admin_client):
    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["cl"].date_hierarchy_from_range == {"show": True, "back": None, "choices": []}


# -- read-only -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_detail_page_is_read_only_and_complete(admin_client):
    row = code_use(status=OAuthCodeUse.Status.FAILED, duplicates=2, max_gap_ms=900)

    response = admin_client.get(change_url(row))

    assert response.status_code == 200
    html = response.content.decode()
    for text in (row.code_hash[:12], "40163", "rid-0001", "code been used", "900"):
        assert text in html
    assert row.code_hash not in html
    assert not re.search(r'<(input|textarea|select)[^>]+name="(?!csrfmiddlewaretoken)', html)
    assert 'name="_save"' not in html
    delete_url = reverse("admin:wechat_oauth_oauthcodeuse_delete", args=[row.pk])
    assert delete_url not in html
    for hidden in ("access_token", "refresh_token", "profile"):
        assert not re.search(rf"field-{hidden}(?![\w-])", html), hidden


@pytest.mark.django_db
def test_no_add_no_delete_no_change(admin_client):
    row = code_use(openid="o_before")
    delete_url = reverse("admin:wechat_oauth_oauthcodeuse_delete", args=[row.pk])

    assert admin_client.get(reverse("admin:wechat_oauth_oauthcodeuse_add")).status_code == 403
    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    changed = admin_client.post(change_url(row), {"openid": "o_after", "status": "failed", "_save": "1"})

    assert changed.status_code == 403
    row.refresh_from_db()
    assert (row.openid, row.status) == ("o_before", OAuthCodeUse.Status.EXCHANGED)
    assert OAuthCodeUse.objects.count() == 1
    actions = admin_client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert [name for name, _label in actions if name] == ["purge_expired"]


# -- no filtering by token ------------------------------------------------------------------


TOKEN_LOOKUPS = [
    "access_token=ACCESS-a1",
    "access_token__startswith=A",
    "access_token__gte=ACCESS-m",
    "access_token__regex=^ACCESS-a",
    "access_token__isnull=False",
    "refresh_token__gte=m",
    "refresh_token__lt=m",
    "refresh_token__contains=refresh-a",
    "refresh_token__in=refresh-a1,refresh-x",
    "refresh_token__iexact=REFRESH-A1",
    "profile__nickname=Alice",
    "profile__nickname__startswith=A",
    "profile__has_key=nickname",
    "profile__isnull=True",
    "profile=null",
]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "viewer"])
@pytest.mark.parametrize("lookup", TOKEN_LOOKUPS)
def test_changelist_cannot_be_filtered_by_a_token_or_the_profile(admin_client, client, who, lookup):
    """A filter on a stored token would let anyone who can see the list guess it by bisection."""
    code_use(access_token="ACCESS-a1", refresh_token="refresh-a1", profile={"nickname": "Alice"})
    code_use(access_token="ACCESS-z9", refresh_token="refresh-z9", profile={"nickname": "Zed"})
    code_use()  # tokens already scrubbed
    if who == "viewer":
        client.force_login(staff_member("view_oauthcodeuse", username="viewer"))
    browser = admin_client if who == "superuser" else client

    response = browser.get(f"{CHANGELIST}?{lookup}")

    assert response.status_code == 400, listed(response) if response.status_code == 200 else response
    assert b"ACCESS-" not in response.content and b"refresh-" not in response.content


# -- the summary -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_summary_counts_the_last_24_hours_and_7_days(admin_client):
    failed = OAuthCodeUse.Status.FAILED
    code_use(ago=timedelta(hours=1), duplicates=2, status=failed)
    code_use(ago=timedelta(hours=23))
    code_use(ago=timedelta(hours=25), duplicates=3)
    code_use(ago=timedelta(days=6, hours=23), duplicates=1, status=failed)
    code_use(ago=timedelta(days=7, hours=1), duplicates=5, status=failed)  # outside both

    response = admin_client.get(CHANGELIST)

    summary = response.context["code_use_summary"]
    assert summary["day"] == {"codes": 2, "duplicates": 2, "failures": 1}
    assert summary["week"] == {"codes": 4, "duplicates": 6, "failures": 2}
    html = response.content.decode()
    for cell, value in [
        ("day-codes", 2),
        ("day-duplicates", 2),
        ("day-failures", 1),
        ("week-codes", 4),
        ("week-duplicates", 6),
        ("week-failures", 2),
    ]:
        assert f'<td class="summary-{cell}">{value}</td>' in html


@pytest.mark.django_db
def test_summary_of_an_empty_table_is_zeros(admin_client):
    summary = admin_client.get(CHANGELIST).context["code_use_summary"]

    assert summary["day"] == summary["week"] == {"codes": 0, "duplicates": 0, "failures": 0}


def changelist_queries(client: Any, query: str = "") -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(f"{CHANGELIST}?{query}").status_code == 200
    return len(captured)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "",
        "status__exact=failed",
        "has_duplicates=yes",
        "q=o_someone",
        "first_seen_at__year=2026&first_seen_at__month=1",
    ],
)
def test_changelist_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries, query):
    for i in range(10):
        code_use(ago=timedelta(minutes=i), duplicates=i % 2)
    with django_assert_max_num_queries(8):
        small = changelist_queries(admin_client, query)
    for i in range(190):
        code_use(
            ago=timedelta(hours=i),
            duplicates=i % 2,
            status=OAuthCodeUse.Status.FAILED if i % 10 == 0 else OAuthCodeUse.Status.EXCHANGED,
        )
    with django_assert_max_num_queries(8):
        large = changelist_queries(admin_client, query)

    assert small == large


@pytest.mark.django_db
def test_summary_is_cached_for_a_minute(admin_client, monkeypatch):
    monkeypatch.setattr(OAuthCodeUseAdmin, "summary_cache_timeout", 60)
    code_use()
    cache.delete(summary_cache_key(OAuthCodeUse.objects.all()))
    try:
        first = changelist_queries(admin_client)
        code_use()
        second_response = admin_client.get(CHANGELIST)
        second = changelist_queries(admin_client)
    finally:
        cache.delete(summary_cache_key(OAuthCodeUse.objects.all()))

    assert second == first - 1
    assert second_response.context["code_use_summary"]["day"]["codes"] == 1  # as of the first render


@pytest.mark.django_db
def test_summary_renders_in_chinese(admin_client):
    code_use()

    response = admin_client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE="zh-hans")

    html = response.content.decode()
    assert response.status_code == 200 and 'lang="zh-hans"' in html
    for text in ("最近 24 小时", "最近 7 天", "重复回调", "失败", "清除过期的 code 记录"):
        assert text in html, text


# -- the paginator ---------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(databases="__all__")
def test_paginator_takes_the_planners_estimate_of_a_large_result(pg_alias, monkeypatch):
    for _ in range(3):
        code_use(using=pg_alias)
    queryset = OAuthCodeUse.objects.using(pg_alias).order_by("pk")

    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 0)
    estimated = EstimatedCountPaginator(queryset, 100)
    with CaptureQueriesContext(connections[pg_alias]) as captured:
        assert estimated.count >= 0 and estimated.count_is_estimate
    assert len(captured) == 1 and captured[0]["sql"].startswith("EXPLAIN")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_below", 10**9)
    exact = EstimatedCountPaginator(queryset, 100)
    assert exact.count == 3 and not exact.count_is_estimate


# -- the purge action ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_purge_action_deletes_expired_rows_whatever_is_selected(admin_client, settings):
    settings.WECHAT_OAUTH = {**settings.WECHAT_OAUTH, "RETENTION": 7 * 24 * 3600}
    # In time order, as rows are written (the purge walks ids up to the newest expired row).
    expired = [code_use(ago=timedelta(days=30)), code_use(ago=timedelta(days=8))]
    kept = code_use(ago=timedelta(days=6))

    response = admin_client.post(
        CHANGELIST, {"action": "purge_expired", "index": "0", "_selected_action": [kept.pk]}, follow=True
    )

    assert response.status_code == 200
    assert list(OAuthCodeUse.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not OAuthCodeUse.objects.filter(pk__in=[row.pk for row in expired]).exists()
    assert "Purged 2 code uses first seen more than 7d ago." in response.content.decode()


@pytest.mark.django_db
def test_purge_action_needs_the_delete_permission(client):
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_oauthcodeuse"))
    client.force_login(staff)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert response.context["action_form"] is None or not [
        name for name, _label in response.context["action_form"].fields["action"].choices if name
    ]


# -- WeChat accounts -------------------------------------------------------------------------


@pytest.mark.django_db
def test_accounts_list_search_and_read_only_identity(admin_client):
    user = get_user_model().objects.create_user("alice")
    account = WeChatAccount.objects.create(
        user=user,
        app_id="wxapp",
        openid="o_alice",
        unionid="u_alice",
        nickname="Alice",
        last_login_at=timezone.now(),
    )
    WeChatAccount.objects.create(
        user=get_user_model().objects.create_user("bob"), app_id="wxapp", openid="o_bob", nickname="Bob"
    )
    change = reverse("admin:wechat_oauth_wechataccount_change", args=[account.pk])

    listing = admin_client.get(ACCOUNTS)
    html = listing.content.decode()
    assert listing.status_code == 200
    assert reverse("admin:auth_user_change", args=[user.pk]) in html
    for query in ("o_alice", "u_alice", "lic", "ali"):
        assert listed(admin_client.get(f"{ACCOUNTS}?q={query}")) == {account.pk}, query
    assert listed(admin_client.get(f"{ACCOUNTS}?q=o_al")) == set()

    detail = admin_client.get(change)
    assert detail.status_code == 200
    form_fields = set(detail.context["adminform"].form.fields)
    assert form_fields == {"user"}
    other = get_user_model().objects.create_user("carol")
    admin_client.post(change, {"user": other.pk, "openid": "o_forged", "app_id": "wxforged"})
    account.refresh_from_db()
    assert (account.user, account.openid, account.app_id) == (other, "o_alice", "wxapp")
    assert admin_client.get(reverse("admin:wechat_oauth_wechataccount_add")).status_code == 403


def staff_member(*permissions: str, username: str = "mallory") -> Any:
    """A staff user (not a superuser) holding ``permissions`` (codenames) of this app."""
    staff = get_user_model().objects.create_user(username, password="x", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="wechat_oauth", codename__in=permissions)
    )
    return staff


def account_of(user: Any, openid: str = "o_mallory") -> WeChatAccount:
    return WeChatAccount.objects.create(user=user, app_id="wxapp", openid=openid)


def account_change_url(account: WeChatAccount) -> str:
    return reverse("admin:wechat_oauth_wechataccount_change", args=[account.pk])


def relink(client: Any, account: WeChatAccount, user: Any) -> Any:
    """Save the account's change page with ``user`` as its user."""
    return client.post(account_change_url(account), {"user": user.pk, "_save": "Save"})


def privileged_user(kind: str) -> Any:
    """A superuser ("superuser") or a staff member ("staff")."""
    users = get_user_model().objects
    if kind == "superuser":
        return users.create_superuser("root", password="x")
    return users.create_user("colleague", is_staff=True)


@pytest.fixture
def account_editor(client: Any) -> Any:
    """A client logged in as a staff member who may view and change WeChat accounts."""
    client.force_login(staff_member("view_wechataccount", "change_wechataccount"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["superuser", "staff"])
def test_staff_cannot_link_a_wechat_account_to_a_superuser_or_staff_member(account_editor, target):
    privileged = privileged_user(target)
    ordinary = get_user_model().objects.create_user("wx_o_mallory")
    account = account_of(ordinary)  # the staff member's own WeChat, linked to an ordinary user

    response = relink(account_editor, account, privileged)

    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors["user"] == [
        "Only a superuser can link a WeChat account to a staff member or a superuser."
    ]
    assert "Only a superuser can link a WeChat account to a staff member" in response.content.decode()
    account.refresh_from_db()
    assert account.user == ordinary


@pytest.mark.django_db
def test_the_refusal_to_link_a_superuser_in_chinese(account_editor):
    account = account_of(get_user_model().objects.create_user("wx_o_mallory"))
    root = get_user_model().objects.create_superuser("root", password="x")

    response = account_editor.post(
        account_change_url(account), {"user": root.pk, "_save": "Save"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )

    assert "只有超级用户才能将微信账号关联到工作人员或超级用户。" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("owner", ["superuser", "staff"])
def test_staff_cannot_relink_the_account_of_a_superuser_or_staff_member(account_editor, owner):
    privileged = privileged_user(owner)
    account = account_of(privileged, openid="o_root")
    ordinary = get_user_model().objects.create_user("wx_o_mallory")

    page = account_editor.get(account_change_url(account))
    response = relink(account_editor, account, ordinary)

    assert page.status_code == 200
    assert "user" not in page.context["adminform"].form.fields  # shown, read-only
    assert privileged.get_username() in page.content.decode()
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.user == privileged


@pytest.mark.django_db
def test_superuser_can_link_accounts_to_and_from_superusers(admin_client, admin_user):
    users = get_user_model().objects
    ordinary = users.create_user("wx_o_someone")
    colleague = users.create_user("colleague", is_staff=True)
    account = account_of(ordinary)

    assert relink(admin_client, account, admin_user).status_code == 302
    account.refresh_from_db()
    assert account.user == admin_user
    assert relink(admin_client, account, colleague).status_code == 302
    account.refresh_from_db()
    assert account.user == colleague
    assert relink(admin_client, account, ordinary).status_code == 302
    account.refresh_from_db()
    assert account.user == ordinary


@pytest.mark.django_db
def test_staff_can_relink_an_account_between_ordinary_users(account_editor):
    users = get_user_model().objects
    before, after = users.create_user("wx_o_before"), users.create_user("after")
    account = account_of(before)

    page = account_editor.get(account_change_url(account))
    response = relink(account_editor, account, after)

    assert "user" in page.context["adminform"].form.fields
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.user == after


# -- no secret on any page -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_no_token_secret_or_code_in_any_admin_page(admin_client, fake_wechat):
    base = fake_wechat.issue_code("o_base", unionid="u_base")
    profiled = fake_wechat.issue_code(
        "o_profiled", unionid="u_profiled", scope="snsapi_userinfo", nickname="Pat"
    )
    first = exchange_once(base)
    exchange_once(base, resent=True)  # a duplicate
    outcome = exchange_once(profiled)
    assert outcome.token.profile is not None
    failing = fake_wechat.issue_code("o_failing")
    fake_wechat.add_fault("access_token", errcode=40163, errmsg="code been used, rid: 65a1-b2c3")
    with pytest.raises(CodeSpent):
        exchange_once(failing)
    link_account(first.token)
    link_account(outcome.token)
    assert OAuthCodeUse.objects.exclude(access_token="").count() == 2  # tokens are in the table
    assert OAuthCodeUse.objects.filter(profile__isnull=False).count() == 1

    pages = [CHANGELIST, f"{CHANGELIST}?q=o_profiled", ACCOUNTS]
    pages += [change_url(row) for row in OAuthCodeUse.objects.all()]
    pages += [
        reverse("admin:wechat_oauth_wechataccount_change", args=[account.pk])
        for account in WeChatAccount.objects.all()
    ]
    secrets = fake_wechat.issued_secrets() | {test_settings.WECHAT_OAUTH["APP_SECRET"]}
    assert len(secrets) >= 8  # the app secret, three codes, two access and two refresh tokens
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        leaks = [secret for secret in secrets if secret and secret in html]
        assert not leaks, f"{url} shows {leaks}"
    assert "Pat" in admin_client.get(ACCOUNTS).content.decode()  # the pages did render the data
