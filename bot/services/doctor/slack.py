"""Slack: the bot token (who the bot is, which scopes it holds), the user groups that hold authority (pinned by
id, and whether Slack shows a member changing them) and the app-level token (Socket Mode)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot import messages
from bot.clients.slack_probe import SlackRefusedError, SlackUnreachableError
from bot.domain.groups import changed_by_a_member, find_group, is_group_id
from bot.ids import BOT_SCOPES
from bot.services.doctor.plan import (
    S_PROXY,
    S_SETTINGS,
    S_SLACK_APP,
    S_SLACK_BOT,
    S_SLACK_GROUPS,
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
        for name in (S_SLACK_BOT, S_SLACK_SCOPES, S_SLACK_GROUPS, S_SLACK_APP):
            yield skip(name, plan.skipped.get("slack", messages.doctor.doctor_skipped_for(S_SETTINGS)))
        return
    yield run.check(S_SLACK_BOT, lambda: _slack_bot(plan, state), needs=(S_PROXY,))
    yield run.check(S_SLACK_SCOPES, lambda: _slack_scopes(state), needs=(S_SLACK_BOT,))
    yield run.check(S_SLACK_GROUPS, lambda: _slack_groups(plan), needs=(S_SLACK_BOT,))
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


def _slack_groups(plan: DoctorPlan) -> CheckResult:
    """Each group the settings name exists (said with its id, and whether it is pinned by id); FAIL when one is
    missing, or when Slack shows that someone who is not a workspace admin created or last changed it: the only
    sign an app can see that members may change user groups (no API tells an app that workspace setting)."""
    assert plan.slack is not None and plan.slack_bot_token is not None
    token, probe = plan.slack_bot_token, plan.slack
    try:
        groups = probe.user_groups(token)
        said: list[str] = []
        for setting, ref in plan.user_groups:
            group = find_group(ref, groups)
            if group is None:
                return fail(S_SLACK_GROUPS, messages.cli.group_not_found(setting, ref))
            member = changed_by_a_member(group, lambda user: probe.person(token, user)[1])
            if member is not None:
                return fail(S_SLACK_GROUPS, messages.doctor.doctor_group_changed_by_member(
                    setting, group.handle, group.id, probe.person(token, member)[0]))
            said.append(messages.doctor.doctor_group_pinned(setting, group.handle, group.id, by_id=is_group_id(ref)))
    except SlackRefusedError as e:
        return fail(S_SLACK_GROUPS, messages.doctor.doctor_slack_refused("RESETBOT_SLACK_BOT_TOKEN", e.error,
                                                                         messages.cli.bot_token_kind()))
    except SlackUnreachableError as e:
        return fail(S_SLACK_GROUPS, messages.doctor.doctor_slack_unreachable(e.reason, plan.slack_api_base))
    return ok(S_SLACK_GROUPS, messages.doctor.doctor_groups_ok(said))


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
