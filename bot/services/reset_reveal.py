"""After a reset: the requester's one reveal of the sealed password (claimed, then spent once Slack opened the
modal, or given back), the target's "This wasn't me", and the wipe of passwords nobody revealed in time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import messages, store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.followup_rules import FollowUpKind
from bot.domain.groups import MEMBERS_FOR_A_DECISION_S
from bot.domain.lifecycle import RequestState
from bot.domain.rules import Refusal
from bot.domain.verdict import VerdictKind
from bot.logs import REVEALED_SECRET_TTL_S, remember_secret
from bot.models import OutboxMessage, ResetRequest
from bot.policy import phonetic
from bot.services.outbox import channel_message
from bot.services.reset_perform import ResetDeps, _in_thread

#: Logged under the service's name, as before the service was split in modules: operators' log filters and the tests
#: name it.
log = logging.getLogger("bot.services.reset")

#: How long a Reveal click holds the sealed password while Slack opens the modal: longer than the Web API
#: client's timeout (30 s) with a retry, so a slow views.open is never overtaken by a second click.
REVEAL_CLAIM = timedelta(minutes=2)
#: What, in a request's trail, means nobody may read its password any more (a reveal that was under way then and
#: failed to open does not give it back): the reason its discard is audited with.
_WITHHELD_BY: dict[str, str] = {AuditAction.RESET_WITHDRAWN: "withdrawn", AuditAction.RESET_DISOWNED: "target_said_no",
                AuditAction.TARGET_DISOWNED: "target_said_no"}


@dataclass(frozen=True, slots=True)
class Reveal:
    """A reveal under way: the modal to open (it holds the password: never logged), and the claim on the sealed
    row that ``ResetService.reveal_shown`` or ``reveal_not_shown`` settles."""

    request_id: str
    claimed_until: datetime
    modal: dict[str, object] = field(repr=False)


class ResetReveal(ResetDeps):
    """``reveal`` and its settling, ``not_me`` and ``wipe_expired``."""
    # --- reveal, the target's "This wasn't me", the wipe ------------------------------------------------

    def reveal(self, *, request_id: str, actor: str, correlation_id: str) -> tuple[Reveal | None, str | None]:
        """(reveal, None) for the requester's one reveal: the modal to open, its password claimed but not spent
        (``reveal_shown`` spends it once Slack opened the modal, ``reveal_not_shown`` gives it back); (None,
        sentence) for anyone or anything else. A password this process cannot decrypt (sealed by a replica with
        another key) is given back at once: pressing Reveal again may reach the replica that can."""
        with self.reading() as session:
            req = store.requests.get_request(session, request_id=request_id)
        if req is None:
            return None, messages.requests.request_not_found(request_id)
        to_target = self.delivers_to_target(req)
        revealer, refusal = ((req.target_slack_id, Refusal.ONLY_TARGET_REVEALS) if to_target
                             else (req.requester, Refusal.ONLY_REQUESTER_REVEALS))
        if actor != revealer:
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": refusal}))
            return None, messages.requests.refusal(refusal)
        if not to_target and self.agents_group and actor not in self.notifier.group_members(
                self.agents_group, max_age=MEMBERS_FOR_A_DECISION_S):
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": Refusal.REQUESTER_NOT_AN_AGENT}))
            return None, messages.reset.reveal_not_an_agent()
        if req.confirmation == "no":
            return None, self._refuse_disowned(req, actor, correlation_id)
        if req.state != RequestState.SUCCEEDED:  # a password sealed while Graph still works waits for its verdict
            return None, messages.reset.reveal_gone()
        with self.begin() as session:
            withdrawn = any(e.action == AuditAction.RESET_WITHDRAWN
                            for e in store.audit.audit_for_request(session, request_id=req.id))
        if withdrawn:  # a Cancel or Deny came while the reset ran: its password was discarded, never sealed
            self._audit(AuditDraft(actor=actor, action=AuditAction.REFUSED, request_id=req.id,
                                   correlation_id=correlation_id,
                                   detail={"attempted": "reveal", "reason": "withdrawn"}))
            return None, messages.reset.reveal_refused_withdrawn(req.target_display)
        now = self.clock()
        until = now + REVEAL_CLAIM
        with self.begin() as session:
            # The row locked while claiming: a "No" recorded meanwhile is seen here, or waits until this claim is made.
            current = store.requests.lock_request(session, request_id=req.id)
            disowned = current is not None and current.confirmation == "no"
            taken = None if disowned else store.sealed.claim_sealed(session, request_id=req.id, now=now, until=until)
            busy = taken is None and store.sealed.is_claimed(session, request_id=req.id, now=now)
        if disowned:
            return None, self._refuse_disowned(req, actor, correlation_id)
        if taken is None:
            return None, messages.reset.reveal_in_progress() if busy else messages.reset.reveal_gone()
        kind, ciphertext = taken
        secret = self.sealer.unseal(ciphertext)
        if secret is None:
            log.warning("request %s: the temporary password cannot be unsealed here (sealed with another "
                        "RESETBOT_SEALING_KEY); it stays sealed", req.id)
            self._give_back(req.id, until, actor, correlation_id, reason="unsealable")
            return None, messages.reset.reveal_unsealable()
        remember_secret(secret, ttl=REVEALED_SECRET_TTL_S)
        modal = messages.reset.reveal_modal(name=req.target_display, password=secret, spelled=phonetic(secret),
                                            must_change=req.verdict == VerdictKind.SUCCEEDED, tap=kind == "tap")
        return Reveal(req.id, until, modal), None

    def _refuse_disowned(self, req: ResetRequest, actor: str, correlation_id: str) -> str:
        """The target said they did not ask for this reset (a "No", however late): whoever is on the phone is not
        them, so nobody may read the password any more. It is discarded (the first refused click says so in the
        thread), unless another click's reveal is showing it right now (that one is audited as revealed, and the
        thread was told to treat it as read); each refused click is audited."""
        now = self.clock()
        with self.begin() as session:
            found = store.sealed.discard_sealed(session, request_id=req.id, now=now)
            discarded = found == store.sealed.Discard.DISCARDED
            store.audit.append_audit(session, draft=AuditDraft(
                actor=actor, action=AuditAction.REFUSED, request_id=req.id, correlation_id=correlation_id,
                detail={"attempted": "reveal", "reason": "target_said_no", "discarded": discarded,
                        **({"reveal_under_way": True} if found == store.sealed.Discard.REVEALING else {})}))
            ids = self.outbox.enqueue(session, _in_thread(req, messages.reset.secret_discarded_disowned(),
                                                          origin="reset.discarded") if discarded else [], now=now)
        self.outbox.deliver(ids, now=now)
        return messages.reset.reveal_refused_disowned(req.target_display,
                                                      discarded=found != store.sealed.Discard.REVEALING)

    def reveal_shown(self, shown: Reveal, *, actor: str, correlation_id: str) -> None:
        """Slack opened the modal: now the password is spent, "revealed" audited and said in the thread. The
        password was shown even when its row is gone (a discard took a claim this reveal held past its time): then
        "revealed" is written all the same (``after_discard``), unless another reveal already recorded it."""
        now = self.clock()
        with self.begin() as session:
            detail: dict[str, object] = {}
            if not store.sealed.spend_sealed(session, request_id=shown.request_id, claimed_until=shown.claimed_until):
                if any(e.action == AuditAction.REVEALED
                       for e in store.audit.audit_for_request(session, request_id=shown.request_id)):
                    return
                detail = {"after_discard": True}
            store.audit.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.REVEALED,
                                                               request_id=shown.request_id,
                                                               correlation_id=correlation_id, detail=detail))
            req = store.requests.get_request(session, request_id=shown.request_id)
            ids = self.outbox.enqueue(session, [] if req is None else _in_thread(
                req, messages.reset.revealed(actor), origin="reset.revealed"), now=now)
        self.outbox.deliver(ids, now=now)

    def reveal_not_shown(self, shown: Reveal, *, actor: str, correlation_id: str, error: str) -> str:
        """Slack did not open the modal (an expired trigger_id, Slack down): the password stays sealed, the next
        click may show it; the sentence for the requester."""
        log.warning("request %s: Slack did not open the reveal modal (%s); the password stays sealed",
                    shown.request_id, error)
        self._give_back(shown.request_id, shown.claimed_until, actor, correlation_id, reason=error)
        return messages.reset.reveal_not_shown(error)

    def _give_back(self, request_id: str, claimed_until: datetime, actor: str, correlation_id: str, *,
                   reason: str) -> None:
        """The claim back for the next click; unless the reset was disowned or called off while this reveal was
        under way (it was left to this reveal then): nobody may read it now, so it is discarded unrevealed."""
        now = self.clock()
        with self.begin() as session:
            req = store.requests.lock_request(session, request_id=request_id)
            why = None if req is None else "target_said_no" if req.confirmation == "no" else next(
                (_WITHHELD_BY[e.action] for e in store.audit.audit_for_request(session, request_id=request_id)
                 if e.action in _WITHHELD_BY), None)
            discarded = why is not None and store.sealed.spend_sealed(session, request_id=request_id,
                                                                      claimed_until=claimed_until)
            if not discarded:
                store.sealed.release_claim(session, request_id=request_id, claimed_until=claimed_until)
            store.audit.append_audit(session, draft=AuditDraft(actor=actor, action=AuditAction.REVEAL_FAILED,
                                                               request_id=request_id, correlation_id=correlation_id,
                                                               detail={"reason": reason}))
            ids: list[int] = []
            if discarded and req is not None:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor=actor, action=AuditAction.UNREVEALED_DISCARDED, request_id=request_id,
                    correlation_id=correlation_id, detail={"reason": why}))
                store.followups.skip_followups(session, request_id=request_id, kind=FollowUpKind.REPLACED, now=now)
                ids = self.outbox.enqueue(session, _in_thread(req, messages.reset.reveal_failed_then_discarded(),
                                                              origin="reset.discarded"), now=now)
        self.outbox.deliver(ids, now=now)

    def not_me(self, *, request_id: str, actor: str, correlation_id: str) -> str:
        """The target disowns the reset: audited, and said to the security channel and the thread in the same
        transaction (an alert that a password was changed behind someone's back must not be lost to a Slack
        blip)."""
        now = self.clock()
        with self.begin() as session:
            req = store.requests.get_request(session, request_id=request_id)
            if req is None or actor != req.target_slack_id:
                return messages.requests.refusal(Refusal.ONLY_TARGET_CONFIRMS)
            # A password nobody revealed yet is discarded: whoever asked for a reset the person disowns must not
            # learn it now (with it, the follow-up reminding them to sign in with it has nothing to remind of).
            # A reveal showing it right now keeps it (the reveal is audited): the thread is told to treat it as read.
            found = store.sealed.discard_sealed(session, request_id=req.id, now=now)
            discarded = found == store.sealed.Discard.DISCARDED
            if discarded:
                store.followups.skip_followups(session, request_id=req.id, kind=FollowUpKind.REPLACED, now=now)
            store.audit.append_audit(session, draft=AuditDraft(
                actor=actor, action=AuditAction.RESET_DISOWNED, request_id=req.id, correlation_id=correlation_id,
                detail={"unrevealed_discarded": True} if discarded
                else {"reveal_under_way": True} if found == store.sealed.Discard.REVEALING else {}))
            alert = messages.reset.security_reset_disowned(req)
            owed = [channel_message(self.security_channel, alert, origin="reset.security", request_id=req.id)] \
                if self.security_channel and not self._contained_on_disowning(req) else []
            owed += _in_thread(req, alert, origin="reset.disowned")
            if discarded:
                owed += _in_thread(req, messages.reset.disowned_password_discarded(), origin="reset.disowned")
            elif found == store.sealed.Discard.REVEALING:
                owed += _in_thread(req, messages.reset.disowned_while_revealing(), origin="reset.disowned")
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        return messages.reset.not_me_answered()

    def _contained_on_disowning(self, req: ResetRequest) -> bool:
        """Whether disowning ``req`` is contained at once, whose one security alert then says it all (so this one
        is not posted): ``ResetContainment`` says so for a reset that was made."""
        return False

    def wipe_expired(self, *, now: datetime | None = None) -> int:
        """Wipe sealed passwords nobody revealed within their time; the thread says so."""
        now = now or self.clock()
        with self.begin() as session:
            wiped = store.sealed.wipe_expired_secrets(session, now=now)
            owed: list[OutboxMessage] = []
            for request_id in wiped:
                store.audit.append_audit(session, draft=AuditDraft(actor="scheduler",
                                                                   action=AuditAction.UNREVEALED_WIPED,
                                                                   request_id=request_id))
                # Nobody was told the password: reminding the user to sign in with it would only confuse them.
                store.followups.skip_followups(session, request_id=request_id, kind=FollowUpKind.REPLACED, now=now)
                req = store.requests.get_request(session, request_id=request_id)
                if req is not None:
                    owed += _in_thread(req, messages.reset.secret_wiped(), origin="reset.wiped")
            ids = self.outbox.enqueue(session, owed, now=now)
        self.outbox.deliver(ids, now=now)
        return len(wiped)

    # --- helpers -------------------------------------------------------------------------------------------------

    def _audit(self, draft: AuditDraft) -> None:
        with self.begin() as session:
            store.audit.append_audit(session, draft=draft)
