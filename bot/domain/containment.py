"""Who may scramble a disowned reset's password, as a pure rule.

Scramble password resets the target's password again to one nobody is shown, so that whoever learned the temporary
one (the caller who phoned in, or anyone the requester read it to) holds nothing. Only members of the security group
may press it, and never the people of the request itself, even if they are in that group: the requester saw the
password and the approvers let it be made; the target recovers through self-service or a new, verified request.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.lifecycle import RequestState


class ScrambleRefusal(StrEnum):
    """Why a Scramble press was refused; bot.messages.containment has the sentence for each."""

    NO_SECURITY_GROUP = "no_security_group"
    NOT_IN_SECURITY_GROUP = "not_in_security_group"
    PART_OF_THE_REQUEST = "part_of_the_request"
    NO_PASSWORD_SET = "no_password_set"  # noqa: S105 - a reason, not a password
    NOT_DISOWNED = "not_disowned"
    ALREADY_SCRAMBLED = "already_scrambled"
    SCRAMBLE_IN_PROGRESS = "scramble_in_progress"
    SUPERSEDED = "superseded"
    #: The alert is older than the Scramble window (``RESETBOT_SCRAMBLE_WINDOW_HOURS``).
    TOO_LATE = "too_late"

#: How long after its alert a Scramble button works, unless configured: a working day for security to act on the
#: alert, and the time by which the user has most likely recovered by choosing their own password (the last
#: "did they replace it?" follow-up looks at 24 hours too). A change the user makes themselves is invisible to
#: the bot; an older alert's Scramble would reset that password to one nobody knows and lock them out.
DEFAULT_SCRAMBLE_WINDOW = timedelta(hours=24)


def scramble_refusal(*, actor: str, security_group_set: bool, in_security_group: bool, requester: str,
                     target: str | None, approvers: Collection[str], state: RequestState, tap: bool,
                     disowned: bool, already_scrambled: bool, superseded: bool = False,
                     in_progress: bool = False, too_late: bool = False) -> ScrambleRefusal | None:
    """None when ``actor`` may scramble the password this request set; otherwise why not (checked in this order:
    who asks before what is asked about, so an outsider learns nothing about the request). ``superseded``: a newer
    reset of the same user was made (or is being made) since; the old alert's button would otherwise reset the
    password the user recovered with to one nobody knows, a lockout at any security member's whim. ``in_progress``:
    another press's scramble has started and not yet ended (two members pressing at once scramble once).
    ``too_late``: the alert is older than the Scramble window (``scramble_too_late``)."""
    if not security_group_set:
        return ScrambleRefusal.NO_SECURITY_GROUP
    if not in_security_group:
        return ScrambleRefusal.NOT_IN_SECURITY_GROUP
    if actor in (requester, target) or actor in approvers:
        return ScrambleRefusal.PART_OF_THE_REQUEST
    if tap or state != RequestState.SUCCEEDED:
        return ScrambleRefusal.NO_PASSWORD_SET
    if not disowned:  # the button is on a containment alert only; a forged click on another request stops here
        return ScrambleRefusal.NOT_DISOWNED
    if already_scrambled:
        return ScrambleRefusal.ALREADY_SCRAMBLED
    if in_progress:
        return ScrambleRefusal.SCRAMBLE_IN_PROGRESS
    if superseded:
        return ScrambleRefusal.SUPERSEDED
    if too_late:
        return ScrambleRefusal.TOO_LATE
    return None


def scramble_too_late(events: Sequence[tuple[str, datetime]], *, now: datetime, window: timedelta) -> bool:
    """Whether the containment alert of a request (its audit ``(action, at)`` in order) is older than ``window``.
    The alert went out when the reset was both made and disowned: at the first disowning, or at the reset's
    success when the target said No while it ran. No such pair (nothing disowned, nothing made): not too late,
    ``scramble_refusal`` refuses those for their own reason."""
    disowned = [at for action, at in events if action in ("reset_disowned", "target_disowned")]
    made = [at for action, at in events if action == "succeeded"]
    if not disowned or not made:
        return False
    return now - max(min(disowned), *made) > window


def scramble_in_progress(events: Sequence[tuple[str, datetime]], *, now: datetime, claim: timedelta) -> bool:
    """Whether a scramble started (``scramble_started``, in the request's audit order) has neither ended
    (``scrambled``/``scramble_failed``) nor been abandoned: started less than ``claim`` ago (a replica that died
    mid-scramble holds the button no longer than that)."""
    started: datetime | None = None
    for action, at in events:
        if action == "scramble_started":
            started = at
        elif action in ("scrambled", "scramble_failed"):
            started = None
    return started is not None and now - started < claim


@dataclass(frozen=True, slots=True)
class StepResult:
    """How one containment step (revoke the sessions, delete the TAP) went: done now, done before (an earlier
    press, or a pass Entra no longer has), or not done and why (a sentence-ready reason, never a secret)."""

    done: bool
    already: bool = False
    reason: str | None = None
