"""Recovering resets a stopped bot left half-way: a ``resetting`` request whose lease ran out is asked of Graph
and given its verdict; an ``approved`` one never started is performed now.

A ``--tap`` request cut off after its POST and before Graph's answer was stored may have left a Temporary Access
Pass in Entra that nobody received (its value is shown only in that answer): recovery lists the user's passes and
deletes the one made since the reset began (``_recover_tap``), as containment deletes a pass the bot issued.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot import messages, store
from bot.clients.directory import DirectoryUser
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.followup_rules import Seen
from bot.domain.lifecycle import RequestState
from bot.domain.recovery_rules import SinceBaseline, since_baseline, tap_may_be_ours
from bot.domain.verdict import ResetOutcome, Verdict, VerdictKind, classify
from bot.errors import GraphPermissionError, ResetbotError
from bot.ids import new_correlation_id
from bot.models import OutboxMessage, ResetRequest
from bot.services.outbox import channel_message
from bot.services.reset_perform import (
    _FINAL_ACTION,
    RECOVERY_GIVE_UP,
    REVEAL_TTL,
    TAP_LIFETIME_MINUTES,
    ResetPerforming,
    _in_thread,
)

#: Logged under the service's name, as before the service was split in modules: operators' log filters and the tests
#: name it.
log = logging.getLogger("bot.services.reset")

#: The recovered verdict's mark for a TAP Entra issued before its process stopped: nobody can be shown it.
_TAP_UNSHOWN = "issued_unshown"
#: Added to twice the poll bound before a ``resetting`` request counts as left behind by a stopped bot.
RECOVERY_MARGIN = timedelta(seconds=10)
_TAP_STEP = "delete_tap"


class TapFound(StrEnum):
    """What recovery found of a pass a ``--tap`` reset cut off after its POST may have made. Values are stable
    (audit: the ``tap`` of the ``failed`` row)."""

    DELETED = "deleted"  # Graph had made it; it is deleted now (or was gone by the time it was deleted)
    NONE_FOUND = "none_found"  # Graph holds none made since the reset began
    NOT_DELETED = "not_deleted"  # Graph holds one, and refused or failed to delete it
    UNCHECKED = "unchecked"  # Graph could not be asked (refused the list, or out of reach past the give-up bound)


@dataclass(frozen=True)
class _TapSweep:
    found: TapFound
    #: Passes deleted now: (method id, Graph's createdDateTime, already gone); for the audit.
    deleted: tuple[tuple[str, str, bool], ...] = ()
    #: Why a pass could not be checked or deleted (never a pass's value: Graph lists none).
    reason: str = ""


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
        return done + len(approved) + self._delete_owed_taps(now)

    def _delete_owed_taps(self, now: datetime) -> int:
        """A withheld TAP (called off while Entra issued it) is deleted right after its verdict's commit, by the
        process that recorded it; one that stopped in between left a usable pass that nobody holds and nobody
        would delete (the request is ``succeeded``, which the rest of recovery never looks at). Found here once
        that process would have done it (``stale_after``) and while the pass can still be live (its lifetime),
        taken by one replica (the lease columns), and deleted the same way, audited and said (after a target's
        "No", contained as a whole, as the verdict's process would have)."""
        with self.reading() as session:
            owed = store.requests.withheld_taps_owed(
                session, made_after=now - timedelta(minutes=TAP_LIFETIME_MINUTES) - RECOVERY_MARGIN,
                made_before=now - self.stale_after)
        taken = 0
        for req, why in owed:
            with self.begin() as session:
                mine = store.requests.claim_succeeded(session, request_id=req.id, owner=secrets.token_hex(8),
                                                      now=now, until=now + self.lease)
            if not mine:
                continue
            log.warning("request %s: its withheld TAP was never deleted (its process stopped); deleting it now",
                        req.id)
            # What the verdict's process owed after its commit: the deletion (and, after a "No", the containment).
            self._after_success(req, new_correlation_id(), withheld=why)
            taken += 1
        return taken

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
        elif req.client_request_id and req.tap:
            # Cut after the POST, before Entra's answer (and the pass's id) was stored: ask Entra for the user's passes.
            return self._recover_tap(req, owner, cid, now)
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

    def _recover_tap(self, req: ResetRequest, owner: str, cid: str, now: datetime) -> int:
        """A ``--tap`` reset cut off after it was sent and before Graph's answer was stored: Graph may have made a
        pass (a live credential, which satisfies MFA) whose value died with the process. Its passes are listed and
        any made since the reset began is deleted (``tap_may_be_ours`` says which, and why that rule), with the
        requester's delegated token like the rest of the TAP code: the role that made a pass may read and delete it.
        Graph or the token out of reach: handed back to the next sweep until the give-up bound, as for a password
        reset; a refusal (403) is final at once. The request ends ``failed`` (nobody received a pass), and the
        thread hears which of the four outcomes it was; one that leaves a pass possibly live tells security."""
        sweep = self._sweep_taps(req, cid, now)
        if sweep is None:
            self._hand_back(req.id, owner, now)
            return 0
        return self._record_tap_recovered(req, sweep, cid, now)

    def _sweep_taps(self, req: ResetRequest, cid: str, now: datetime) -> _TapSweep | None:
        """List and delete; None to ask again at the next sweep. Never raises."""
        patient = now - req.updated_at < RECOVERY_GIVE_UP
        try:
            token = self.token_for(req.requester)
            passes = self.graph.list_temporary_access_passes(user_id=req.target_entra_id, access_token=token,
                                                             client_request_id=cid)
        except GraphPermissionError as e:
            log.warning("recovering %s: Entra refused to list the user's passes (%s)", req.id, cid)
            return _TapSweep(TapFound.UNCHECKED, reason=_refused(e))
        except ResetbotError as e:
            if patient:
                log.warning("recovering %s: the user's passes could not be listed (%s); trying again later", req.id,
                            type(e).__name__)
                return None
            return _TapSweep(TapFound.UNCHECKED, reason=str(e))
        ours = [p for p in passes if tap_may_be_ours(p.created, began=req.updated_at)]
        if not ours:
            return _TapSweep(TapFound.NONE_FOUND)
        deleted: list[tuple[str, str, bool]] = []
        for tap in ours:
            try:
                gone_now = self.graph.delete_temporary_access_pass(user_id=req.target_entra_id, method_id=tap.id,
                                                                   access_token=token, client_request_id=cid)
            except GraphPermissionError as e:
                log.warning("recovering %s: Entra refused to delete the pass nobody received (%s)", req.id, cid)
                return _TapSweep(TapFound.NOT_DELETED, tuple(deleted), reason=_refused(e))
            except ResetbotError as e:
                if patient:
                    log.warning("recovering %s: the pass nobody received could not be deleted (%s); trying again "
                                "later", req.id, type(e).__name__)
                    return None
                return _TapSweep(TapFound.NOT_DELETED, tuple(deleted), reason=str(e))
            deleted.append((tap.id, tap.created.isoformat() if tap.created else "", not gone_now))
        return _TapSweep(TapFound.DELETED, tuple(deleted))

    def _record_tap_recovered(self, req: ResetRequest, sweep: _TapSweep, cid: str, now: datetime) -> int:
        """The verdict (``failed``: nobody received a pass), its audit rows (each deletion as containment audits
        it; a pass left possibly live as ``containment_failed``), the thread's sentence and security's alert, in
        one transaction."""
        verdict = Verdict(VerdictKind.UNKNOWN, None, {"marker": "recovery", "reason": "interrupted",
                                                      "tap": sweep.found.value})
        name = req.target_display
        said = {
            TapFound.DELETED: lambda: (messages.reset.tap_recovered_gone(name, req.requester)
                                       if all(already for _, _, already in sweep.deleted)
                                       else messages.reset.tap_recovered_deleted(name, req.requester)),
            TapFound.NONE_FOUND: lambda: messages.reset.tap_recovered_none(name, req.requester),
            TapFound.NOT_DELETED: lambda: messages.reset.tap_recovered_not_deleted(name, sweep.reason, cid),
            TapFound.UNCHECKED: lambda: messages.reset.tap_recovered_unchecked(name, sweep.reason, cid),
        }[sweep.found]()
        left_live = sweep.found in (TapFound.NOT_DELETED, TapFound.UNCHECKED)
        ids: list[int] = []
        with self.begin() as session:
            held = store.requests.lock_request(session, request_id=req.id)
            if held is None or held.state != RequestState.RESETTING:
                return 0  # another replica recorded it first (this one's lease lapsed meanwhile)
            for method_id, created, already in sweep.deleted:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor="system", action=AuditAction.TAP_DELETED, request_id=req.id, correlation_id=cid,
                    detail={"already_gone": already, "recovered": True, "method_id": method_id,
                            "created": created}))
            if left_live:
                store.audit.append_audit(session, draft=AuditDraft(
                    actor="system", action=AuditAction.CONTAINMENT_FAILED, request_id=req.id, correlation_id=cid,
                    detail={"step": _TAP_STEP, "reason": sweep.reason, "recovered": True}))
            done = store.requests.transition(
                session, request_id=req.id, expected={RequestState.RESETTING}, to=verdict.final_state,
                changes={"verdict": verdict.kind.value, "lease_owner": None, "lease_until": None},
                audit=AuditDraft(actor="system", action=_FINAL_ACTION[verdict.final_state], correlation_id=cid,
                                 detail={"verdict": verdict.kind.value, "rule": "", "recovered": True,
                                         **dict(verdict.detail)}))
            if done is None:  # cannot be: locked and resetting above
                return 0
            owed: list[OutboxMessage] = _in_thread(done, said, origin="reset.recovered")
            if left_live and self.security_channel:
                owed.append(channel_message(
                    self.security_channel, messages.reset.tap_recovered_security_alert(
                        done, checked=sweep.found == TapFound.NOT_DELETED, reason=sweep.reason, correlation_id=cid),
                    origin="reset.containment", request_id=done.id))
            ids = self.outbox.enqueue(session, owed, now=now)
        log.info("recovered %s, a TAP left resetting by a stopped bot: %s (%s)", req.id, sweep.found.value, cid)
        self._redraw(done)
        self.outbox.deliver(ids, now=now)
        return 1

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


def _refused(e: GraphPermissionError) -> str:
    """Entra's 403, said as containment says it: the role of the account the reset was made with falls short."""
    return (f"Entra refused it: {e.code or 'insufficient role'}; the role of the account the reset was made with may "
            "not do this to this user")
