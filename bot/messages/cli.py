"""The operator's commands: ``resetbot run``'s start (one line on stderr when it cannot serve), the proxy,
the database and ``resetbot migrate``.
"""

from __future__ import annotations

from collections.abc import Sequence


def cannot_start(reason: str) -> str:
    """``resetbot run``'s one line on stderr when it cannot serve: the reason is one of the sentences below, a
    settings or database sentence, or a doctor sentence (the same calls fail the same way)."""
    return f"resetbot cannot start: {reason.rstrip('.')}."


def bot_token_kind() -> str:
    return "Bot User OAuth Token (xoxb-…)"


def app_token_kind() -> str:
    return "app-level token with connections:write (xapp-…)"


def cannot_listen(host: str, port: int, reason: str) -> str:
    return f"cannot listen on {host}:{port} ({reason})"


def cannot_listen_for_callback(host: str, port: int, reason: str) -> str:
    return (f"cannot listen on {host}:{port} for the sign-in callback ({reason}): free the port or change "
            "RESETBOT_CALLBACK_PORT")


def proxy_refused(proxy: str, target: str, status: int, reason: str) -> str:
    """The proxy answered CONNECT with ``status``; ``proxy`` is shown without its credentials."""
    said = f"{status} {reason}".strip()
    if status == 407:
        return (f"the outbound proxy {proxy} refused the tunnel to {target} ({said}): check the user and password "
                "in RESETBOT_HTTPS_PROXY")
    return (f"the outbound proxy {proxy} refused the tunnel to {target} ({said}): ask the proxy's owners to allow "
            "CONNECT to that host, or check RESETBOT_HTTPS_PROXY")


def proxy_unreachable(proxy: str, reason: str) -> str:
    return (f"the outbound proxy {proxy} could not be reached ({reason}): check RESETBOT_HTTPS_PROXY and that the "
            "proxy runs")


def cannot_open_socket_mode(api_base: str, reason: str) -> str:
    return f"cannot connect to Slack over Socket Mode at {api_base} ({reason})"


def group_not_found(setting: str, ref: str) -> str:
    """A user group the settings name is not in the workspace: nobody would be an agent (or an approver)."""
    what = ref if ref.startswith("S") and ref.isupper() else f"@{ref}"
    return (f"{setting}: this Slack workspace has no user group {what}; give the id (S…) of an existing group, as "
            "usergroups.list shows it")


def slack_start_refused(kind: str) -> str:
    return f"Slack did not accept the bot while it started ({kind}): run resetbot doctor to see what is wrong"


def database_unavailable(where: str, reason: str) -> str:
    return f"The database {where} cannot be used: {reason}."


def database_missing(where: str) -> str:
    return f"There is no database at {where} (check RESETBOT_DATABASE_URL)."


def not_a_resetbot_database(where: str) -> str:
    return f"The database {where} has no resetbot audit trail (check RESETBOT_DATABASE_URL, or run `resetbot migrate`)."


def schema_ahead(unknown: Sequence[str], known_heads: Sequence[str]) -> str:
    return (f"The database is at schema revision {', '.join(unknown)}, which this version of resetbot does not know "
            f"(it expects {', '.join(known_heads)}): a newer version migrated it; run that version.")


def schema_behind(missing: Sequence[str]) -> str:
    return (f"The database schema is behind this version of resetbot (missing revision {', '.join(missing)}) and "
            "RESETBOT_MIGRATE_ON_START is off: run `resetbot migrate` first.")


def migrated(applied: Sequence[str], where: str) -> str:
    return f"Applied schema revision {', '.join(applied)} to {where}; it is up to date."


def already_migrated(at: Sequence[str], where: str) -> str:
    return f"The database {where} is already up to date (schema revision {', '.join(at)}); nothing to apply."
