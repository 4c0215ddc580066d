"""Containing a disowned reset: what the thread, the security channel, the target and the security group's member
who presses Scramble password read. Nothing here receives a password or a TAP: only requests, names and outcomes.
"""

from __future__ import annotations

from bot.domain.containment import ScrambleRefusal, StepResult
from bot.ids import Action, Block
from bot.messages.format import Blocks, button, esc
from bot.messages.reset import disowned_what_changed
from bot.models import ResetRequest

_BY_HAND_SESSIONS = ("someone with a Helpdesk, User or Authentication Administrator role must revoke them in the "
                     "Entra admin center (the user → Revoke sessions)")
_BY_HAND_TAP = ("someone with an Authentication Administrator role must delete it in the Entra admin center (the "
                "user → Authentication methods)")


def _sessions_line(name: str, step: StepResult) -> str:
    if step.done:
        return (f":lock: {name}'s sign-in sessions are revoked: every app asks them to sign in again (within "
                "minutes, as Entra propagates it).")
    return (f":warning: {name}'s sign-in sessions could NOT be revoked ({esc(step.reason or 'unknown error')}); "
            f"{_BY_HAND_SESSIONS}, or the target presses \"This wasn't me\" again to try again.")


def _tap_line(step: StepResult) -> str:
    if step.done:
        return (":lock: The Temporary Access Pass the bot issued no longer exists (Entra had already removed it)."
                if step.already else ":lock: The Temporary Access Pass the bot issued is deleted.")
    return (f":warning: The Temporary Access Pass the bot issued could NOT be deleted "
            f"({esc(step.reason or 'unknown error')}); {_BY_HAND_TAP}.")


def withheld_tap_deletion(req: ResetRequest, step: StepResult) -> str:
    """The thread's line after a withheld TAP's verdict: whether the pass nobody may be shown still works in Entra."""
    name = esc(req.target_display)
    if step.done:
        gone = "Entra had already removed it" if step.already else "it is deleted in Entra"
        return (f":lock: The withheld Temporary Access Pass for {name} no longer exists ({gone}): nobody can sign in "
                "with it.")
    return (f":warning: The withheld Temporary Access Pass for {name} could NOT be deleted in Entra "
            f"({esc(step.reason or 'unknown error')}): it stays usable until it expires. {_BY_HAND_TAP[0].upper()}"
            f"{_BY_HAND_TAP[1:]}. Security has been told.")


def security_withheld_tap_not_deleted(req: ResetRequest, step: StepResult, link: str | None) -> str:
    """The security channel's alert when a TAP nobody may be shown (its request called off while it was issued)
    could not be deleted: a live credential nobody should hold, with the request and what to do."""
    where = f" (<{link}|the request's thread>)" if link else ""
    return (f":rotating_light: Request {req.id}{where}: a Temporary Access Pass for {esc(req.target_display)} "
            f"(`{esc(req.target_upn)}`), requested by <@{req.requester}>, was called off while Entra issued it, so "
            f"nobody was shown it; but it could NOT be deleted in Entra ({esc(step.reason or 'unknown error')}) and "
            f"stays usable until it expires: {_BY_HAND_TAP}.")


def contained(req: ResetRequest, revoked: StepResult, tap: StepResult | None) -> str:
    """The thread's (and the alert's) account of what containment did, one line per step."""
    lines = [_sessions_line(esc(req.target_display), revoked)]
    if tap is not None:
        lines.append(_tap_line(tap))
    return "\n".join(lines)


def security_alert_text(req: ResetRequest, revoked: StepResult, tap: StepResult | None, *, scramble: bool) -> str:
    head = (f":rotating_light: Containing {req.id}: {esc(req.target_display)} (`{esc(req.target_upn)}`) says the "
            f"{'Temporary Access Pass' if req.tap else 'password reset'}, requested by <@{req.requester}>, was not "
            f"asked for by them. {disowned_what_changed(req)}")
    tail = ("\nA member of the security group may press Scramble password: it resets the password again to one "
            "nobody is shown, so whoever learned the temporary one holds nothing; the user then recovers through "
            "self-service password reset or a new, verified request.") if scramble else ""
    return f"{head}\n{contained(req, revoked, tap)}{tail}"


