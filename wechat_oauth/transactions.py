"""The app's own write transactions, correct on SQLite as Django creates it.

SQLite's default (deferred) transaction takes the shared lock at its first read and asks for
the write lock at its first write. If another connection is committing meanwhile (it holds the
write lock and waits for readers to leave), SQLite cannot wait for both and answers "database
is locked" at once, whatever the ``timeout``: under WeChat's duplicate callbacks that was a 503
for 14-16% of logins. A transaction that takes the write lock *first* just waits its turn (the
busy timeout) and then runs. Sites may still set ``"transaction_mode": "IMMEDIATE"`` (Django
5.1+), which does the same for every transaction; the app does not depend on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from django.db import DatabaseError, connections, router, transaction
from django.db.models import Model

__all__ = ["is_deadlock", "mysql_errno", "take_write_lock", "write_transaction"]

#: SQLSTATE of PostgreSQL's "deadlock_detected".
PG_DEADLOCK = "40P01"
#: MariaDB/MySQL error number: deadlock found when trying to get lock.
MYSQL_DEADLOCK = 1213

#: transaction_mode values under which every transaction starts with the write lock.
_WRITE_FIRST_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})


@contextmanager
def write_transaction(model: type[Model], using: str | None = None) -> Iterator[str]:
    """``transaction.atomic`` on the database ``model`` is written to (or ``using``), holding
    the write lock from its first statement on SQLite; yields the alias."""
    using = using or router.db_for_write(model)
    with transaction.atomic(using=using):
        take_write_lock(model, using)
        yield using


def take_write_lock(model: type[Model], using: str) -> None:
    """On SQLite in a deferred transaction: a write that changes nothing, so that the write
    lock is held before anything is read. Elsewhere: nothing (row locks need no such care)."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    mode = str(connection.settings_dict.get("OPTIONS", {}).get("transaction_mode") or "").upper()
    if mode in _WRITE_FIRST_MODES:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(cast(str, model._meta.pk.column))  # a concrete field's column
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {pk} = {pk} WHERE 0")


def mysql_errno(exc: DatabaseError) -> int | None:
    """The MariaDB/MySQL error number of ``exc`` (None for other databases)."""
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


def is_deadlock(exc: DatabaseError) -> bool:
    """The database ended this transaction to break a deadlock (PostgreSQL 40P01, MySQL
    1213): running it again is the answer. InnoDB takes a shared lock on a duplicate-key
    error, so two waiters on one unique key deadlock when its holder rolls back."""
    if getattr(exc.__cause__, "sqlstate", None) == PG_DEADLOCK:
        return True
    return mysql_errno(exc) == MYSQL_DEADLOCK
