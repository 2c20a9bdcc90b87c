"""WeCom (企业微信): corps, their agents (apps), access tokens, codes and user tickets.

A corp (``corp_id``) has agents, each with an ``agent_id`` and its own ``secret``;
``cgi-bin/gettoken?corpid&corpsecret`` answers the agent's token (the same one while it lives,
as WeCom does), which ``auth/getuserinfo`` needs to spend a code issued for that agent. A code
names a member (``userid``) or a non-member, a person outside the corp, who has an ``openid``
and an ``external_userid`` in the corp (:func:`wecom_openid_for`, :func:`external_userid_for`).
A member's code of scope ``snsapi_privateinfo`` also answers a ``user_ticket`` for
``auth/getuserdetail`` (valid 1800 s, reusable meanwhile).

Thread-safe (one lock); errors are :class:`~.state.WeChatError` with WeCom's messages (the HTTP
layer formats them as WeCom does, with its ``hint`` and ``more info`` link).
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wechat_oauth.testing.apps import DEFAULT_PERSON, _derived_id, _new_secret

#: The member a code names when no userid is given.
DEFAULT_WECOM_USERID = "FakeMember"
WECOM_TOKEN_TTL = 7200
USER_TICKET_TTL = 1800
WECOM_SCOPES = frozenset({"snsapi_base", "snsapi_privateinfo"})
#: The WeCom endpoints counted per agent in ``stats()["wecom_calls"]``.
WECOM_AGENT_ENDPOINTS = ("authorize", "wwlogin", "gettoken", "getuserinfo", "getuserdetail")

#: errmsg WeCom sends with each errcode (before its ", hint: [...]" suffix).
WECOM_ERRMSG: dict[int, str] = {
    -1: "system busy",
    40001: "invalid secret",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43002: "require POST method",
    45009: "api freq out of limit",
    47001: "data format error",
}


def wecom_openid_for(corp_id: str, person: str) -> str:
    """The openid of a non-member ``person`` in corp ``corp_id``."""
    return _derived_id("o", "wecom-openid", corp_id, person)


def external_userid_for(corp_id: str, person: str) -> str:
    """The external_userid of a non-member ``person`` in corp ``corp_id`` (``wm...``)."""
    return "wm" + _derived_id("", "external_userid", corp_id, person)


def _agent_key(agent_id: int | str) -> str:
    """An agentid as a string (WeCom's are numbers, ``1000002``; both forms are accepted)."""
    key = str(agent_id).strip()
    if not key:
        raise ValueError("agent_id must not be empty")
    return key


@dataclass(frozen=True)
class FakeAgent:
    corp_id: str
    agent_id: str
    secret: str


@dataclass(frozen=True)
class WeComUser:
    """Who a WeCom code names: a member (``userid``) or a non-member person."""

    corp_id: str
    agent_id: str
    userid: str = ""
    person: str = ""

    def answer(self) -> dict[str, str]:
        if self.userid:
            return {"userid": self.userid}
        return {
            "openid": wecom_openid_for(self.corp_id, self.person),
            "external_userid": external_userid_for(self.corp_id, self.person),
        }


@dataclass
class WeComCode:
    user: WeComUser
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class WeComToken:
    agent: FakeAgent
    expires_at: float


@dataclass
class UserTicket:
    user: WeComUser
    expires_at: float


def _refuse(errcode: int) -> Exception:
    from wechat_oauth.testing.state import WeChatError

    return WeChatError(errcode, WECOM_ERRMSG.get(errcode))


class WeComState:
    """The corps of one fake and what their agents were handed out (see the module doc)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._agents: dict[tuple[str, str], FakeAgent] = {}
        self.clear()

    def clear(self) -> None:
        """Forget tokens, codes, tickets and counters (the corps and agents stay)."""
        with self._lock:
            self._tokens: dict[str, WeComToken] = {}
            self._current: dict[tuple[str, str], str] = {}
            self._codes: dict[str, WeComCode] = {}
            self._tickets: dict[str, UserTicket] = {}
            self._calls: Counter[tuple[str, str, str]] = Counter()

    def secrets(self) -> set[str]:
        with self._lock:
            return {
                *(agent.secret for agent in self._agents.values()),
                *self._tokens,
                *self._codes,
                *self._tickets,
            }

    # Corps and agents.

    def add_corp(self, corp_id: str, agent_id: int | str, secret: str | None = None) -> str:
        """Know agent ``agent_id`` of corp ``corp_id`` (random secret if none is given); its
        secret. A known agent again changes nothing (another secret: ``ValueError``)."""
        if not corp_id:
            raise ValueError("corp_id must not be empty")
        key = (corp_id, _agent_key(agent_id))
        with self._lock:
            known = self._agents.get(key)
            if known is None:
                chosen = secret if secret is not None else _new_secret()
                if not chosen:
                    raise ValueError("secret must not be empty")
                if any(a.corp_id == corp_id and a.secret == chosen for a in self._agents.values()):
                    raise ValueError(f"another agent of corp {corp_id} has this secret")
                known = self._agents[key] = FakeAgent(*key, chosen)
        if secret is not None and secret != known.secret:
            raise ValueError(f"agent {key[1]} of corp {corp_id} is known with another secret")
        return known.secret

    def agent(self, corp_id: str | None, agent_id: int | str | None) -> FakeAgent:
        """A known agent (``ValueError`` naming it if unknown)."""
        key = (corp_id or "", _agent_key(agent_id if agent_id is not None else ""))
        with self._lock:
            found = self._agents.get(key)
        if found is None:
            raise ValueError(f"unknown agent {key[1]} of corp {key[0]!r}: add it with add_corp()")
        return found

    def find_agent(self, corp_id: str | None, agent_id: str | None) -> FakeAgent | None:
        try:
            return self.agent(corp_id, agent_id)
        except ValueError:
            return None

    def agents(self) -> list[FakeAgent]:
        with self._lock:
            return list(self._agents.values())

    # Codes.

    def issue_code(
        self,
        corp_id: str,
        agent_id: int | str,
        userid: str | None,
        *,
        member: bool,
        person: str | None,
        scope: str,
        ttl: float,
    ) -> str:
        agent = self.agent(corp_id, agent_id)
        if scope not in WECOM_SCOPES:
            raise ValueError(f"scope must be one of {', '.join(sorted(WECOM_SCOPES))}")
        if member:
            if person is not None:
                raise ValueError("a member is named by userid, not person")
            user = WeComUser(agent.corp_id, agent.agent_id, userid=userid or DEFAULT_WECOM_USERID)
        else:
            if userid:
                raise ValueError("a non-member has no userid: name them with person")
            user = WeComUser(agent.corp_id, agent.agent_id, person=person or DEFAULT_PERSON)
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = WeComCode(user, scope, self._now() + ttl)
        return code

    def consume_code(self, access_token: str | None, code: str | None) -> None:
        """Spend ``code`` if the token is live and its agent's (an answer lost)."""
        with self._lock:
            token = self._tokens.get(access_token or "")
            grant = self._codes.get(code or "")
            if token is not None and grant is not None and self._owns(token.agent, grant.user):
                grant.used = True

    @staticmethod
    def _owns(agent: FakeAgent, user: WeComUser) -> bool:
        return (agent.corp_id, agent.agent_id) == (user.corp_id, user.agent_id)

    # Tokens.

    def gettoken(self, corpid: str | None, corpsecret: str | None) -> dict[str, Any]:
        """``cgi-bin/gettoken``: the agent's live token, or a new one."""
        if not corpid:
            raise _refuse(41002)
        with self._lock:
            agents = [a for a in self._agents.values() if a.corp_id == corpid]
            if not agents:
                raise _refuse(40013)
            if not corpsecret:
                raise _refuse(41004)
            agent = next((a for a in agents if a.secret == corpsecret), None)
            if agent is None:
                raise _refuse(40001)
            now = self._now()
            key = (agent.corp_id, agent.agent_id)
            token = self._current.get(key)
            grant = self._tokens.get(token or "")
            if token is None or grant is None or grant.expires_at <= now:
                token = secrets.token_urlsafe(48)
                grant = self._tokens[token] = WeComToken(agent, now + WECOM_TOKEN_TTL)
                self._current[key] = token
            # Rounded: now + TTL - now is not always TTL in floating point (7199.999...).
            expires_in = max(1, round(grant.expires_at - now))
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in}

    def invalidate_token(self, corp_id: str, agent_id: int | str) -> None:
        """Expire the agent's current token now: it answers 42001, gettoken a new one."""
        agent = self.agent(corp_id, agent_id)
        with self._lock:
            token = self._current.pop((agent.corp_id, agent.agent_id), None)
            if token is not None:
                self._tokens[token].expires_at = self._now()

    def _token(self, access_token: str | None) -> FakeAgent:
        """The agent of a live token (41001, 40014, 42001 otherwise). Under the lock."""
        if not access_token:
            raise _refuse(41001)
        grant = self._tokens.get(access_token)
        if grant is None:
            raise _refuse(40014)
        if grant.expires_at <= self._now():
            raise _refuse(42001)
        return grant.agent

    def agent_of_token(self, access_token: str | None) -> FakeAgent | None:
        with self._lock:
            grant = self._tokens.get(access_token or "")
            return grant.agent if grant is not None else None

    def agent_of_secret(self, corp_id: str | None, secret: str | None) -> FakeAgent | None:
        with self._lock:
            return next(
                (a for a in self._agents.values() if (a.corp_id, a.secret) == (corp_id, secret)),
                None,
            )

    # The API.

    def getuserinfo(self, access_token: str | None, code: str | None) -> dict[str, Any]:
        """``cgi-bin/auth/getuserinfo``: spend a code of the token's agent (40029 if unknown,
        another agent's, expired or used: WeCom does not tell reuse apart)."""
        with self._lock:
            agent = self._token(access_token)
            if not code:
                raise _refuse(41008)
            grant = self._codes.get(code)
            if (
                grant is None
                or not self._owns(agent, grant.user)
                or grant.expires_at <= self._now()
                or grant.used
            ):
                raise _refuse(40029)
            grant.used = True
            body: dict[str, Any] = {"errcode": 0, "errmsg": "ok", **grant.user.answer()}
            if grant.user.userid and grant.scope == "snsapi_privateinfo":
                ticket = secrets.token_urlsafe(48)
                self._tickets[ticket] = UserTicket(grant.user, self._now() + USER_TICKET_TTL)
                body |= {"user_ticket": ticket, "expires_in": USER_TICKET_TTL}
        return body

    def getuserdetail(self, access_token: str | None, user_ticket: Any) -> dict[str, Any]:
        """``cgi-bin/auth/getuserdetail``: a member's private details for a live ticket of the
        token's agent (40029 for any other ticket, or none)."""
        with self._lock:
            agent = self._token(access_token)
            ticket = self._tickets.get(user_ticket) if isinstance(user_ticket, str) else None
            if ticket is None or not self._owns(agent, ticket.user):
                raise _refuse(40029)
            if ticket.expires_at <= self._now():
                raise _refuse(40029)
        userid = ticket.user.userid
        return {
            "errcode": 0,
            "errmsg": "ok",
            "userid": userid,
            "gender": "1",
            "avatar": f"https://wework.qpic.cn/fake/{userid}/0",
            "qr_code": f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode=fake-{userid}",
            "mobile": "13800000000",
            "email": f"{userid.lower()}@example.com",
            "biz_mail": f"{userid.lower()}@corp.example.com",
            "address": "Shenzhen, Guangdong",
        }

    # Counters.

    def record(self, agent: FakeAgent | None, endpoint: str) -> None:
        if agent is not None:
            with self._lock:
                self._calls[agent.corp_id, agent.agent_id, endpoint] += 1

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        """``{corp_id: {agent_id: {endpoint: n}}}`` for :data:`WECOM_AGENT_ENDPOINTS`."""
        with self._lock:
            out: dict[str, dict[str, dict[str, int]]] = {}
            for agent in self._agents.values():
                out.setdefault(agent.corp_id, {})[agent.agent_id] = {
                    endpoint: self._calls[agent.corp_id, agent.agent_id, endpoint]
                    for endpoint in WECOM_AGENT_ENDPOINTS
                }
            return out
