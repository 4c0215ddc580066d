"""Schema migrations: an empty database upgraded to head has exactly the models' schema, on both backends;
replicas upgrading at once do not trip over each other; ``resetbot migrate`` works as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Engine, MetaData, inspect, text
from sqlmodel import SQLModel

from bot import schema, store
from bot.db import make_engine, make_session_factory
from bot.errors import ConfigError, DatabaseUnavailableError, SchemaAheadError
from bot.wiring import prepare_schema
from tests.store.helpers import draft, new_request, run_concurrently, run_resetbot

pytest_plugins = ("tests.store.dbfixtures",)
pytestmark = pytest.mark.process  # each test runs `resetbot` as its own process


def differences(engine: Engine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    """What alembic's autogenerate would write to bring the database to ``metadata`` (empty: nothing)."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_an_empty_database_upgraded_to_head_has_exactly_the_models_schema(empty_url: str) -> None:
    """The guard for every future model change: a table or column added to bot/models.py without a revision
    makes this fail (the models and the migrated schema differ)."""
    engine = make_engine(empty_url)
    try:
        assert schema.upgrade(engine) == schema.revisions()
        assert differences(engine) == []
        assert schema.pending(engine) == []
        assert schema.current(engine) == schema.heads()
        assert set(SQLModel.metadata.tables) | {"alembic_version"} == tables(engine)
        with make_session_factory(engine).begin() as session:
            assert store.audit.append_audit(session, draft=draft()).seq == 1  # the chain's head row is there
    finally:
        engine.dispose()


def test_the_comparison_catches_a_model_change_without_a_revision(engine: Engine) -> None:
    ahead = MetaData(naming_convention=SQLModel.metadata.naming_convention)
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(ahead)
    sa.Table("forgotten_table", ahead, sa.Column("id", sa.Integer, primary_key=True))
    ahead.tables["reset_request"].append_column(sa.Column("note", sa.String(64), nullable=True))
    found = differences(engine, ahead)
    assert ("add_table", "forgotten_table") in [(d[0], d[1].name) for d in found if d[0] == "add_table"]
    assert any(d[0] == "add_column" and d[2] == "reset_request" and d[3].name == "note" for d in found)


