"""Recovering resets a stopped bot left half-way: a ``resetting`` request whose lease ran out is asked of Graph
and given its verdict; an ``approved`` one never started is performed now.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from bot import messages, store
from bot.clients.directory import DirectoryUser
from bot.domain.audit import AuditDraft
from bot.domain.followup_rules import Seen
from bot.domain.lifecycle import RequestState
from bot.domain.recovery_rules import SinceBaseline, since_baseline
from bot.domain.verdict import ResetOutcome, Verdict, VerdictKind, classify
from bot.errors import ResetbotError
from bot.ids import new_correlation_id
from bot.models import ResetRequest
from bot.services.reset_perform import _FINAL_ACTION, RECOVERY_GIVE_UP, REVEAL_TTL, ResetPerforming, _in_thread

#: Logged under the service's name, as before the service was split in modules: operators' log filters and the tests
#: name it.
log = logging.getLogger("bot.services.reset")

#: The recovered verdict's mark for a TAP Entra issued before its process stopped: nobody can be shown it.
_TAP_UNSHOWN = "issued_unshown"
#: Added to twice the poll bound before a ``resetting`` request counts as left behind by a stopped bot.
RECOVERY_MARGIN = timedelta(seconds=10)


class ResetRecovery(ResetPerforming):
    """``recover_interrupted``, the scheduler's job: finish what a stopped bot left half-way."""

    # --- recovery of resets a stopped bot left half-way ------------------------------------------------------

    @property
    def stale_after(self) -> timedelta:
        """How long after its start a ``resetting`` request must be a dead bot's: twice the poll bound (a live
        reset is over by then, token and LDAP included), plus a margin."""
        return timedelta(seconds=2 * self.poll_timeout_s) + RECOVERY_MARGIN

    def recover_interrupted(self, *, now: datetime | None = None) -> int:
        """Finish what a stopped bot left half-way. A request ``resetting`` (killed while Graph was working): ask
        Graph how the stored operation ended and record that verdict, or say the reset was interrupted when no
        operation was stored (the bot died before Graph accepted it, so whether it happened is unknown). A request
        ``approved`` whose reset never began: make it now, as its approver asked. Returns how many were taken on
        here; the compare-and-sets make one replica do each."""
        now = now or self.clock()
        with self.reading() as session:
            resetting = store.requests.stuck_requests(session, state=RequestState.RESETTING,
                                                      since_before=now - self.stale_after, now=now)
            approved = store.requests.stuck_requests(session, state=RequestState.APPROVED,
                                                     since_before=now - self.stale_after, now=now)
        done = sum(self._recover(req, now) for req in resetting)
        for req in approved:
            log.info("resuming the approved reset %s, left unstarted by a stopped bot", req.id)
            self.perform(req, correlation_id=new_correlation_id())
        return done + len(approved)

    def _recover(self, stuck: ResetRequest, now: datetime) -> int:
        cid = new_correlation_id()
        owner = secrets.token_hex(8)
        with self.begin() as session:
            req = store.requests.claim_lease(session, request_id=stuck.id, owner=owner, now=now, until=now + self.lease,
                                             since_before=now - self.stale_after)
        if req is None:
            return 0  # its holder renewed the lease meanwhile, or another replica is on it
        verdict = Verdict(VerdictKind.UNKNOWN, None, {"marker": "recovery", "reason": "interrupted"})
        operation_id = None
        if req.operation_location:
            try:
                op = self.graph.get_reset_operation(access_token=self.token_for(req.requester),
                                                    location=req.operation_location, client_request_id=cid)
            except ResetbotError as e:
                if now - req.updated_at < RECOVERY_GIVE_UP:
                    log.warning("recovering %s: Graph could not say how its reset ended (%s); trying again later",
                                req.id, type(e).__name__)
                    self._hand_back(req.id, owner, now)
                    return 0
                op = None
            if op is not None and not op.done and now - req.updated_at < RECOVERY_GIVE_UP:
                self._hand_back(req.id, owner, now)
                return 0  # Graph is still working on it: look again at the next sweep
            if op is not None and op.done:
                verdict = classify(ResetOutcome(status=op.status, status_detail=op.status_detail))
                operation_id = op.id
        elif req.tap and req.graph_operation_id:
            # Entra issued the pass (its id was noted at once) and the process stopped before the verdict: the pass
            # died with it (it is sealed only with the verdict), so nobody can be shown it, and it must not stay
            # usable either (``_after_tap_unshown`` deletes it).
            verdict = Verdict(VerdictKind.UNKNOWN, None, {"marker": "recovery", "reason": "interrupted",
                                                          "tap": _TAP_UNSHOWN})
            operation_id = req.graph_operation_id
        elif req.client_request_id and not req.tap:
            found = self._since_baseline(req, now)
            if found is None:
                self._hand_back(req.id, owner, now)
                return 0  # AD out of reach: look again at the next sweep
            seen, ad = found
            # No baseline with a client-request-id: AD could not be read when the reset began, and a reset that
            # cannot read the account never calls Graph. Nothing was set.
            never_called = req.baseline_pwd_last_set is None and seen != SinceBaseline.UNREADABLE
            if never_called or seen in (SinceBaseline.UNTOUCHED, SinceBaseline.ACCOUNT_GONE):
                # Graph never carried it to AD: make it now, once (this replica holds the lease), as its approver
                # asked; the thread hears the verdict as from any reset.
                log.info("recovering %s: AD shows no write since its reset began; making it again (%s)", req.id,
                         cid)
                self._carry_out(req, owner, cid, account=ad, announce=[], recovered=True)
                return 1
            verdict = Verdict(VerdictKind.SUCCEEDED, None, {"marker": "recovery", "ad": seen.value}) \
                if seen == SinceBaseline.WRITTEN else Verdict(VerdictKind.UNKNOWN, None, {
                    "marker": "recovery", "reason": "ad_unreachable" if seen == SinceBaseline.UNREADABLE
                    else "ad_unproven"})
        return self._record_recovered(req, verdict, operation_id, cid, now)

    def _since_baseline(self, req: ResetRequest, now: datetime
                        ) -> tuple[SinceBaseline, DirectoryUser | None] | None:
        """What AD shows since the reset began, and the account as read. None while AD is out of reach within the
        give-up bound (the next sweep asks again); past it, ``UNREADABLE``: said as what it is, never guessed."""
        try:
            ad = (self.directory.find_user(guid=req.target_guid) if req.target_guid
                  else self.directory.find_user(dn=req.target_dn) if req.target_dn else None)
        except ResetbotError as e:
            if now - req.updated_at < RECOVERY_GIVE_UP:
                log.warning("recovering %s: AD could not be read (%s); trying again later", req.id, type(e).__name__)
                return None
            return SinceBaseline.UNREADABLE, None
        seen = None if ad is None else Seen(ad.pwd_last_set_raw, ad.password_never_expires, ad.key_version)
        return since_baseline(seen, baseline=req.baseline_pwd_last_set,
                              baseline_version=req.baseline_key_version), ad

    def _record_recovered(self, req: ResetRequest, verdict: Verdict, operation_id: str | None, cid: str,
                          now: datetime) -> int:
        """The recovered verdict, its audit row and its messages, in one transaction."""
        final = verdict.final_state
        written_unheld = verdict.detail.get("ad") == SinceBaseline.WRITTEN.value
        tap_unshown = verdict.detail.get("tap") == _TAP_UNSHOWN
        ids: list[int] = []
        with self.begin() as session:
            done = store.requests.transition(
                session, request_id=req.id, expected={RequestState.RESETTING}, to=final,
                changes={"verdict": verdict.kind.value, "graph_operation_id": operation_id, "lease_owner": None,
                         "lease_until": None},
                audit=AuditDraft(actor="system", action=_FINAL_ACTION[final], correlation_id=cid,
                                 detail={"verdict": verdict.kind.value, "rule": verdict.rule or "",
                                         "recovered": True, **dict(verdict.detail)}),
            )
            # A reset whose poll ran out while Graph worked left its password sealed: its ten minutes to reveal run
            # from this verdict. One a stopped bot left has none (it died with the process).
            withheld = self._withheld(session, done, cid) \
                if done is not None and final == RequestState.SUCCEEDED else None
            if withheld:  # a "No", Cancel or Deny came while it ran: nobody may read it
                store.sealed.discard_sealed(session, request_id=req.id, now=now)
            revealable = done is not None and final == RequestState.SUCCEEDED and not withheld and \
                store.sealed.extend_sealed(session, request_id=req.id, expires_at=now + REVEAL_TTL)
            if done is not None and final == RequestState.SUCCEEDED and self.followups:
                # Prove it landed; remind the user only of a password someone can reveal.
                self.followups.plan(session, done, reset_at=req.updated_at, baseline=req.baseline_pwd_last_set,
                                    baseline_version=req.baseline_key_version, reminders=revealable)
            if done is not None and (revealable or withheld):
                ids = self.outbox.enqueue(session, self._verdict_messages(done, verdict, cid, withheld=withheld),
                                          now=now)
            elif done is not None and final == RequestState.SUCCEEDED:
                said = (messages.reset.reset_recovered_written_unheld(done.target_display, done.requester)
                        if written_unheld else messages.reset.reset_recovered_unrevealable(done.target_display))
                ids = self.outbox.enqueue(session, _in_thread(done, said, origin="reset.recovered")
                                          + self._target_notice(done), now=now)
            elif done is not None:
                store.sealed.discard_sealed(session, request_id=req.id, now=now)  # it never took effect
                said = messages.reset.tap_unshown_after_stop(done.target_display) if tap_unshown else \
                    messages.reset.verdict_sentence(verdict, name=done.target_display, requester=done.requester,
                                                    correlation_id=cid)
                ids = self.outbox.enqueue(session, _in_thread(done, said, origin="reset.recovered"), now=now)
        if done is None:
            return 0
        log.info("recovered %s left resetting by a stopped bot: %s (%s)", req.id, verdict.kind.value, cid)
        self._redraw(done)
        self.outbox.deliver(ids, now=now)
        if done.state == RequestState.SUCCEEDED:
            # --revoke-sessions, a "No" contained, a withheld TAP deleted: as after a reset never interrupted.
            self._after_success(done, cid, withheld=withheld)
        elif tap_unshown:
            self._after_tap_unshown(done, cid)
        return 1

    def _hand_back(self, request_id: str, owner: str, now: datetime) -> None:
        """Recovery could not finish it yet (Graph still working, or out of reach): the next sweep may take it."""
        with self.begin() as session:
            store.requests.renew_lease(session, request_id=request_id, owner=owner, until=now)
