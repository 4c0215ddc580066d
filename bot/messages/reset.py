"""The reset itself: the verdict in the thread, the TAP, the one-time reveal and the target's notice.

The reveal modal is the only builder that receives a password, as a ``SecretStr``, to put it in a modal that only
the requester sees; nothing else here ever does.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from bot.domain.verdict import RejectionRule, Verdict, VerdictKind
from bot.ids import Action, Block, Callback
from bot.messages.format import Blocks, button, esc
from bot.models import ResetRequest


def reset_started(name: str) -> str:
    return f"Resetting {esc(name)}'s password in Entra ID; writeback carries it to Active Directory…"


_NOT_CHANGED = "The password was not changed."

_POLICY_RULE_WORDS = {
    RejectionRule.LENGTH: "it is shorter than the on-prem policy requires",
    RejectionRule.COMPLEXITY: "it does not meet the on-prem complexity rule",
    RejectionRule.HISTORY: "it matches one of the account's recent passwords (password history)",
    RejectionRule.MIN_AGE: "the password was changed too recently (minimum password age)",
    RejectionRule.FILTER: "a password filter on the domain controllers refused it (it meets length and complexity)",
    RejectionRule.FILTER_OR_HISTORY_OR_AGE: ("it meets length and complexity, so password history, the minimum "
                                             "age or a password filter refused it"),
    RejectionRule.BANNED: "it is on Entra ID's banned-password list",
}


_VERDICT_WORDS: dict[VerdictKind, str] = {
    VerdictKind.SUCCEEDED: (
        ":white_check_mark: Done: {name}'s new temporary password is set in Entra ID and written back to Active "
        "Directory; they must change it at next sign-in. {requester}, press Reveal to read it to them (it can be "
        "shown once, within 10 minutes)."),
    VerdictKind.SUCCEEDED_NO_MUST_CHANGE: (
        ":warning: Done, with a catch: the new temporary password is written back to Active Directory, but "
        "{name}'s account has \"password never expires\" set on-prem, so \"must change at next sign-in\" does not "
        "apply there. Ask them to change it themselves. {requester}, press Reveal to read it to them (once, within "
        "10 minutes)."),
    VerdictKind.POLICY_REJECTED: ":no_entry: Active Directory refused the new password: {rule}. {not_changed}",
    VerdictKind.CLOUD_REJECTED: ":no_entry: Entra ID refused the new password before writeback: {rule}. {not_changed}",
    VerdictKind.ROLE_TOO_WEAK: (
        ":no_entry: {requester}'s Entra role may not reset {name}'s password (Entra answered "
        "Authorization_RequestDenied); someone with a stronger admin role must do it. {not_changed}"),
    VerdictKind.WRITEBACK_OFF: (
        ":warning: Password writeback is not enabled for this tenant, so a synced account's password cannot be "
        "reset from the cloud; ask the Entra admins to turn it on in Entra Connect. {not_changed}"),
    VerdictKind.AGENT_OFFLINE: (
        ":warning: The on-premises writeback agent could not reach Active Directory (Entra Connect or the domain "
        "controller is down). {not_changed} Try again later and tell the AD team."),
    VerdictKind.PROTECTED_ON_PREM: (
        ":no_entry: Active Directory refused: the account is protected on-prem (adminCount=1) and the writeback "
        "account may not reset it. {not_changed}"),
    VerdictKind.DISABLED_ON_PREM: (
        ":no_entry: Active Directory refused: {name}'s account is disabled on-prem. {not_changed}"),
    VerdictKind.LOCKED_ON_PREM: (
        ":no_entry: Active Directory refused: {name}'s account is locked out on-prem; ask again with `--unlock`. "
        "{not_changed}"),
    VerdictKind.THROTTLED: (
        ":hourglass: Microsoft Graph is throttling requests right now. {not_changed} Try again in a few minutes."),
    VerdictKind.UNKNOWN: (
        ":grey_question: The reset did not complete and I can't tell why, so the password may or may not have "
        "changed; check the account before trying again (reference {cid})."),
}
_UNKNOWN_REASON_WORDS: dict[str, str] = {
    "reauth_required": (
        ":key: {requester} has no working Entra sign-in linked to resetbot, and resets are made with the agent's "
        "own Entra account: run `/resetbot login`, then ask again. {not_changed}"),
    "graph_unavailable": (
        ":warning: Microsoft Graph could not be reached, so the reset was not made as far as I can tell; check the "
        "account before trying again (reference {cid})."),
    "interrupted": (
        ":grey_question: resetbot stopped in the middle of this reset, before Entra said whether it was made, so "
        "{name}'s password may or may not have changed; check the account before asking again (reference {cid})."),
    "ad_unreachable": (
        ":grey_question: resetbot stopped in the middle of this reset, before Entra said whether it was made, and "
        "for 30 minutes since, Active Directory could not be read to see whether {name}'s password changed after "
        "the reset began; check the account's password-last-set time before asking again (reference {cid})."),
    "ad_unproven": (
        ":grey_question: resetbot stopped in the middle of this reset, before Entra said whether it was made, and "
        "Active Directory cannot show whether {name}'s password changed since (it was already set to change at "
        "next sign-in, and resetbot may not read the key version); check the account before asking again "
        "(reference {cid})."),
}


#: How a success's sentence ends when only the target may reveal the password (``RESETBOT_DELIVERY=target``).
_TO_TARGET_TAIL = ("Only {name} can reveal it, once, from their DM with the bot (within 10 minutes); nobody in this "
                   "thread will see it.")


def verdict_sentence(verdict: Verdict, *, name: str, requester: str, correlation_id: str,
                     to_target: bool = False, withheld: str | None = None) -> str:
    """The verdict in plain words, for the thread. Never receives the password. ``to_target``: the sentence says
    that only the target can reveal it, instead of asking the requester to; ``withheld`` (why: ``target_said_no``
    or ``withdrawn``): that it was discarded unrevealed."""
    words = _VERDICT_WORDS[verdict.kind]
    if withheld and "{requester}, press Reveal" in words:
        words = words[:words.index("{requester}, press Reveal")] + "{withheld}"
    elif to_target and "{requester}, press Reveal" in words:
        words = words[:words.index("{requester}, press Reveal")] + _TO_TARGET_TAIL
    if verdict.kind == VerdictKind.UNKNOWN:
        words = _UNKNOWN_REASON_WORDS.get(verdict.detail.get("reason", ""), words)
    rule = _POLICY_RULE_WORDS.get(verdict.rule, "it breaks a policy rule") if verdict.rule else ""
    return words.format(name=esc(name), requester=f"<@{requester}>", rule=rule, not_changed=_NOT_CHANGED,
                        cid=correlation_id,
                        withheld=secret_discarded_withheld(withheld, name) if withheld else "")


def reset_recovered_unrevealable(name: str) -> str:
    return (f":white_check_mark: Entra reports that the reset of {esc(name)}'s password succeeded, but resetbot "
            "restarted before it could seal the temporary password, so nobody can reveal it. Ask again for a new reset "
            "to get a password you can read out.")


def reset_recovered_written_unheld(name: str, requester: str) -> str:
    """A reset cut off before Graph's answer was stored, whose account AD shows written since it began."""
    return (f":warning: resetbot stopped in the middle of this reset, before it stored Entra's answer. Active "
            f"Directory shows that {esc(name)}'s password was changed after the reset began, so it went through, "
            f"but nobody holds the new password: it was lost with the stopped process. <@{requester}>, make a new "
            "request to get a password you can read out.")


