"""A faster start: what ``resetbot run`` loads and builds before it connects to Slack leaves out the libraries that
only some work needs (issue 13). Each costs tens of milliseconds to import and is imported on first use instead:
ldap3 with the first AD call, msal and requests with the first token, httpx with the first Graph call, APScheduler
once Slack is connected, alembic only when there is something to migrate, PostgreSQL's dialect only on PostgreSQL,
cryptography's X.509 only with a certificate credential, cheroot only with an HTTP listener (HTTP mode, or the
browser sign-in's callback in Socket Mode). A module-level import of any of them anywhere on that path
(a client, a store module, a package's ``__init__``) brings the cost back; this test names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot import schema
from bot.db import make_engine

pytestmark = pytest.mark.process  # the imports are seen in a process of their own

#: Imported on first use, never by the start (the module doc says when each is); the other commands' modules
#: and the doctor's checks are imported only by those commands (``bot.cli.main``).
LAZY = ("ldap3", "msal", "requests", "httpx", "httpcore", "apscheduler", "alembic", "sqlalchemy.dialects.postgresql",
        "cryptography.x509", "cheroot", "selenium", "bot.cli.doctor", "bot.cli.audit", "bot.cli.migrate",
        "bot.services.doctor")

#: ``resetbot run`` up to its first call to Slack: the command line with the ``run`` command's module, the
#: settings, and the runtime with every client and service (``bot.wiring.build_runtime``), then what is left of
#: the start (``bot.serve``: the app, the handlers, Socket Mode).
_PROBE = """
import json, sys
from bot.cli.main import command_modules
command_modules(["run"])
import bot.serve
from bot.settings import load_settings
from bot.wiring import build_runtime
runtime = build_runtime(load_settings())
runtime.close(drain_s=0)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_start_up_to_slack_imports_none_of_the_libraries_used_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resetbot.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)  # as a second start finds it: nothing to migrate
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESETBOT_")} | {
        "RESETBOT_DATABASE_URL": url,
        "RESETBOT_SLACK_BOT_TOKEN": "xoxb-1-test", "RESETBOT_SLACK_APP_TOKEN": "xapp-1-test",
        "RESETBOT_ENTRA_AUTHORITY": "https://login.example.invalid/tenant", "RESETBOT_ENTRA_CLIENT_ID": "app",
        "RESETBOT_ENTRA_CLIENT_SECRET": "app-secret-value", "RESETBOT_ENTRA_PUBLIC_CLIENT_ID": "public-app",
        "RESETBOT_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
        "RESETBOT_SEALING_KEY": Fernet.generate_key().decode(),
        "RESETBOT_LDAP_URL": "ldaps://dc.example.invalid", "RESETBOT_LDAP_BIND": "svc",
        "RESETBOT_LDAP_PASSWORD": "ldap-secret-value", "RESETBOT_LDAP_BASE_DN": "DC=example,DC=invalid",
    }
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert [name for name in LAZY if name in loaded] == []
    assert "bot.wiring" in loaded and "bot.clients.directory" in loaded  # the probe did build the runtime


def test_the_entry_point_pauses_the_collector_before_it_imports_the_bot() -> None:
    """``bot.__main__`` pauses the collector before the start's imports (``bot.cli.start_heap``): importing it
    must not load them already."""
    probe = "import json, sys; import bot.__main__; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert [name for name in ("sqlalchemy", "sqlmodel", "pydantic", "slack_bolt", "bot.cli.main", "bot.settings")
            if name in loaded] == []
