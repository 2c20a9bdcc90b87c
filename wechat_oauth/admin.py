"""Django admin of django-wechat-oauth.

``OAuthCodeUse`` is a read-only history of authorisation codes (what became of each code, how
many duplicate callbacks it absorbed), with a summary of the last 24 hours and 7 days above the
list. It is built for tables of millions of rows: no exact full count, exact (indexed) search,
no facet counts, and queries that stay few and fixed per page. Tokens and profiles that a row
keeps during the dedupe window are neither shown nor loaded.

``WeChatAccount`` lists the WeChat identities linked to users; the identity itself is read-only
(only the linked user can be changed). Whoever controls a WeChat identity logs in as its user,
so re-linking is guarded: only a superuser may link an account to, or away from, a staff member
or a superuser.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, Max, Min, Model, Q, QuerySet, Sum
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import OAuthCodeUse, WeChatAccount, WeChatUnion
from .registry import app_with_id, configured_apps

if TYPE_CHECKING:
    # Django's admin, form and paginator classes are generic only in django-stubs (at run time
    # they cannot be subscripted): the bases below, parametrised for the type checker.
    _Paginator = Paginator[Any]
    _CodeUseAdmin = admin.ModelAdmin[OAuthCodeUse]
    _AccountAdmin = admin.ModelAdmin[WeChatAccount]
    _UnionAdmin = admin.ModelAdmin[WeChatUnion]
    _AccountForm = forms.ModelForm[WeChatAccount]
else:
    _Paginator = Paginator
    _CodeUseAdmin = _AccountAdmin = _UnionAdmin = admin.ModelAdmin
    _AccountForm = forms.ModelForm

STATUS_COLOURS: dict[str, str] = {
    OAuthCodeUse.Status.EXCHANGED: "#2e7d32",
    OAuthCodeUse.Status.FAILED: "#c62828",
    OAuthCodeUse.Status.IN_FLIGHT: "#9a6700",
}


def code_use_summary(queryset: QuerySet[OAuthCodeUse], now: datetime | None = None) -> dict[str, Any]:
    """Codes, duplicates absorbed and failures of the last 24 hours and 7 days, in one query.

    Conditional aggregation over the 7-day range of the ``first_seen_at`` index:
    ``{"day": {"codes", "duplicates", "failures"}, "week": {...}, "as_of": now}``.
    """
    now = now or timezone.now()
    day = Q(first_seen_at__gte=now - timedelta(hours=24))
    failed = Q(status=OAuthCodeUse.Status.FAILED)
    figures = queryset.filter(first_seen_at__gte=now - timedelta(days=7)).aggregate(
        day_codes=Count("pk", filter=day),
        day_duplicates=Sum("duplicates", filter=day, default=0),
        day_failures=Count("pk", filter=day & failed),
        week_codes=Count("pk"),
        week_duplicates=Sum("duplicates", default=0),
        week_failures=Count("pk", filter=failed),
    )
    summary: dict[str, Any] = {
        period: {kind: figures[f"{period}_{kind}"] for kind in ("codes", "duplicates", "failures")}
        for period in ("day", "week")
    }
    summary["as_of"] = now
    return summary


def summary_cache_key(queryset: QuerySet[OAuthCodeUse]) -> str:
    """Cache key of the summary of ``queryset``: its database and SQL, so an admin subclass that
    narrows the queryset per user (per app id, say) never shows one user another's figures."""
    query = f"{queryset.db}:{queryset.order_by().query}"
    return "wechat_oauth:admin:code_use_summary:" + hashlib.sha256(query.encode()).hexdigest()[:32]