def test_pending_on_an_empty_database_lists_every_revision_and_changes_nothing(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        assert schema.pending(engine) == schema.revisions()
        assert schema.revisions()[0] == "0001" and schema.revisions()[-1:] == schema.heads()
        assert schema.current(engine) == []
        assert tables(engine) == set()  # not even alembic's version table
    finally:
        engine.dispose()


def test_upgrading_again_applies_nothing_and_keeps_the_data(engine: Engine) -> None:
    request = new_request(make_session_factory(engine))
    assert schema.upgrade(engine) == []
    with make_session_factory(engine).begin() as session:
        assert store.requests.get_request(session, request_id=request.id) is not None
        assert store.audit.get_audit_head(session)[0] == 1


def test_the_version_table_lands_in_the_databases_own_schema(pg_engine: Engine) -> None:
    """Tests (and teams sharing one server) put each database in its own PostgreSQL schema via search_path."""
    with pg_engine.connect() as conn:
        where = conn.execute(text(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'")).scalars()
        own = conn.execute(text("SELECT current_schema()")).scalar_one()
        assert own in list(where)
        assert own.startswith("t_")


def test_a_database_made_before_migrations_is_stamped_not_recreated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        # What create_all made before this release is what revision 0001 makes, without alembic's version table.
        # (Rows written in plain SQL: the models may have moved on since 0001.)
        with engine.begin() as conn:
            command.upgrade(schema.alembic_config(conn), schema.PRE_MIGRATIONS_REVISION)
            conn.execute(text("DROP TABLE alembic_version"))
            conn.execute(text("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 7, :h)"), {"h": "a" * 64})
        assert schema.pending(engine) == schema.revisions()
        assert schema.upgrade(engine) == schema.revisions()[1:]  # 0001 stamped, the later ones applied
        assert schema.current(engine) == schema.heads() and schema.pending(engine) == []
        assert differences(engine) == []
        with make_session_factory(engine).begin() as session:
            assert store.audit.get_audit_head(session) == (7, "a" * 64)  # kept, not recreated
    finally:
        engine.dispose()


def test_replicas_upgrading_at_once_apply_each_revision_once(empty_url: str) -> None:
    engines = [make_engine(empty_url) for _ in range(4)]
    try:
        applied = run_concurrently(len(engines), lambda i: schema.upgrade(engines[i]))
        assert sorted(applied) == [[], [], [], schema.revisions()]
        assert differences(engines[0]) == []
        with make_session_factory(engines[0]).begin() as session:
            assert store.audit.get_audit_head(session)[0] == 0
    finally:
        for e in engines:
            e.dispose()


def test_two_migrate_processes_started_together_both_succeed(empty_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESETBOT_")}
    env["RESETBOT_DATABASE_URL"] = empty_url
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "migrate"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted(out.strip().split(" ")[0] for out, _ in outs)
    assert said == ["Applied", "The"], outs  # one applied 0001; the other waited, then found it up to date
    head = ", ".join(schema.heads())
    assert any(f"is already up to date (schema revision {head}); nothing to apply." in out for out, _ in outs)


def test_a_database_from_a_newer_version_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    expected = ("The database is at schema revision 0999, which this version of resetbot does not know (it expects "
                f"{', '.join(schema.heads())}): a newer version migrated it; run that version.")
    with pytest.raises(SchemaAheadError) as err:
        schema.pending(engine)
    assert str(err.value) == expected
    with pytest.raises(SchemaAheadError):
        schema.upgrade(engine)


def test_an_unreachable_database_is_one_sentence_without_the_password() -> None:
    engine = make_engine("postgresql://resetbot:s3cret-pw@127.0.0.1:1/resetbot")
    try:
        for check in (schema.pending, schema.upgrade):
            with pytest.raises(DatabaseUnavailableError) as err:
                check(engine)
            text_ = str(err.value)
            assert text_.startswith("The database postgresql+psycopg://resetbot:***@127.0.0.1:1/resetbot cannot be "
                                    "used: connection failed")
            assert "s3cret-pw" not in text_
    finally:
        engine.dispose()


def test_run_with_migrate_on_start_off_refuses_a_schema_that_is_behind(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        with pytest.raises(ConfigError) as err:
            prepare_schema(engine, migrate=False)
        assert str(err.value) == (f"The database schema is behind this version of resetbot (missing revision "
                                  f"{', '.join(schema.revisions())}) and RESETBOT_MIGRATE_ON_START is off: run "
                                  "`resetbot migrate` first.")
        assert tables(engine) == set()
        schema.upgrade(engine)
        prepare_schema(engine, migrate=False)  # up to date: serves
    finally:
        engine.dispose()


# --- resetbot migrate, as an operator runs it ----------------------------------------------------------------


def test_migrate_applies_then_finds_nothing_to_do(empty_url: str, tmp_path: Path) -> None:
    first = run_resetbot("migrate", database_url=empty_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    where = make_engine(empty_url).url.render_as_string(hide_password=True)
    assert first.stdout == f"Applied schema revision {', '.join(schema.revisions())} to {where}; it is up to date.\n"
    again = run_resetbot("migrate", database_url=empty_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout == (f"The database {where} is already up to date (schema revision "
                            f"{', '.join(schema.heads())}); nothing to apply.\n")
    engine = make_engine(empty_url)
    try:
        assert differences(engine) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("postgresql://resetbot:s3cret-pw@127.0.0.1:1/resetbot",
         "resetbot migrate: The database postgresql+psycopg://resetbot:***@127.0.0.1:1/resetbot cannot be used: "
         "connection failed"),
        ("sqlite:////nonexistent-folder/resetbot.db",
         "resetbot migrate: The database sqlite:////nonexistent-folder/resetbot.db cannot be used: unable to open "
         "database file."),
        ("mysql://u@h/db", "resetbot migrate: Database 'mysql' is not supported; use a SQLite file or PostgreSQL."),
    ],
)
def test_migrate_without_a_usable_database_says_so_and_fails(url: str, sentence: str, tmp_path: Path) -> None:
    done = run_resetbot("migrate", database_url=url, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(sentence)
    assert len(done.stderr.strip().splitlines()) == 1
    assert "s3cret-pw" not in done.stderr


def test_run_with_migrate_on_start_off_refuses_to_start_on_an_old_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    directories = {
        "RESETBOT_SLACK_BOT_TOKEN": "xoxb-1-test", "RESETBOT_SLACK_APP_TOKEN": "xapp-1-test",
        "RESETBOT_ENTRA_AUTHORITY": "https://login.example.invalid/tenant", "RESETBOT_ENTRA_CLIENT_ID": "app",
        "RESETBOT_ENTRA_CLIENT_SECRET": "app-secret-value", "RESETBOT_ENTRA_PUBLIC_CLIENT_ID": "public-app",
        "RESETBOT_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
        "RESETBOT_LDAP_URL": "ldaps://dc.example.invalid", "RESETBOT_LDAP_BIND": "svc",
        "RESETBOT_LDAP_PASSWORD": "ldap-secret-value", "RESETBOT_LDAP_BASE_DN": "DC=example,DC=invalid",
        "RESETBOT_MIGRATE_ON_START": "false",
    }
    done = run_resetbot("run", database_url=url, cwd=tmp_path, **directories)
    assert done.returncode == 2
    assert done.stderr == ("resetbot cannot start: The database schema is behind this version of resetbot (missing "
                           f"revision {', '.join(schema.revisions())}) and RESETBOT_MIGRATE_ON_START is off: run "
                           "`resetbot migrate` first.\n")


def test_the_newest_revision_file_is_alembics_head() -> None:
    """A start finds the database up to date without alembic by comparing it with the newest revision file's
    number (bot.schema's module doc): that number must be the head alembic would upgrade to."""
    assert [schema.shipped_head()] == schema.heads()


def test_a_database_at_an_older_revision_is_not_taken_for_up_to_date(engine: Engine) -> None:
    """The fast path says "up to date" only at exactly the newest revision: one behind is still pending."""
    older = schema.revisions()[-2]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": older})
    assert schema.pending(engine) == schema.revisions()[-1:]


def test_sign_ins_a_race_left_waiting_are_used_up_but_the_newest_before_the_index(engine: Engine) -> None:
    """Revision 0017's indexes allow one waiting browser sign-in per person and one for the service identity: what
    an older release left waiting (two links of one agent both good, or service-identity links of two approvers)
    is used up first, all but the one sent last."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX uq_browser_sign_in_waiting"))
        conn.execute(sa.text("DROP INDEX uq_browser_sign_in_service_waiting"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0016'"))
        for state, user, service, minute in (("a", "U1", False, 1), ("b", "U1", False, 2), ("c", "U2", False, 1),
                                             ("d", "U1", True, 3), ("e", "U2", True, 4)):
            conn.execute(sa.text(
                "INSERT INTO browser_sign_in (state_hash, slack_user, service, correlation_id, encrypted_flow,"
                " created_at, expires_at) VALUES (:s, :u, :f, 'c', 'x', :at, :until)"),
                {"s": state * 64, "u": user, "f": service, "at": f"2025-03-04 09:0{minute}:00+00:00",
                 "until": "2025-03-04 09:30:00+00:00"})
    assert "0017" in schema.upgrade(engine)
    with engine.connect() as conn:
        waiting = conn.execute(sa.text(
            "SELECT state_hash FROM browser_sign_in WHERE used_at IS NULL ORDER BY state_hash")).scalars().all()
    assert waiting == ["b" * 64, "c" * 64, "e" * 64]