#: How each sentence of a ``--tap`` reset cut off after its POST begins: the pass's value died with the process.
_TAP_CUT_OFF = ("resetbot stopped after asking Entra for this Temporary Access Pass and before it stored Entra's "
                "answer")


def tap_recovered_deleted(name: str, requester: str) -> str:
    """Recovery found the pass Graph made for a request cut off after its POST, and deleted it."""
    return (f":warning: {_TAP_CUT_OFF}: Entra had made one for {esc(name)}, which nobody received, and resetbot has "
            f"now deleted it, so nobody can sign in with it (<@{requester}>, make a new request if they still need "
            "one).")


def tap_recovered_gone(name: str, requester: str) -> str:
    """Recovery found the pass Graph made, and it was gone by the time it was deleted (Graph answered 404)."""
    return (f":warning: {_TAP_CUT_OFF}: Entra had made one for {esc(name)}, which nobody received, and it no longer "
            f"exists, so nobody can sign in with it (<@{requester}>, make a new request if they still need one).")


def tap_recovered_none(name: str, requester: str) -> str:
    """Recovery found no pass made since the request's reset began: Graph never made it (or it is gone)."""
    return (f":information_source: {_TAP_CUT_OFF}: Entra holds none for {esc(name)} made since, so none was issued "
            f"and nobody can sign in with one from this request (<@{requester}>, make a new request if they still "
            "need one).")


