"""The benchmarks' bulk loaders (bench/purge.py, bench/admin_changelist.py) write
OAuthCodeUse rows in raw SQL, one INSERT ... SELECT generate_series for a million rows: a
column the model gains must be given there too, or the bench dies on its NOT NULL."""

from __future__ import annotations

import pytest
from django.db.models.fields import NOT_PROVIDED

from bench import admin_changelist, purge
from wechat_oauth.models import OAuthCodeUse


def _inserted_columns(sql: str) -> set[str]:
    named = sql[sql.index("(") + 1 : sql.index(")")]
    return {column.strip() for column in named.split(",")}


@pytest.mark.parametrize("sql", [purge.INSERT, admin_changelist.LOAD_SQL], ids=["purge", "admin_changelist"])
def test_a_loader_gives_every_column_the_database_requires(sql):
    required = {
        field.column
        for field in OAuthCodeUse._meta.concrete_fields
        if not field.null and not field.primary_key and field.db_default is NOT_PROVIDED
    }
    assert required - _inserted_columns(sql) == set()
