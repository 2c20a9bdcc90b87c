"""The shipped migrations describe the models exactly (a model change without its migration
would reach users as a schema their database does not have)."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db  # makemigrations reads the applied migrations to check consistency
def test_models_and_migrations_agree():
    out = StringIO()
    try:
        call_command("makemigrations", "wechat_oauth", check=True, dry_run=True, stdout=out)
    except SystemExit:  # --check exits non-zero when a migration is missing
        raise AssertionError(f"wechat_oauth needs a new migration:\n{out.getvalue()}") from None