def tap_recovered_not_deleted(name: str, reason: str, correlation_id: str) -> str:
    """Graph made the pass (it lists it) and would not delete it: someone must, and security has been told."""
    return (f":rotating_light: {_TAP_CUT_OFF}: Entra had made one for {esc(name)}, which nobody received, and it "
            f"could not be deleted ({esc(reason)}), so the security channel has been told and an Authentication "
            f"Administrator must delete {esc(name)}'s Temporary Access Pass in the Entra admin center (reference "
            f"{correlation_id}).")


def tap_recovered_unchecked(name: str, reason: str, correlation_id: str) -> str:
    """Graph could not say (refused, or out of reach past the give-up bound) whether it made the pass."""
    return (f":rotating_light: {_TAP_CUT_OFF}, so Entra may have made one for {esc(name)} that nobody received, and "
            f"it could not be checked ({esc(reason)}), so the security channel has been told and an Authentication "
            f"Administrator must delete any Temporary Access Pass of {esc(name)}'s in the Entra admin center "
            f"(reference {correlation_id}).")


def tap_recovered_security_alert(req: ResetRequest, *, checked: bool, reason: str, correlation_id: str) -> str:
    """The security channel's alert when a pass nobody received may be live and could not be deleted."""
    what = "it could not be deleted" if checked else "whether Entra made it could not be checked"
    return (f":rotating_light: A Temporary Access Pass for {esc(req.target_display)}, requested by <@{req.requester}>"
            f" (request {req.id}), may be live with nobody holding it: resetbot stopped before it stored Entra's "
            f"answer, and {what} ({esc(reason)}). Delete it in the Entra admin center (the user's Authentication "
            f"methods); reference {correlation_id}.")


def tap_started(name: str) -> str:
    return f"Issuing a Temporary Access Pass for {esc(name)} in Entra ID (no password change)…"


def tap_issued(name: str, requester: str, minutes: int, *, withheld: str | None = None) -> str:
    """The TAP's verdict; ``withheld`` (why nobody may read it): that it was discarded, and that the pass itself is
    being deleted in Entra (the next line in the thread says whether it was: ``bot.messages.containment``), instead
    of "press Reveal". A withheld pass is never called "ready": nobody is to use it."""
    if withheld:
        return (f":white_check_mark: Done: Entra issued a Temporary Access Pass for {esc(name)}; their password is "
                "unchanged. "
                + secret_discarded_withheld(withheld, name).replace("temporary password", "Temporary Access Pass")
                .replace("so nobody may read it.", "so nobody may read it, and the bot deletes it in Entra now "
                                                   "(the next line here says whether it could)."))
    return (f":white_check_mark: Done: a Temporary Access Pass for {esc(name)} is ready, usable once within {minutes} "
            f"minutes; their password is unchanged. <@{requester}>, press Reveal to read it to them (it can be shown "
            "once, within 10 minutes).")


def reveal_blocks(request_id: str) -> Blocks:
    return [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": "The temporary password is sealed until you reveal it."}},
        {"type": "actions", "block_id": Block.REVEAL_ACTIONS, "elements": [
            button("Reveal temporary password", Action.REVEAL, request_id, style="primary")]},
    ]


