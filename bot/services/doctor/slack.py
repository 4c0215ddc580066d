"""Slack: the bot token (who the bot is, which scopes it holds) and the app-level token (Socket Mode)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot import messages
from bot.clients.slack_probe import SlackRefusedError, SlackUnreachableError
from bot.ids import BOT_SCOPES
from bot.services.doctor.plan import (
    S_PROXY,
    S_SETTINGS,
    S_SLACK_APP,
    S_SLACK_BOT,
    S_SLACK_SCOPES,
    CheckResult,
    DoctorPlan,
    Run,
    fail,
    ok,
    skip,
)


def slack_checks(plan: DoctorPlan, run: Run, state: dict[str, Any]) -> Iterator[CheckResult]:
    if plan.slack is None:
        for name in (S_SLACK_BOT, S_SLACK_SCOPES, S_SLACK_APP):
            yield skip(name, plan.skipped.get("slack", messages.doctor.doctor_skipped_for(S_SETTINGS)))
        return
    yield run.check(S_SLACK_BOT, lambda: _slack_bot(plan, state), needs=(S_PROXY,))
    yield run.check(S_SLACK_SCOPES, lambda: _slack_scopes(state), needs=(S_SLACK_BOT,))
    if plan.slack_app_token is None:  # HTTP mode: Slack calls the bot; no app-level token, no socket to open
        yield skip(S_SLACK_APP, messages.doctor.doctor_app_token_not_used())
    else:
        yield run.check(S_SLACK_APP, lambda: _slack_app(plan), needs=(S_PROXY,))


def _slack_bot(plan: DoctorPlan, state: dict[str, Any]) -> CheckResult:
    assert plan.slack is not None and plan.slack_bot_token is not None
    try:
        identity = plan.slack.bot_identity(plan.slack_bot_token)
    except SlackRefusedError as e:
        return fail(S_SLACK_BOT, messages.doctor.doctor_slack_refused("RESETBOT_SLACK_BOT_TOKEN", e.error,
                                                                      messages.cli.bot_token_kind()))
    except SlackUnreachableError as e:
        return fail(S_SLACK_BOT, messages.doctor.doctor_slack_unreachable(e.reason, plan.slack_api_base))
    state["scopes"] = identity.scopes
    return ok(S_SLACK_BOT, messages.doctor.doctor_slack_bot_ok(identity.user, identity.team))


def _slack_scopes(state: dict[str, Any]) -> CheckResult:
    granted: frozenset[str] | None = state.get("scopes")
    if granted is None:
        return fail(S_SLACK_SCOPES, messages.doctor.doctor_scopes_unknown())
    missing = [s for s in BOT_SCOPES if s not in granted]
    if missing:
        return fail(S_SLACK_SCOPES, messages.doctor.doctor_scopes_missing(missing))
    return ok(S_SLACK_SCOPES, messages.doctor.doctor_scopes_ok(len(BOT_SCOPES)))


def _slack_app(plan: DoctorPlan) -> CheckResult:
    assert plan.slack is not None and plan.slack_app_token is not None
    try:
        plan.slack.open_socket_url(plan.slack_app_token)
    except SlackRefusedError as e:
        return fail(S_SLACK_APP, messages.doctor.doctor_slack_refused(
            "RESETBOT_SLACK_APP_TOKEN", e.error, messages.cli.app_token_kind()))
    except SlackUnreachableError as e:
        return fail(S_SLACK_APP, messages.doctor.doctor_slack_unreachable(e.reason, plan.slack_api_base))
    return ok(S_SLACK_APP, messages.doctor.doctor_app_token_ok())
