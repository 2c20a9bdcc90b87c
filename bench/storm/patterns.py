"""The duplicate-callback patterns (wechat-web-auth.md §3) and one login under each.

A login of a browser kind (bench/storm/apps.py: ``mp``, ``open``, ``wecom``): the site's login
view of the kind's app, the fake's authorize page (``mp``; ``wecom`` with an agentid, in
WeCom's browser) or qrconnect page (``open``, the website app's QR login), answered at once
with a fresh code for the login's person (``fake_person=``; a WeCom member: ``fake_userid=``),
then the pattern's callbacks, then ``/whoami/`` with the cookie jar of the response the user
sees. On a library site (``SiteHandle.library``, bench/storm/libraries.py) the login starts
the library's way (its login page, then its button's POST) and ``/whoami/`` must name the
person's account there. The WeCom kind runs the patterns of :data:`KIND_PATTERNS`
(abort-and-resend among them), not all of them.

A Mini Program login (``mini``, :data:`MINI_PATTERNS`): the front end's ``wx.login()`` (the
fake's control API hands out a code for the person), then the pattern's POSTs of
``{"code": ...}`` to the session endpoint; it succeeds when every answer the front end keeps
is a 200 with a token for the person's openid whose ``/whoami/`` (``Authorization: Bearer``)
names the person's user. A POST whose answer is lost is sent over a raw socket and aborted
~5 ms later, unread (the server still handles it).

Every login uses a new person (a first login: the user is created), except the QR logins
given a *partner*: the Official Account login of the same run whose person they reuse (the
second app of a known person: the login joins the partner's user).

What the user sees, per pattern:

* ``plain``: the one callback;
* ``abort_resend``: the re-sent callback (the first was aborted by the client, unread);
* ``parallel_N``, ``two_codes``, ``spread_parallel_4``: the response to the request sent last
  (a browser renders its last navigation); that the other duplicates answered 4xx/5xx is
  counted apart;
* ``refresh``: both the callback and its refresh by the logged-in browser.

A response the user sees succeeds when it redirects to ``/whoami/`` and ``/whoami/`` then names
the login's user: the user the partner saw, or else the person's user as the site names it
(:func:`bench.storm.apps.user_name`). A redirect to WeChat's authorize (qrconnect) page (the
app's one automatic restart of a login whose code is spent) is followed, and the login counts
as *restarted*, not failed, if it then completes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from bench.storm.apps import KINDS, WEB_KINDS, StormApp, app_id, new_person, openid_of, user_name
from bench.storm.browser import Browser, Hit, authorize_url_for, on_netloc, run_together, with_query
from wechat_oauth.testing.remote import RemoteFakeWeChat
from wechat_oauth.testing.wechat_client import resend_params, send_and_abort

if TYPE_CHECKING:
    from bench.storm.libraries import LibrarySite

NEXT = "/whoami/"
RESEND_DELAY = 0.020


@dataclass
class SiteHandle:
    """The bench's view of one site: its two instances' base URLs and the fake's; for a site
    of another library (bench/storm/libraries.py), how a login starts there and who its
    /whoami/ names."""

    name: str
    urls: list[str]
    fake_url: str
    library: LibrarySite | None = None


@dataclass
class Login:
    site: str
    pattern: str
    index: int
    person: str
    #: The kind of app it logs in through (bench/storm/apps.py: mp, open, mini, wecom).
    kind: str = "mp"
    #: The other app's login of the same person, when this one reuses its person.
    partner: Login | None = field(default=None, repr=False)
    #: Usernames /whoami/ may name at the end (None: the one :meth:`expected_users` derives).
    accept: frozenset[str] | None = None
    #: What /whoami/ named at the end of the login (None: it never got that far).
    user: str | None = None
    codes: list[str] = field(default_factory=list)
    #: Every answered callback request (a Mini Program's: session POST; duplicates included;
    #: not the aborted ones).
    callbacks: list[Hit] = field(default_factory=list)
    #: The callback responses the user sees (a Mini Program's: the answers its front end
    #: keeps).
    visible: list[Hit] = field(default_factory=list)
    outcome: str = "failed"  # ok | restarted | failed
    reason: str = ""
    restarts: int = 0
    aborted: int = 0

    @property
    def any_callback_failed(self) -> bool:
        return any(hit.failed for hit in self.callbacks)

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def expected_users(self) -> frozenset[str]:
        """Who /whoami/ must name: the user the partner ended as, else the person's user as
        the site names it when this is its first login."""
        if self.accept is not None:
            return self.accept
        if self.partner is not None and not self.partner.failed and self.partner.user:
            return frozenset({self.partner.user})
        return frozenset({user_name(self.site, self.kind, self.person)})


class LoginFailed(Exception):
    pass


@dataclass
class Context:
    site: SiteHandle
    count_sql: bool
    login: Login

    @property
    def home(self) -> str:
        """The instance this login starts on (alternating A/B)."""
        return self.site.urls[self.login.index % 2]

    @property
    def other(self) -> str:
        return self.site.urls[1 - self.login.index % 2]

    @property
    def app(self) -> StormApp:
        return KINDS[self.login.kind]

    def browser(self) -> Browser:
        return Browser(count_sql=self.count_sql, user_agent=self.app.user_agent)

    def start(self, browser: Browser) -> str:
        """Login view (a library site: its own way) -> the authorize (or qrconnect) URL
        (fragment dropped)."""
        if self.site.library is not None:
            hit = self.site.library.start(browser, self.home, NEXT)
        else:
            hit = browser.get(f"{self.home}{self.app.login_path}?next=%2Fwhoami%2F", "login view")
        if hit.status != 302:
            raise LoginFailed(f"login view answered {hit.status or hit.error} {hit.body}")
        if urlsplit(hit.location).path != f"/connect/{self._page_path}":
            raise LoginFailed(
                f"login view sent the browser to {hit.location[:80]}, not WeChat's {self.app.page} page"
            )
        return with_query(hit.location, "")

    @property
    def _page_path(self) -> str:
        return {"authorize": "oauth2/authorize", "qrconnect": "qrconnect"}[self.app.page]

    def authorize(self, browser: Browser, authorize_url: str) -> str:
        """The fake's authorize (qrconnect) page -> the callback URL with a fresh code
        (recorded)."""
        hit = browser.get(authorize_url_for(authorize_url, self.login.person, self.app.who), self.app.page)
        if hit.status != 302:
            raise LoginFailed(f"{self.app.page} answered {hit.status or hit.error}")
        code = dict(parse_qsl(urlsplit(hit.location).query)).get("code")
        if code:
            self.login.codes.append(code)
        return hit.location

    def callback(self, browser: Browser, url: str, role: str = "callback") -> Hit:
        hit = browser.get(url, role)
        if hit.status:
            self.login.callbacks.append(hit)
        return hit

    def at(self, url: str, base: str) -> str:
        return on_netloc(url, urlsplit(base).netloc)

    def abort(self, browser: Browser, url: str) -> None:
        send_and_abort(url, browser.session.cookies, user_agent=browser.user_agent)
        self.login.aborted += 1

    def settle(self, browser: Browser, hit: Hit, depth: int = 0) -> None:
        """Judge one response the user sees (following the app's restart of a login)."""
        if depth == 0:
            self.login.visible.append(hit)
        if hit.status == 302 and urlsplit(hit.location).path == NEXT:
            library = self.site.library
            user = self.login.user = browser.whoami(self.home, read=library.who if library else None)
            expected = (
                frozenset({library.identity(self.login.person)}) if library else self.login.expected_users()
            )
            if user not in expected:
                raise LoginFailed(
                    f"after {hit.role}: /whoami/ says {user!r}, not "
                    f"{' or '.join(map(repr, sorted(expected)))}"
                )
            return
        if hit.status == 302 and hit.location.startswith(self.site.fake_url) and depth < 2:
            self.login.restarts += 1
            callback = self.authorize(browser, with_query(hit.location, ""))
            again = self.callback(browser, self.at(callback, self.home), "restarted callback")
            self.settle(browser, again, depth + 1)
            return
        what = hit.status or hit.error
        raise LoginFailed(f"{hit.role} answered {what} {hit.location or hit.body}".strip())

    # -- a Mini Program's front end ------------------------------------------------------------

    def js_code(self) -> str:
        """``wx.login()``: a fresh code of the site's Mini Program for the login's person, from
        the fake's control API (recorded)."""
        fake = RemoteFakeWeChat(self.site.fake_url)
        code = fake.issue_js_code(app_id(self.site.name, "mini"), person=self.login.person)
        self.login.codes.append(code)
        return code

    def session_url(self, base: str) -> str:
        return f"{base}{self.app.callback_path}"

    def post(self, browser: Browser, base: str, code: str, role: str) -> Hit:
        hit = browser.post_json(self.session_url(base), session_body(code), role)
        if hit.status:
            self.login.callbacks.append(hit)
        return hit

    def abort_post(self, browser: Browser, base: str, code: str) -> None:
        """A POST whose answer the front end never reads (the task aborted, the answer lost):
        the server still handles it."""
        send_and_abort(
            self.session_url(base), user_agent=browser.user_agent, method="POST", body=session_body(code)
        )
        self.login.aborted += 1

    def keep(self, browser: Browser, hit: Hit) -> None:
        """Judge one answer the Mini Program keeps: a 200 with a token for the person's openid,
        and the token names the person's user."""
        self.login.visible.append(hit)
        answer = hit.answer or {}
        if hit.status != 200 or not answer.get("token"):
            what = hit.status or hit.error
            raise LoginFailed(f"{hit.role} answered {what} {hit.body or answer}".strip())
        openid = openid_of(self.site.name, "mini", self.login.person)
        if answer.get("openid") != openid:
            raise LoginFailed(f"{hit.role}: openid {answer.get('openid')!r}, not {openid!r}")
        user = self.login.user = browser.whoami(self.home, token=str(answer["token"]))
        expected = self.login.expected_users()
        if user not in expected:
            raise LoginFailed(
                f"after {hit.role}: /whoami/ with its token says {user!r}, not "
                f"{' or '.join(map(repr, sorted(expected)))}"
            )


def session_body(code: str) -> bytes:
    return json.dumps({"code": code}).encode()


# -- the patterns ---------------------------------------------------------------------------------


def plain(ctx: Context) -> None:
    browser = ctx.browser()
    callback = ctx.authorize(browser, ctx.start(browser))
    ctx.settle(browser, ctx.callback(browser, callback))


def abort_resend(ctx: Context, *, spread: bool = False) -> None:
    """WeChat's abort-and-resend: the first callback aborted ~5 ms after it was sent, then ~20 ms
    later the same URL plus uin/key/pass_ticket (on the other instance if ``spread``)."""
    browser = ctx.browser()
    callback = ctx.authorize(browser, ctx.start(browser))
    ctx.abort(browser, ctx.at(callback, ctx.home))
    time.sleep(RESEND_DELAY)
    resent = with_query(ctx.at(callback, ctx.other if spread else ctx.home), resend_params())
    ctx.settle(browser, ctx.callback(browser, resent, "re-sent callback"))


def _last_started(browsers: list[Browser], results: list[Any]) -> tuple[Browser, Hit]:
    hits = [(browser, hit) for browser, hit in zip(browsers, results, strict=True) if isinstance(hit, Hit)]
    if not hits:
        raise LoginFailed(f"no duplicate answered: {results[:1]!r}")
    return max(hits, key=lambda pair: pair[1].started)


def parallel(ctx: Context, n: int, *, spread: bool = False) -> None:
    """``n`` copies of the callback at once from one cookie jar (alternating instances if
    ``spread``, else all on the login's instance)."""
    browser = ctx.browser()
    send_parallel(ctx, browser, ctx.authorize(browser, ctx.start(browser)), n, spread=spread)


def send_parallel(ctx: Context, browser: Browser, callback: str, n: int, *, spread: bool) -> None:
    """Send ``callback`` ``n`` times at once from copies of ``browser``'s cookie jar; the one
    started last is the page the user sees."""
    tabs = [browser.copy() for _ in range(n)]
    targets = [(ctx.home, ctx.other)[i % 2] if spread else ctx.home for i in range(n)]
    results = run_together(
        [
            partial(ctx.callback, tab, ctx.at(callback, target), "duplicate")
            for tab, target in zip(tabs, targets, strict=True)
        ]
    )
    tab, hit = _last_started(tabs, results)
    ctx.settle(tab, hit)
    for other in tabs:
        other.close()


def two_codes(ctx: Context) -> None:
    """Android: the authorize page answered twice for one state (two codes), both callbacks at
    once from one cookie jar."""
    browser = ctx.browser()
    authorize = ctx.start(browser)
    callbacks = [ctx.authorize(browser, authorize) for _ in range(2)]
    tabs = [browser.copy() for _ in range(2)]
    results = run_together(
        [
            partial(ctx.callback, tab, ctx.at(url, ctx.home), "callback")
            for tab, url in zip(tabs, callbacks, strict=True)
        ]
    )
    tab, hit = _last_started(tabs, results)
    ctx.settle(tab, hit)


def refresh(ctx: Context) -> None:
    """A login, then the logged-in browser requests the callback URL again (refresh/Back)."""
    browser = ctx.browser()
    callback = ctx.at(ctx.authorize(browser, ctx.start(browser)), ctx.home)
    ctx.settle(browser, ctx.callback(browser, callback))
    ctx.settle(browser, ctx.callback(browser, callback, "refresh"))


# -- the Mini Program's patterns --------------------------------------------------------------


def mini_plain(ctx: Context) -> None:
    """wx.login(), one POST."""
    browser = ctx.browser()
    code = ctx.js_code()
    ctx.keep(browser, ctx.post(browser, ctx.home, code, "session POST"))


def mini_double(ctx: Context) -> None:
    """A careless front end: onLaunch and onLoad both POST the one code, at once; both answers
    are kept."""
    browser = ctx.browser()
    code = ctx.js_code()
    tabs = [browser.copy() for _ in range(2)]
    results = run_together(
        [
            partial(ctx.post, tab, ctx.home, code, role)
            for tab, role in zip(tabs, ("onLaunch POST", "onLoad POST"), strict=True)
        ]
    )
    for tab, result in zip(tabs, results, strict=True):
        if not isinstance(result, Hit):
            raise LoginFailed(f"load generator: {result!r}")
        ctx.keep(tab, result)


def mini_abort_retry(ctx: Context) -> None:
    """The POST's answer is lost (the client aborts it ~5 ms after sending: the server still
    handles it), and ~20 ms later the front end POSTs the code again; the retry's answer is
    kept."""
    browser = ctx.browser()
    code = ctx.js_code()
    ctx.abort_post(browser, ctx.home, code)
    time.sleep(RESEND_DELAY)
    ctx.keep(browser, ctx.post(browser, ctx.home, code, "retried POST"))


def mini_double_retry(ctx: Context, *, spread: bool = False) -> None:
    """Both at once: onLaunch and onLoad POST the code together, onLaunch's answer is lost
    (aborted) and it retries ~20 ms later; the front end keeps onLoad's answer and the
    retry's. ``spread``: onLoad and the retry go to the other instance."""
    browser = ctx.browser()
    code = ctx.js_code()
    launch, load = browser.copy(), browser.copy()
    again = ctx.other if spread else ctx.home

    def on_launch() -> Hit:
        ctx.abort_post(launch, ctx.home, code)
        time.sleep(RESEND_DELAY)
        return ctx.post(launch, again, code, "retried POST")

    results = run_together([partial(ctx.post, load, again, code, "onLoad POST"), on_launch])
    for tab, result in zip((load, launch), results, strict=True):
        if not isinstance(result, Hit):
            raise LoginFailed(f"load generator: {result!r}")
        ctx.keep(tab, result)


PatternFunction = Callable[[Context], None]

#: name -> (function, requests in flight per login: bounds the concurrency of browsers).
PATTERNS: dict[str, tuple[PatternFunction, int]] = {
    "plain": (plain, 1),
    "abort_resend": (abort_resend, 2),
    "parallel_2": (partial(parallel, n=2), 2),
    "parallel_5": (partial(parallel, n=5), 5),
    "parallel_20": (partial(parallel, n=20), 20),
    "parallel_50": (partial(parallel, n=50), 50),
    "two_codes": (two_codes, 2),
    "refresh": (refresh, 1),
    "spread_abort_resend": (partial(abort_resend, spread=True), 2),
    "spread_parallel_4": (partial(parallel, n=4, spread=True), 4),
}
#: The Mini Program's patterns (its front end POSTs a code; no callback, no page).
MINI_PATTERNS: dict[str, tuple[PatternFunction, int]] = {
    "plain": (mini_plain, 1),
    "double_post": (mini_double, 2),
    "abort_retry": (mini_abort_retry, 2),
    "double_retry": (mini_double_retry, 3),
    "spread_double_retry": (partial(mini_double_retry, spread=True), 3),
}
#: The patterns each kind runs, in order ("plain" first: the ABBA pass, the probe's).
KIND_PATTERNS: dict[str, tuple[str, ...]] = {
    "mp": tuple(PATTERNS),
    "open": tuple(PATTERNS),
    "mini": tuple(MINI_PATTERNS),
    "wecom": ("plain", "abort_resend", "spread_abort_resend", "parallel_5", "refresh"),
}


def pattern_of(kind: str, name: str) -> tuple[PatternFunction, int]:
    """The function of pattern ``name`` for ``kind``, and its requests in flight per login."""
    if name not in KIND_PATTERNS[kind]:
        raise KeyError(f"kind {kind} has no pattern {name!r}")
    return (MINI_PATTERNS if kind == "mini" else PATTERNS)[name]


def conclude(login: Login, steps: Callable[[], None]) -> None:
    """Run ``steps`` (the rest of ``login``, ending in the judgement of what the user sees) and
    set its outcome: failed on :class:`LoginFailed`, else restarted or ok. Other exceptions
    propagate."""
    try:
        steps()
    except LoginFailed as exc:
        login.outcome, login.reason = "failed", str(exc)
    else:
        login.outcome = "restarted" if login.restarts else "ok"


def run_login(
    site: SiteHandle,
    name: str,
    index: int,
    *,
    count_sql: bool,
    pattern: str | None = None,
    kind: str = "mp",
    partner: Login | None = None,
    person: str | None = None,
    accept: frozenset[str] | None = None,
) -> Login:
    """One login of ``kind`` under ``pattern`` (default: ``name``), labelled ``name``: for a
    new person, or ``person``, or the ``partner``'s."""
    person = partner.person if partner is not None else person
    login = Login(
        site.name,
        name,
        index,
        person or new_person(site.name, name, index),
        kind,
        partner=partner,
        accept=accept,
    )
    function, _ = pattern_of(kind, pattern or name)
    try:
        conclude(login, partial(function, Context(site, count_sql, login)))
    except Exception as exc:  # a run never crashes on one login
        login.outcome, login.reason = "failed", f"load generator: {type(exc).__name__}: {exc}"
    return login


def both_apps_at_once(site: SiteHandle, index: int, *, count_sql: bool) -> list[Login]:
    """A new person's first logins through both apps, released at one instant (a plain login
    each, two browsers): whichever commits first creates the person's user, the other must
    join it. Either user name is accepted by each; that both are the same user is checked
    afterwards (the report's cross_app figures)."""
    person = new_person(site.name, "both", index)
    accept = frozenset(user_name(site.name, kind, person) for kind in WEB_KINDS)
    results = run_together(
        [
            partial(
                run_login,
                site,
                "both_apps_at_once",
                index,
                count_sql=count_sql,
                pattern="plain",
                kind=kind,
                person=person,
                accept=accept,
            )
            for kind in WEB_KINDS
        ]
    )
    logins = []
    for kind, result in zip(WEB_KINDS, results, strict=True):
        if not isinstance(result, Login):  # run_login catches everything; just in case
            result = Login(
                site.name,
                "both_apps_at_once",
                index,
                person,
                kind,
                accept=accept,
                reason=f"load generator: {result!r}",
            )
        logins.append(result)
    logins[-1].partner = logins[0]
    return logins