def reveal_modal(*, name: str, password: SecretStr, spelled: str, must_change: bool,
                 tap: bool = False) -> dict[str, Any]:
    """The one place a temporary password (or Temporary Access Pass) is ever shown: a modal, to the requester,
    once."""
    secret = password.get_secret_value()
    after = "They must change it at next sign-in." if must_change else "Ask them to change it right away."
    if tap:
        after = "It signs them in once; then they set up their sign-in methods."
    return {
        "type": "modal",
        "callback_id": Callback.REVEAL,
        "title": {"type": "plain_text", "text": "Temporary Access Pass" if tap else "Temporary password"},
        "close": {"type": "plain_text", "text": "Done"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                f"Read this to {esc(name)} now: it is shown only this once. {after}")}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{secret}```"}},
            {"type": "context", "elements": [{"type": "plain_text", "text": spelled}]},
        ],
    }


def revealed(requester: str) -> str:
    return f"<@{requester}> revealed the temporary password. It is no longer stored anywhere."


def reveal_not_an_agent() -> str:
    return ("You are no longer a helpdesk agent (not in the agents' user group), so the temporary password can't be "
            "shown to you; it stays sealed until it is wiped.")


def reveal_refused_disowned(name: str, *, discarded: bool = True) -> str:
    """``discarded``: False when another reveal was showing the password as the No came (it was not discarded)."""
    gone = "it has been discarded, and security" if discarded else "security"
    return (f"{esc(name)} said they did not ask for this reset, so the temporary password can't be shown to anyone: "
            f"{gone} has been told. Their account needs a new, verified request.")


def secret_discarded_disowned() -> str:
    return ("The temporary password was discarded unrevealed: the user said they did not ask for this reset, so "
            "nobody may read it.")


def withdrawn_thread(actor: str, *, denied: bool, tap: bool = False) -> str:
    """A Cancel or Deny that came once the reset was under way: it cannot stop Entra, only who may read the result
    (and, for a TAP, whether it stays usable: it is deleted in Entra once issued)."""
    verb = "denied" if denied else "cancelled"
    if tap:
        return (f":no_entry_sign: <@{actor}> {verb} this request while its Temporary Access Pass was already being "
                "issued. Entra cannot be stopped once it has started, so the pass will be discarded unrevealed the "
                "moment it is made, and deleted in Entra: nobody will be able to reveal or use it.")
    return (f":no_entry_sign: <@{actor}> {verb} this request while its reset was already under way. Entra cannot be "
            "stopped once it has started, so the temporary password will be discarded unrevealed the moment it is "
            "made: nobody will be able to reveal it.")


def withdrawn_answer() -> str:
    return ("This reset was already under way and cannot be stopped; its temporary password will be discarded "
            "unrevealed once it is made (nobody can reveal it), and the thread says so.")


def withdrawn_discarded_answer() -> str:
    return ("This reset was already made and cannot be undone; its temporary password has been discarded unrevealed "
            "(nobody can reveal it now), and the thread says so.")


def withdrawn_while_revealing(actor: str, *, denied: bool) -> str:
    """A Cancel or Deny that came while the requester's Reveal was opening: the password is on their screen."""
    verb = "denied" if denied else "cancelled"
    return (f":warning: <@{actor}> {verb} this request while its temporary password was being revealed: it was "
            "already on its way to the screen and cannot be taken back, so treat the password as read. If it must "
            "not be used, make a new, verified request for this person.")


def withdrawn_while_revealing_answer() -> str:
    return ("A reveal of this reset's temporary password was under way when you pressed this, so it cannot be taken "
            "back: treat it as read. The thread says so.")


def reveal_failed_then_discarded() -> str:
    return ("The reveal that was under way did not open after all, and this request has since been disowned or called "
            "off: the temporary password was discarded unrevealed, and nobody can reveal it now.")


def disowned_while_revealing() -> str:
    return (":warning: A reveal of the temporary password was under way when the user said they did not ask for "
            "this reset: treat the password as read. Security has been told.")


def secret_discarded_withheld(reason: str, name: str) -> str:
    """Said with the verdict of a reset whose password nobody may read (``reason``: ``target_said_no`` or
    ``withdrawn``)."""
    why = ("the user said they did not ask for this reset" if reason == "target_said_no"
           else "this request was called off while its reset ran")
    return (f"The temporary password was discarded unrevealed: {why}, so nobody may read it. If {esc(name)} still "
            "needs a reset, make a new, verified request.")


def reveal_refused_withdrawn(name: str) -> str:
    return (f"This request was called off while its reset ran, so {esc(name)}'s temporary password was discarded "
            "unrevealed: nobody may see it. If they still need a reset, make a new, verified request.")


def reveal_gone() -> str:
    return ("This temporary password was already revealed, or its 10 minutes have passed: it is gone. Start a new "
            "reset if it's still needed.")


def tap_unshown_after_stop(name: str) -> str:
    """Recovery's verdict for a TAP Entra issued before the bot stopped: it died with the process, unshown."""
    return (f":grey_question: Entra issued a Temporary Access Pass for {esc(name)}, but resetbot stopped before anyone "
            "was shown it, and it cannot be shown now: the bot deletes it in Entra (the next line here says whether "
            f"it could). If {esc(name)} still needs one, make a new request.")


def reset_still_running(name: str) -> str:
    return (f":hourglass_flowing_sand: Entra is still working on the reset of {esc(name)}'s password. I'll keep "
            "asking "
            "and say here how it ends.")


def reveal_not_shown(error: str) -> str:
    return (f"Slack did not open the window with the temporary password ({error}), so it is still sealed: press "
            "Reveal again.")


def reveal_unsealable() -> str:
    return ("I could not unseal the temporary password on this replica of the bot (its replicas do not share one "
            "RESETBOT_SEALING_KEY: tell whoever runs resetbot). It is still sealed: press Reveal again.")


def reveal_in_progress() -> str:
    return ("The temporary password is being shown to you in another window right now. If none opened, press "
            "Reveal again in two minutes.")


def secret_wiped() -> str:
    return "The temporary password was never revealed and has been wiped (10 minutes passed). Nothing else changed."


def target_reset_notice_text(req: ResetRequest) -> str:
    if req.tap:
        return f"The helpdesk issued a Temporary Access Pass for your account ({req.id})."
    return f"Your password was reset by the helpdesk ({req.id})."


def only_target_reveals(target: str) -> str:
    return (f"The temporary password is sealed until <@{target}> reveals it from their DM with the bot; the helpdesk "
            "never sees it.")


def target_reset_notice_blocks(req: ResetRequest, *, reveal: bool = False) -> Blocks:
    """The target's DM after a reset: "This wasn't me", and (``RESETBOT_DELIVERY=target``) their Reveal button."""
    if reveal:
        text = (f"Your password was reset by the helpdesk: <@{req.requester}> asked for it ({req.id}). Press *Reveal* "
                "to see your temporary password (once, within 10 minutes); you will choose a new one at your next "
                "sign-in. If you did not ask for this, tell us:")
        return [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "block_id": Block.NOT_ME_ACTIONS, "elements": [
                button("Reveal my temporary password", Action.REVEAL, req.id, style="primary"),
                button("This wasn't me", Action.NOT_ME, req.id, style="danger")]},
        ]
    if req.tap:
        text = (f"The helpdesk issued a Temporary Access Pass for your account: <@{req.requester}> asked for it "
                f"({req.id}). It signs you in once. If you did not ask for this, tell us:")
    else:
        text = (f"Your password was reset by the helpdesk: <@{req.requester}> asked for it ({req.id}). You will be "
                "asked to choose a new one at your next sign-in. If you did not ask for this, tell us:")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": Block.NOT_ME_ACTIONS, "elements": [
            button("This wasn't me", Action.NOT_ME, req.id, style="danger")]},
    ]


def not_me_answered() -> str:
    return "Thanks for telling us: security has been alerted and will contact you."


def disowned_what_changed(req: ResetRequest) -> str:
    """What a disowned request changed: a TAP request changed no password, and must never be said to have."""
    return ("No password was changed, but a Temporary Access Pass was issued." if req.tap
            else "Their password WAS changed.")


def security_reset_disowned(req: ResetRequest) -> str:
    what = "Temporary Access Pass" if req.tap else "password reset"
    return (f":rotating_light: {esc(req.target_display)} (`{esc(req.target_upn)}`) says the {what} {req.id}, "
            f"requested by <@{req.requester}>, was not asked for by them. {disowned_what_changed(req)}")


def disowned_password_discarded() -> str:
    return ("The temporary password was discarded before anyone revealed it: nobody can reveal it now. If the "
            "person still needs a reset, make a new, verified request.")


def target_cannot_reveal(name: str, upn: str) -> str:
    return (f"{esc(name)} (`{esc(upn)}`) has no Slack account the bot can match, and here only the person whose "
            "password it is may reveal it (RESETBOT_DELIVERY=target), so nobody could read the new one. Nothing was "
            "requested: ask them to use self-service password reset, or ask whoever runs resetbot.")