def date_hierarchy_from_range(cl: ChangeList) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html``, from the first and last date only.

    Django's own drill-down lists the years, months or days that hold rows with
    ``SELECT DISTINCT date_trunc(...)``, which reads every row of the range: 0.3 s at a million
    rows, on every page. Here one ``MIN``/``MAX`` (two probes of the ``first_seen_at`` index)
    bounds the range and every year, month or day between the bounds is offered. A day without
    rows inside the range is offered too (it opens an empty list), which a table that fills
    continuously and is purged after a week hardly ever has.
    """
    field = cl.date_hierarchy
    if not field:
        return {}
    year_field, month_field, day_field = (f"{field}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))

    def link(filters: dict[str, Any]) -> str:
        return cl.get_query_string(filters, [f"{field}__"])

    if year and month and day:  # Same as Django: the chosen day, nothing to query.
        chosen = date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    bounds = cl.queryset.aggregate(first=Min(field), last=Max(field))
    if bounds["first"] is None:
        return {"show": True, "back": None, "choices": []}
    first, last = (
        timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
        for value in (bounds["first"], bounds["last"])
    )
    if not (year or month) and first.year == last.year:  # Start as deep as the range allows.
        year = str(first.year)
        if first.month == last.month:
            month = str(first.month)
    if year and month:
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in days
            ],
        }
    if year:
        months = (date(first.year, m, 1) for m in range(first.month, last.month + 1))
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: y}), "title": str(y)} for y in range(first.year, last.year + 1)
        ],
    }


class CodeUseChangeList(ChangeList):
    """The change list with the range-based date hierarchy (computed only if rendered; the
    template falls back to Django's own with any other ChangeList)."""

    @cached_property
    def date_hierarchy_from_range(self) -> dict[str, Any]:
        return date_hierarchy_from_range(self)


class EstimatedCountPaginator(_Paginator):
    """A paginator that, on PostgreSQL, asks the planner for the count of a large result.

    ``SELECT count(*)`` reads every matching row (PostgreSQL keeps no row count): 70-150 ms at a
    million rows, on every page. The planner's estimate (``EXPLAIN``,
    from the table statistics) is free; it is used when it says the result is larger than
    :attr:`exact_below`, where "about 1,000,000 results" is as useful as the exact figure. Smaller
    results (a search, a narrow filter) are counted exactly. Other databases: exact count.
    """

    exact_below = 1_000
    #: Whether :attr:`count` is the planner's estimate (the change list then says so).
    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if isinstance(queryset, QuerySet) and connections[queryset.db].vendor == "postgresql":
            estimate = self._planner_estimate(queryset)
            if estimate is not None and estimate >= self.exact_below:
                self.count_is_estimate = True
                return estimate
        return super().count

    @staticmethod
    def _planner_estimate(queryset: QuerySet[Any]) -> int | None:
        # Compiled for the queryset's own database (query.sql_with_params() would use the
        # default alias's SQL dialect: found when MariaDB was the default and PostgreSQL not).
        sql, params = queryset.order_by().values("pk").query.get_compiler(using=queryset.db).as_sql()
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):  # a driver that returns json as text
            plan = json.loads(plan)
        try:
            return int(plan[0]["Plan"]["Plan Rows"])
        except (LookupError, TypeError, ValueError):
            return None


class AppFilter(admin.SimpleListFilter):
    """The site's configured WeChat apps (WECHAT_OAUTH["APPS"]) by name; the summary above the
    list follows it."""

    title = _("WeChat app")
    parameter_name = "app"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
        return [(app.name, f"{app.name} ({app.app_id})") for app in configured_apps().values()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return filter_by_app(queryset, self.value())


#: How the admin names each kind of app (registry.KIND_SCOPES).
KIND_LABELS = {
    "mp": _("Official Account (in WeChat)"),
    "open": _("Website QR login"),
    "miniprogram": _("Mini Program"),
    "wecom": _("WeCom"),
}


class KindFilter(admin.SimpleListFilter):
    """The kinds of the configured apps (Official Account, website, Mini Program, WeCom); the
    summary above the list follows it too."""

    title = _("kind of login")
    parameter_name = "kind"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
        kinds = dict.fromkeys(app.kind for app in configured_apps().values())
        return [(kind, KIND_LABELS.get(kind, kind)) for kind in kinds]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return filter_by_kind(queryset, self.value())


def filter_by_kind(queryset: QuerySet[Any], kind: str | None) -> QuerySet[Any]:
    if not kind:
        return queryset
    return queryset.filter(app_id__in=[app.app_id for app in configured_apps().values() if app.kind == kind])


def filter_by_app(queryset: QuerySet[Any], name: str | None) -> QuerySet[Any]:
    app = configured_apps().get(name) if name else None
    return queryset.filter(app_id=app.app_id) if app is not None else queryset


def app_label(app_id: str) -> str:
    """An app id as the admin shows it: with its configured name when it has one."""
    app = app_with_id(app_id)
    return f"{app.name} ({app_id})" if app is not None else app_id


class HasDuplicatesFilter(admin.SimpleListFilter):
    """Codes whose callback WeChat delivered more than once."""

    title = _("has duplicates")
    parameter_name = "has_duplicates"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OAuthCodeUse]) -> QuerySet[OAuthCodeUse]:
        if self.value() == "yes":
            return queryset.filter(duplicates__gt=0)
        if self.value() == "no":
            return queryset.filter(duplicates=0)
        return queryset