def security_alert_blocks(req: ResetRequest, revoked: StepResult, tap: StepResult | None, *,
                          scramble: bool) -> Blocks:
    blocks: Blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": security_alert_text(
        req, revoked, tap, scramble=scramble)}}]
    if scramble:
        blocks.append({"type": "actions", "block_id": Block.SCRAMBLE_ACTIONS, "elements": [
            button("Scramble password", Action.SCRAMBLE, req.id, style="danger")]})
    return blocks


def target_answer(revoked: StepResult) -> str:
    if revoked.done:
        return ("Thanks for telling us. You have been signed out everywhere (sign in again), and security has been "
                "alerted and will contact you.")
    return "Thanks for telling us: security has been alerted and will contact you."


_SCRAMBLE_REFUSALS = {
    ScrambleRefusal.NO_SECURITY_GROUP: ("Nobody may scramble passwords here: no security group is set "
                                        "(RESETBOT_SECURITY_GROUP). Reset the password by hand in Entra ID."),
    ScrambleRefusal.NOT_IN_SECURITY_GROUP: "Only members of {group} may scramble a password.",
    ScrambleRefusal.PART_OF_THE_REQUEST: ("You asked for, approved or are the target of this reset, so someone else "
                                          "in {group} must scramble it."),
    ScrambleRefusal.NO_PASSWORD_SET: "This request set no password, so there is nothing to scramble.",
    ScrambleRefusal.ALREADY_SCRAMBLED: "This password was already scrambled; nothing more to do.",
    ScrambleRefusal.SCRAMBLE_IN_PROGRESS: ("Someone in the security group is scrambling this password right now; the "
                                           "thread will say how it ended."),
    ScrambleRefusal.NOT_DISOWNED: "Nobody disowned this reset, so there is nothing to contain.",
    ScrambleRefusal.SUPERSEDED: ("A newer reset of this user was made since ({newer}): scrambling this one would undo "
                                 "it. If that one is disowned too, scramble it from its own alert."),
    ScrambleRefusal.TOO_LATE: ("This alert is more than {hours} hours old (RESETBOT_SCRAMBLE_WINDOW_HOURS), so its "
                               "Scramble no longer works: the user has likely chosen their own password since, and "
                               "scrambling would lock them out of it. If the account still needs containing, reset "
                               "it by hand in Entra ID or make a new, verified request."),
}


def scramble_refused(refusal: ScrambleRefusal, request_id: str, *, group: str | None, newer: str | None = None,
                     window_hours: int = 24) -> str:
    text = _SCRAMBLE_REFUSALS[refusal].format(group=f"@{esc(group)}" if group else "the security group",
                                              newer=newer or "another request", hours=window_hours)
    return f"{text} ({request_id})"


def scrambled(req: ResetRequest, actor: str) -> str:
    return (f":lock: <@{actor}> scrambled {esc(req.target_display)}'s password ({req.id}): it was reset again, through "
            "Entra ID and writeback, to one nobody has seen. The temporary password is worthless now; "
            f"{esc(req.target_display)} recovers through self-service password reset or a new, verified request.")


def scramble_failed(req: ResetRequest, actor: str, reason: str, correlation_id: str) -> str:
    return (f":warning: <@{actor}> pressed Scramble password for {esc(req.target_display)} ({req.id}), but the "
            f"password was NOT changed: {esc(reason).rstrip('.')}. Press it again, or reset the password by hand in "
            f"Entra ID (reference {correlation_id}).")


def scramble_pending(req: ResetRequest, actor: str, correlation_id: str) -> str:
    return (f":hourglass: <@{actor}> pressed Scramble password for {esc(req.target_display)} ({req.id}); Entra is "
            "still working on it and did not say how it ended. Check the user's password in Entra ID before relying "
            f"on it (reference {correlation_id}).")
