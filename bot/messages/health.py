"""Health pings: each check's label, the sentence a failed check is stored and posted with, the transitions
posted to the ops channel, ``/resetbot health``, App Home's panel and the daily summary.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.health_state import Change, Check, CheckView, HealthReport, HealthState, TransitionView
from bot.ids import Command, ResetbotSubcommand
from bot.messages.format import esc, slack_date
from bot.messages.links import LOGIN_SERVICE

CHECK_LABELS: dict[Check, str] = {
    Check.GRAPH_TOKEN: "Graph token (the bot's app signs in to Entra ID)",
    Check.GRAPH_READ: "Graph read (Microsoft Graph answers the bot)",
    Check.LDAP: "LDAP bind and read (Active Directory answers the bot)",
    Check.DIRECTORY_SYNC: "Directory sync (Entra Connect synced recently)",
    Check.CANARY: "Canary (a reset of the canary account reached Active Directory)",
}
_STATE_WORDS = {
    HealthState.HEALTHY: ":large_green_circle: healthy",
    HealthState.DEGRADED: ":red_circle: degraded",
    HealthState.UNKNOWN: ":white_circle: not checked yet",
}


def check_label(check: Check) -> str:
    return CHECK_LABELS[check]


def _short_label(check: Check) -> str:
    return CHECK_LABELS[check].split(" (", 1)[0]


def health_token_ok() -> str:
    return "The token endpoint issued the bot's app a Graph token."


def health_graph_ok() -> str:
    return "Microsoft Graph read the tenant."


def health_ldap_ok() -> str:
    return "The bot bound to Active Directory and read it."


def health_sync_ok(last_sync: datetime) -> str:
    return f"Entra Connect last synced {slack_date(last_sync)}."


def health_sync_off() -> str:
    return "Directory sync is not enabled for this tenant (onPremisesSyncEnabled is false)."


def health_sync_never() -> str:
    return "Entra ID reports no directory sync at all (no onPremisesLastSyncDateTime)."


def health_sync_stale(last_sync: datetime, max_age_minutes: int) -> str:
    return (f"Entra Connect last synced {slack_date(last_sync)}, more than {max_age_minutes} minutes ago: "
            "check the Entra Connect server and its service.")


def canary_landed(upn: str, pwd_last_set: datetime | None) -> str:
    when = f" (pwdLastSet {slack_date(pwd_last_set)})" if pwd_last_set else ""
    return f"The canary {upn} was reset through Graph and Active Directory shows the new password{when}."


def canary_not_in_ad(upn: str) -> str:
    return f"The canary account {upn} was not found in Active Directory: check RESETBOT_CANARY_UPN."


def canary_not_in_entra(upn: str) -> str:
    return f"The canary account {upn} was not found in Entra ID: check RESETBOT_CANARY_UPN and that it is synced."


def canary_not_linked(service_upn: str) -> str:
    return (f"The canary is reset as the service identity `{service_upn}`, which isn't linked: an approver has to "
            f"run {LOGIN_SERVICE}.")


def canary_refused(upn: str, status_detail: str | None) -> str:
    return (f"The canary reset of {upn} did not land on-premises: "
            f"{esc(status_detail) if status_detail else 'Graph gave no reason'}")


def canary_timed_out(upn: str, seconds: float) -> str:
    return f"The canary reset of {upn} had no verdict from writeback after {seconds:.0f} seconds."


def canary_not_moved(upn: str) -> str:
    return (f"Graph reported the canary reset of {upn} done, but its pwdLastSet in Active Directory did not move: "
            "the password did not land on-premises.")


def canary_ambiguous(upn: str) -> str:
    return (f"The canary {upn} must change its password at next logon, so pwdLastSet cannot show whether the reset "
            "landed: set 'Password never expires' on the canary account.")


def health_check_crashed(kind: str) -> str:
    return f"The check itself failed unexpectedly ({kind}); the bot's log has the details."


def _ms_said(code: str | None, status: int | None) -> str:
    """Microsoft's error code and the HTTP status, what support asks for, as " (AADSTS90033, HTTP 503)"."""
    said = ", ".join(x for x in (esc(code) if code else None, f"HTTP {status}" if status else None) if x)
    return f" ({said})" if said else ""


def health_ad_unreachable() -> str:
    return "Active Directory could not be reached or stopped answering the bot."


def health_ad_bind_refused() -> str:
    return ("Active Directory refused the bot's bind: check RESETBOT_LDAP_BIND and RESETBOT_LDAP_PASSWORD "
            "(`resetbot doctor` says more).")


