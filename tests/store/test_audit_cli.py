"""``resetbot audit export|verify`` as an auditor runs them: a real process, only the database URL configured,
on a database holding a real hash-chained trail (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from bot import store
from bot.domain.audit import AuditAction, from_csv, from_json, verify_chain
from tests.store.helpers import T0, draft, new_request, run_resetbot

pytest_plugins = ("tests.store.dbfixtures",)
pytestmark = pytest.mark.process  # each test runs `resetbot` as its own process


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def trail(engine: Engine, factory: sessionmaker[Session]) -> str:
    """Five events: the request (seq 1, stamped at the real now), then four decisions on it an hour apart from
    T0 + 1 h (seq 2-5). Returns the database URL."""
    request = new_request(factory)
    with factory.begin() as session:
        for hours, action in enumerate((AuditAction.APPROVED, AuditAction.DENIED, AuditAction.CANCELLED,
                                        AuditAction.EXPIRED), start=1):
            store.audit.append_audit(session, draft=draft(action, request_id=request.id),
                                     at=T0 + timedelta(hours=hours))
    return url_of(engine)


def test_verify_says_how_many_events_and_that_the_chain_is_intact(trail: str, tmp_path: Path) -> None:
    done = run_resetbot("audit", "verify", database_url=trail, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "5 events, chain intact.\n", "")


def test_verify_names_the_event_someone_altered(trail: str, engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'U0MALLORY' WHERE seq = 3"))
    done = run_resetbot("audit", "verify", database_url=trail, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ("The audit chain is broken at event 3: event 3 was altered (its hash does not match its "
                           "fields). (2 events before it are intact.)\n")


def test_verify_notices_the_newest_events_deleted(trail: str, engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq >= 4"))
    done = run_resetbot("audit", "verify", database_url=trail, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.startswith("The audit chain is broken at event 4: events 4-5 are missing at the end.")


def test_export_of_a_period_as_csv_to_stdout(trail: str, tmp_path: Path) -> None:
    done = run_resetbot("audit", "export", "--since", "2025-03-04T10:00", "--until", "2025-03-04T12:00+00:00",
                        "--format", "csv", database_url=trail, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    events = from_csv(done.stdout)
    assert [(e.seq, e.action) for e in events] == [(2, AuditAction.APPROVED), (3, AuditAction.DENIED)]
    # A period's slice still verifies, from the event before it.
    assert verify_chain(events, after=(1, events[0].prev_hash)).ok


def test_export_as_json_to_a_file(trail: str, tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    done = run_resetbot("audit", "export", "--since", "2025-03-04", "--format", "json", "--output", str(out),
                        database_url=trail, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == f"Exported 5 audit events to {out}.\n"
    events = from_json(out.read_text())
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert verify_chain(events).ok
    assert json.loads(out.read_text())[1]["actor"] == "U0APPROVER"


def test_an_export_of_a_quiet_period_is_empty_but_well_formed(trail: str, tmp_path: Path) -> None:
    done = run_resetbot("audit", "export", "--since", "2001-01-01", "--until", "2001-01-02", "--format", "json",
                        database_url=trail, cwd=tmp_path)
    assert (done.returncode, json.loads(done.stdout)) == (0, [])


# --- bad input and unusable databases: one sentence, exit 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("--since", "yesterday", "--format", "csv"),
         "argument --since: 'yesterday' is not an ISO 8601 date or date-time; write e.g. 2025-03-04, "
         "2025-03-04T09:30 (UTC) or 2025-03-04T09:30+01:00."),
        (("--since", "2025-03-04", "--format", "xml"), "argument --format: invalid choice: 'xml'"),
        (("--since", "2025-03-05", "--until", "2025-03-04", "--format", "csv"),
         "--until (2025-03-04T00:00:00+00:00) must come after --since (2025-03-05T00:00:00+00:00)."),
        (("--since", "2025-03-04", "--format", "csv", "--output", "no-such-folder/out.csv"),
         "Cannot write no-such-folder/out.csv: No such file or directory."),
    ],
    ids=["since-yesterday", "unknown-format", "until-before-since", "unwritable-output"],
)
def test_export_refuses_bad_input_in_one_sentence(args: tuple[str, ...], sentence: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    if "--output" in args:  # needs a database to get as far as writing
        assert run_resetbot("migrate", database_url=url, cwd=tmp_path).returncode == 0
    done = run_resetbot("audit", "export", *args, database_url=url, cwd=tmp_path)
    assert done.returncode == 2
    assert sentence in done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr


def _garbage(tmp_path: Path) -> str:
    (tmp_path / "garbage.db").write_text("not a database at all\n")
    return f"sqlite:///{tmp_path / 'garbage.db'}"


@pytest.mark.parametrize(
    ("make_url", "sentence"),
    [
        (lambda p: f"sqlite:///{p / 'missing.db'}", "There is no database at sqlite:///{p}/missing.db (check "
                                                    "RESETBOT_DATABASE_URL)."),
        (_garbage, "The database sqlite:///{p}/garbage.db cannot be used: file is not a database."),
        (lambda p: "postgresql://auditor:s3cret-pw@127.0.0.1:1/resetbot",
         "The database postgresql+psycopg://auditor:***@127.0.0.1:1/resetbot cannot be used: connection failed"),
    ],
    ids=["missing-file", "not-a-database", "unreachable-server"],
)
def test_verify_and_export_on_an_unusable_database_fail_in_one_sentence(
    make_url: object, sentence: str, tmp_path: Path
) -> None:
    assert callable(make_url)
    url = make_url(tmp_path)
    export = ("export", "--since", "2025-03-04", "--format", "csv")
    for args in (("verify",), export) if url.endswith("missing.db") else (("verify",),):
        done = run_resetbot("audit", *args, database_url=url, cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.startswith(f"resetbot audit {args[0]}: " + sentence.format(p=tmp_path))
        assert len(done.stderr.strip().splitlines()) == 1
        assert "s3cret-pw" not in done.stderr
    assert not (tmp_path / "missing.db").exists()  # reading never creates a database


def test_verify_on_a_database_without_the_audit_tables_says_so(empty_url: str, tmp_path: Path) -> None:
    if empty_url.startswith("sqlite"):
        Path(empty_url.removeprefix("sqlite:///")).touch()  # an existing, empty file
    done = run_resetbot("audit", "verify", database_url=empty_url, cwd=tmp_path)
    assert done.returncode == 2
    assert "has no resetbot audit trail (check RESETBOT_DATABASE_URL, or run `resetbot migrate`)." in done.stderr
