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


@pytest.mark.django_db(transaction=True)
def test_each_linked_unionid_becomes_a_person_of_its_first_accounts_user():
    """Migration 0004: a site upgraded with accounts already linked by unionid keeps them on
    one user per person; later logins through any app join that user."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("wechat_oauth", "0003_code_use_fingerprint")])
    old = executor.loader.project_state([("wechat_oauth", "0003_code_use_fingerprint")]).apps
    user_model = old.get_model("auth", "User")
    first, second = (user_model.objects.create(username=name) for name in ("first", "second"))
    account_model = old.get_model("wechat_oauth", "WeChatAccount")
    account_model.objects.create(user=first, app_id="wxa", openid="o1", unionid="u_shared")
    account_model.objects.create(user=second, app_id="wxb", openid="o2", unionid="u_shared")
    account_model.objects.create(user=second, app_id="wxa", openid="o3", unionid="")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    from wechat_oauth.models import WeChatUnion

    assert list(WeChatUnion.objects.values_list("unionid", "user__username")) == [("u_shared", "first")]