class FailedFilter(admin.SimpleListFilter):
    """Failed exchanges: any, those WeChat answered with an errcode, those that never got one
    (timeout, network, unreadable answer)."""

    title = _("failed")
    parameter_name = "failed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, Any]]:
        return [
            ("yes", _("Yes")),
            ("errcode", _("With a WeChat errcode")),
            ("other", _("Without errcode (timeout, network…)")),
            ("no", _("No")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OAuthCodeUse]) -> QuerySet[OAuthCodeUse]:
        has_error = ~Q(error="")
        match self.value():
            case "yes":
                return queryset.filter(has_error)
            case "errcode":
                return queryset.filter(errcode__isnull=False)
            case "other":
                return queryset.filter(has_error, errcode__isnull=True)
            case "no":
                return queryset.filter(error="")
        return queryset


@admin.register(OAuthCodeUse)
class OAuthCodeUseAdmin(_CodeUseAdmin):
    """Read-only history of authorisation codes: nothing can be added, changed or deleted one by
    one; rows leave through the retention purge only."""

    list_display = (
        "first_seen_at",
        "app",
        "status_badge",
        "openid",
        "duplicates",
        "resent_variant_seen",
        "max_gap_ms",
        "exchange_ms",
        "errcode",
        "request_id",
        "code_hash_prefix",
    )
    list_filter = (
        AppFilter,
        KindFilter,
        "status",
        ("first_seen_at", admin.DateFieldListFilter),
        HasDuplicatesFilter,
        FailedFilter,
    )
    # Exact matches only: openid and unionid each have a b-tree index, so ``=`` is an index
    # lookup at any table size. ``iexact``/``istartswith``/``icontains`` wrap the column in
    # UPPER() and read the whole table; even a case-sensitive ``startswith`` (LIKE 'x%') cannot
    # use a plain b-tree index unless the collation is "C" (checked on PostgreSQL 15 with
    # C.UTF-8: parallel seq scan). Identifiers are opaque and case-sensitive: people paste them.
    search_fields = ("openid__exact", "unionid__exact")
    search_help_text = _("An exact openid or unionid.")
    date_hierarchy = "first_seen_at"
    ordering = ("-first_seen_at",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 100
    actions = ("purge_expired",)
    #: Seconds the summary above the list is cached (0: computed on every render). It reads
    #: every row of the last 7 days (0.1-0.2 s at a million rows).
    summary_cache_timeout = 60

    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code_hash_prefix",
                    "app_id",
                    "status",
                    "first_seen_at",
                    "last_seen_at",
                    "completed_at",
                    "exchange_ms",
                )
            },
        ),
        (
            _("Outcome"),
            {
                "fields": (
                    "openid",
                    "unionid",
                    "scope",
                    "is_snapshot_user",
                    "tokens_held",
                    "access_token_expires_at",
                    "refresh_token_expires_at",
                )
            },
        ),
        (_("Duplicates"), {"fields": ("duplicates", "resent_variant_seen", "max_gap_ms")}),
        (_("Failure"), {"fields": ("error", "errcode", "errmsg", "request_id")}),
    )
    # Each entry of the fieldsets above is one field (no row of several): names only.
    readonly_fields = tuple(cast(str, name) for _title, options in fieldsets for name in options["fields"])
    # Belt and braces: even a subclass that re-allows changes never gets a form for these.
    exclude = OAuthCodeUse.TOKEN_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[OAuthCodeUse]:
        # The tokens and the profile stay in the database: they never reach a template.
        return super().get_queryset(request).defer(*OAuthCodeUse.TOKEN_FIELDS)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """No filter on a token or the profile, for anyone, superusers included.

        Django allows a change list lookup on any local field from the query string
        (``?refresh_token__gte=m``): which rows a page lists would tell whoever may view it
        whether each stored token sorts above a guess, and a token falls to bisection. Django
        answers such a request with a 400 (DisallowedModelAdminLookup).
        """
        if lookup.split(LOOKUP_SEP, 1)[0] in OAuthCodeUse.TOKEN_FIELDS:
            return False
        # Django 5.0+ always passes the request; None only from a caller of the old form.
        return super().lookup_allowed(lookup, value, request)  # type: ignore[arg-type]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_purge_permission(self, request: HttpRequest) -> bool:
        """The purge action needs the model's delete permission in the auth sense (the admin
        itself deletes nothing row by row)."""
        codename = get_permission_codename("delete", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: OAuthCodeUse) -> str:
        colour = STATUS_COLOURS.get(obj.status, "inherit")
        label = obj.get_status_display()
        if obj.error:
            return format_html(
                '<span style="color: {}; font-weight: bold">{}</span> <small>{}</small>',
                colour,
                label,
                obj.error,
            )
        return format_html('<span style="color: {}; font-weight: bold">{}</span>', colour, label)

    @admin.display(description=_("code hash"))
    def code_hash_prefix(self, obj: OAuthCodeUse) -> str:
        return format_html("<code>{}</code>", obj.code_hash[:12])

    @admin.display(description=_("tokens still held"), boolean=True)
    def tokens_held(self, obj: OAuthCodeUse) -> bool:
        """Whether the row still keeps tokens (inside the dedupe window, or not yet scrubbed)."""
        return OAuthCodeUse.objects.using(obj._state.db).filter(pk=obj.pk).exclude(access_token="").exists()

    @admin.action(description=_("Purge expired code uses"), permissions=["purge"])
    def purge_expired(self, request: HttpRequest, queryset: QuerySet[OAuthCodeUse]) -> None:
        """Run the retention purge (:func:`wechat_oauth.purge.purge`), whatever rows are selected.

        What leaves the table is a retention decision (``WECHAT_OAUTH["RETENTION"]``), not a
        per-row one: a row inside the retention is kept even if selected, an expired row goes
        even if not (and tokens past DEDUPE_WINDOW are blanked, as ``purge_oauth_codes`` does).
        Django runs an action only with a selection, so select any row (or all); the
        selection is never read, so "select all" on a huge table costs nothing.
        """
        from .purge import format_duration, purge

        try:
            report = purge()
        except ValueError as error:  # RETENTION shorter than DEDUPE_WINDOW
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(
            request,
            ngettext(
                "Purged %(count)d code use first seen more than %(age)s ago.",
                "Purged %(count)d code uses first seen more than %(age)s ago.",
                report.deleted,
            )
            % {"count": report.deleted, "age": format_duration(report.older_than)},
            messages.SUCCESS,
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CodeUseChangeList

    @admin.display(description=_("app"), ordering="app_id")
    def app(self, code_use: OAuthCodeUse) -> str:
        return app_label(code_use.app_id)

    def get_summary(self, request: HttpRequest) -> dict[str, Any]:
        """:func:`code_use_summary` of this admin's queryset (of the app the list is filtered
        to, if any), cached ``summary_cache_timeout``."""
        queryset = filter_by_kind(
            filter_by_app(self.get_queryset(request), request.GET.get(AppFilter.parameter_name)),
            request.GET.get(KindFilter.parameter_name),
        )
        if not self.summary_cache_timeout:
            return code_use_summary(queryset)
        key = summary_cache_key(queryset)
        summary: dict[str, Any] | None = cache.get(key)
        if summary is None:
            summary = code_use_summary(queryset)
            cache.set(key, summary, self.summary_cache_timeout)
        return summary

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "code_use_summary": self.get_summary(request)}
        return super().changelist_view(request, context)