def health_ad_base_unreadable() -> str:
    return ("The bot bound to Active Directory but could not read its base DN: check RESETBOT_LDAP_BASE_DN and that "
            "the bind account may read the domain.")


def health_ad_failed() -> str:
    return "Active Directory refused or failed one of the bot's reads; the bot's log has its answer."


def health_entra_refused(code: str | None, status: int | None) -> str:
    return (f"Entra ID refused the bot's app credentials{_ms_said(code, status)}: `resetbot doctor` names the "
            "setting to fix.")


def health_entra_unavailable(code: str | None, status: int | None) -> str:
    return f"Entra ID's token endpoint could not be reached or is unavailable{_ms_said(code, status)}."


def health_signin_expired() -> str:
    return f"The service identity's Microsoft sign-in can no longer be used: an approver has to run {LOGIN_SERVICE}."


def health_graph_denied(code: str | None, status: int | None) -> str:
    return f"Microsoft Graph refused the bot's call{_ms_said(code, status)}: check the app's Graph permissions."


def health_graph_throttled() -> str:
    return "Microsoft Graph kept throttling the bot (HTTP 429) after its retries."


def health_graph_unavailable() -> str:
    return "Microsoft Graph could not be reached or kept failing (HTTP 5xx) after the bot's retries."


def health_microsoft_failed(kind: str, code: str | None, status: int | None) -> str:
    return f"Microsoft answered the check with an error, {kind}{_ms_said(code, status)}; the bot's log has it."


def health_check_failed(kind: str) -> str:
    return f"The check failed ({kind}); the bot's log has the details."


def health_transition(change: Change) -> str:
    """The one message ops gets when health changes."""
    lines = [f"*resetbot health: {_STATE_WORDS[change.to_state]}*"
             + (" (was " + _STATE_WORDS[change.from_state].split(" ", 1)[1] + ")"
                if change.from_state != HealthState.UNKNOWN else "")]
    lines += [f"• :x: {_short_label(c)} failing: {detail}" for c, detail in change.newly_failing]
    lines += [f"• :white_check_mark: {_short_label(c)} recovered" for c in change.recovered]
    still = [c for c in change.failing if c not in {n for n, _ in change.newly_failing}]
    if still:
        lines.append("Still failing: " + ", ".join(_short_label(c) for c in still) + ".")
    return "\n".join(lines)


def _transition_line(t: TransitionView) -> str:
    what = ", ".join(f"{_short_label(c)} {'recovered' if ok else 'failing'}" for c, ok in t.changed.items())
    return f"• {slack_date(t.at)}: {t.from_state.value} → {t.to_state.value}" + (f" ({what})" if what else "")


def _check_line(view: CheckView) -> str:
    mark = ":white_check_mark:" if view.ok else ":x:"
    return f"{mark} *{_short_label(view.check)}* ({slack_date(view.at)}): {view.detail}"


def health_report(report: HealthReport) -> str:
    """``/resetbot health``: the state, each check's last result, the last transitions."""
    if report.state == HealthState.UNKNOWN:
        return "*resetbot health: " + _STATE_WORDS[HealthState.UNKNOWN] + "*\nNo round of health pings has run yet."
    lines = [f"*resetbot health: {_STATE_WORDS[report.state]}*"]
    lines += [_check_line(v) for v in report.checks]
    lines += _last_changes(report)
    return "\n".join(lines)


def _last_changes(report: HealthReport) -> list[str]:
    """The "Last changes" lines, newest first; ``/resetbot health`` and App Home show the same ones."""
    if not report.transitions:
        return []
    return ["*Last changes*", *(_transition_line(t) for t in report.transitions)]


def health_home(report: HealthReport) -> str:
    failing = [_short_label(v.check) for v in report.checks if not v.ok]
    text = f"*Writeback health:* {_STATE_WORDS[report.state]}"
    if failing:
        text += " (failing: " + ", ".join(failing) + ")"
    return "\n".join([text, *_last_changes(report),
                      f"`{Command.RESETBOT} {ResetbotSubcommand.HEALTH}` shows each check."])


def health_summary(report: HealthReport, counts: dict[Check, tuple[int, int]], changes: int) -> str:
    """The daily summary for ops: the state now, and each check's last 24 hours."""
    lines = [f"*resetbot daily health summary: {_STATE_WORDS[report.state]}*"]
    for view in report.checks:
        total, failed = counts.get(view.check, (0, 0))
        lines.append(f"• {_short_label(view.check)}: {'ok' if view.ok else 'failing'} now; "
                     f"{failed} of {total} checks failed in the last 24 hours")
    lines.append(f"{changes} change{'s' if changes != 1 else ''} of state in the last 24 hours.")
    return "\n".join(lines)
