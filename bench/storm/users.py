"""Who the persons of a run became on each site: Django users per person, read from the site's
database after the logins (bench/storm/apps.py says how each site names and links them).

* guarded: a person's users are the users its WeChatAccount rows (one per app it logged in
  through: its appid and openid there) point to; also its WeChatUnion row (the person, by
  unionid) and the users no account points to;
* naive: the users named after the person's unionid (or one of its openids), or
  ``wecom_<userid>`` for a WeCom member.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.storm.apps import KINDS, identities, openid_of, user_name
from bench.storm.databases import Database
from wechat_oauth.testing import unionid_for


@dataclass
class SiteUsers:
    site: str
    #: person -> ids of the Django users that are that person's on the site.
    by_person: dict[str, set[int]] = field(default_factory=dict)
    users_total: int = 0
    #: guarded: WeChatAccount rows per (appid, openid) of the run's persons (the table's
    #: unique key: never above 1).
    accounts_per_identity: Counter[tuple[str, str]] | None = None
    #: guarded: persons whose WeChatUnion row names another user than their accounts do.
    union_user_differs: int | None = None
    #: guarded: users no WeChatAccount points to (a user left behind by a rolled-back link).
    users_without_account: int | None = None

    def count(self, person: str) -> int:
        return len(self.by_person.get(person, ()))


def read_users(db: Database, site: str, persons: Iterable[str]) -> SiteUsers:
    persons = set(persons)
    out = SiteUsers(site)
    with db.connect(site) as conn:
        users = {int(pk): str(name) for pk, name in db.query(conn, "SELECT id, username FROM auth_user")}
        out.users_total = len(users)
        if site == "naive":
            ids = {name: pk for pk, name in users.items()}
            for person in persons:
                names = {
                    *(user_name(site, kind, person) for kind in KINDS),
                    *(f"wx_{openid_of(site, kind, person)}" for kind in KINDS if kind != "wecom"),
                }
                out.by_person[person] = {ids[name] for name in names if name in ids}
            return out
        accounts = db.query(conn, "SELECT app_id, openid, user_id FROM wechat_oauth_wechataccount")
        unions = dict(db.query(conn, "SELECT unionid, user_id FROM wechat_oauth_wechatunion"))
    owner = {}  # (appid, openid) of a run's person -> the person
    for person in persons:
        for identity in identities(site, person):
            owner[identity] = person
    out.accounts_per_identity = Counter()
    for app, openid, user in accounts:
        person = owner.get((app, openid))
        if person is not None:
            out.by_person.setdefault(person, set()).add(int(user))
            out.accounts_per_identity[app, openid] += 1
    out.users_without_account = len(set(users) - {int(user) for _, _, user in accounts})
    out.union_user_differs = sum(
        1
        for person, ids in out.by_person.items()
        if unionid_for(person) in unions and {int(unions[unionid_for(person)])} != ids
    )
    for person in persons:
        out.by_person.setdefault(person, set())
    return out