User = get_user_model()


def is_privileged(user: Any) -> bool:
    """Whether ``user`` may use the admin (staff) or holds every permission (superuser)."""
    return bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))


class WeChatAccountForm(_AccountForm):
    """The account's change form: refuses a staff member or superuser as the new user unless
    :attr:`may_link_privileged` (set per request by :meth:`WeChatAccountAdmin.get_form`)."""

    may_link_privileged: bool = False

    def clean_user(self) -> Any:
        user = self.cleaned_data["user"]
        if is_privileged(user) and not self.may_link_privileged:
            raise ValidationError(
                _("Only a superuser can link a WeChat account to a staff member or a superuser."),
                code="privileged_user",
            )
        return user


@admin.register(WeChatAccount)
class WeChatAccountAdmin(_AccountAdmin):
    """WeChat identities and their users. Accounts are created by logging in; the identity
    (app id, openid, unionid) and the profile WeChat sent are read-only; the user can be
    re-linked, and deleting an account unlinks that identity.

    Re-linking hands a WeChat identity the login of a user: a staff member who may change
    accounts could otherwise link their own WeChat to a superuser and log in as them. Unless
    the admin user is a superuser, the user field is read-only on an account linked to a staff
    member or a superuser, and the form refuses one as the new user.
    """

    form = WeChatAccountForm

    list_display = (
        "openid",
        "user_link",
        "app",
        "linked_by",
        "unionid",
        "nickname",
        "last_login_at",
        "created_at",
    )
    list_filter = (AppFilter, KindFilter)
    # The user column links to the user's own admin page; the account's page opens from openid.
    list_display_links = ("openid",)
    list_select_related = ("user",)
    # Exact openid/unionid (indexed; see OAuthCodeUseAdmin); nickname and username are typed
    # in part, so they are matched loosely.
    search_fields = (
        "openid__exact",
        "unionid__exact",
        "nickname__icontains",
        f"user__{User.USERNAME_FIELD}__istartswith",
    )
    search_help_text = _("An exact openid or unionid, part of a nickname, or the start of a username.")
    raw_id_fields = ("user",)
    ordering = ("-created_at",)
    show_full_result_count = False
    readonly_fields = (
        "app_id",
        "openid",
        "unionid",
        "scope",
        *WeChatAccount.PROFILE_FIELDS,
        "last_login_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user",
                    "app_id",
                    "openid",
                    "unionid",
                    "scope",
                    "last_login_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (_("Profile"), {"fields": WeChatAccount.PROFILE_FIELDS}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=_("app"), ordering="app_id")
    def app(self, account: WeChatAccount) -> str:
        return app_label(account.app_id)

    @admin.display(description=_("linked by"))
    def linked_by(self, account: WeChatAccount) -> str:
        """unionid: the person's user across the apps; openid only: an app not bound to an
        Open Platform account (or one whose unionid WeChat did not send)."""
        return str(_("unionid") if account.unionid else _("openid only"))

    def may_link_privileged(self, request: HttpRequest) -> bool:
        """Whether the admin user may link accounts to and from staff members and superusers."""
        return bool(getattr(request.user, "is_superuser", False))

    def get_readonly_fields(self, request: HttpRequest, obj: WeChatAccount | None = None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and is_privileged(obj.user) and not self.may_link_privileged(request):
            return ("user", *readonly)
        return readonly

    def get_form(
        self, request: HttpRequest, obj: WeChatAccount | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        # self.form is WeChatAccountForm: the admin's form is a subclass of it.
        form = cast("type[WeChatAccountForm]", super().get_form(request, obj, change, **kwargs))
        # A class of its own per call (modelform_factory), so the flag is this request's only.
        form.may_link_privileged = self.may_link_privileged(request)
        return form

    @admin.display(description=_("user"), ordering=f"user__{User.USERNAME_FIELD}")
    def user_link(self, obj: WeChatAccount) -> str:
        opts = User._meta
        try:
            url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[obj.user_id]
            )
        except NoReverseMatch:  # the user model has no admin on this site
            return str(obj.user)
        return format_html('<a href="{}">{}</a>', url, obj.user)


@admin.register(WeChatUnion)
class WeChatUnionAdmin(_UnionAdmin):
    """The persons (unionid) the site knows and the user each logs in as: read-only, made by
    logins; deleting one lets the person's next first login through a new app make a new user."""

    list_display = ("unionid", "user", "created_at")
    list_select_related = ("user",)
    search_fields = ("unionid__exact",)
    search_help_text = _("An exact unionid.")
    raw_id_fields = ("user",)
    readonly_fields = ("unionid", "user", "created_at")
    ordering = ("-created_at",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
