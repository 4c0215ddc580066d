"""Follow-ups: did the reset land in AD, and did the user choose their own password."""

from __future__ import annotations

from datetime import datetime

from bot.messages.format import esc, slack_date


def _ad_time(at: datetime | None) -> str:
    return slack_date(at) if at is not None else "never"


def writeback_confirmed(name: str, *, must_change: bool, seen_at: datetime | None) -> str:
    if must_change:
        return (f":white_check_mark: Confirmed on-premises: Active Directory shows the reset of {esc(name)}'s "
                "password, with *must change at next sign-in* set.")
    return (f":white_check_mark: Confirmed on-premises: Active Directory shows the reset of {esc(name)}'s password "
            f"(password last set {_ad_time(seen_at)}).")


def writeback_without_must_change(name: str, *, seen_at: datetime | None) -> str:
    return (f":warning: The reset of {esc(name)}'s password reached Active Directory ({_ad_time(seen_at)}), but the "
            "account's *password never expires* flag keeps *must change at next sign-in* from applying on-premises: "
            f"the temporary password stays valid there until {esc(name)} changes it. Ask them to change it now, or "
            "clear the flag in AD.")


def writeback_must_change_missing(name: str, *, seen_at: datetime | None, maybe_own: bool) -> str:
    """The reset landed with a ``pwdLastSet`` instant on an account without "password never expires".
    ``maybe_own``: AD's password version was not readable, so that instant may be the user's own change."""
    if maybe_own:
        return (f":warning: The reset of {esc(name)}'s password reached Active Directory ({_ad_time(seen_at)}), but AD "
                f"does not show *must change at next sign-in*: either {esc(name)} has already chosen their own "
                "password, or must-change did not apply on-premises and the temporary password stays valid there until "
                "they change it. Ask them to change it if they have not.")
    return (f":warning: The reset of {esc(name)}'s password reached Active Directory ({_ad_time(seen_at)}), but "
            "*must change at next sign-in* did not apply on-premises: the temporary password stays valid there "
            f"until {esc(name)} changes it. Ask them to change it now, or set the flag in AD.")


def writeback_unproven(name: str, dn: str) -> str:
    """AD shows must-change, as it did before the reset: nothing tells this reset from an earlier one."""
    return (f":grey_question: Not confirmed on-premises: Active Directory shows *must change at next sign-in* on "
            f"`{esc(dn)}`, but it may have shown that before this reset too (an earlier temporary password never "
            "replaced), and the bot cannot tell this reset from that one: it needs to read the password's version "
            "(`msDS-KeyVersionNumber`) before and after the reset. Writeback may or may not have reached AD; ask "
            f"{esc(name)} to sign in with the new temporary password to be sure.")


def writeback_not_seen(name: str, *, waited: str, seen_at: datetime | None, reset_at: datetime, dn: str) -> str:
    return (f":warning: {waited} after the reset ({slack_date(reset_at)}), Active Directory still does not show it: "
            f"`{esc(dn)}` has its password last set {_ad_time(seen_at)}. Entra said the reset succeeded, so writeback "
            "may not have reached the domain controller the bot reads, or the writeback agent went offline. Check "
            f"Entra Connect's password writeback before {esc(name)} relies on the new password on-premises.")


def writeback_account_gone(name: str, dn: str) -> str:
    return (f":warning: The reset of {esc(name)}'s password could not be confirmed on-premises: the AD account "
            f"`{esc(dn)}` is no longer found.")


def password_replaced(name: str, *, at: datetime | None) -> str:
    return (f":lock: {esc(name)} has chosen their own password ({_ad_time(at)}): the temporary one no longer works. "
            "Follow-up done.")


def password_never_replaced(name: str, *, waited: str) -> str:
    return (f":hourglass: {waited} after the reset, {esc(name)} has still not replaced the temporary password; it "
            "keeps working until they do. No more reminders will be sent: call them, or reset again if the temporary "
            "password may have been seen by someone else.")


def replace_reminder(*, waited: str) -> str:
    return (f"Reminder: helpdesk reset your password {waited} ago and you haven't chosen your own yet. Sign in with "
            "the temporary password you were given and you'll be asked to choose a new one. If you didn't ask for "
            "this reset, press *This wasn't me* on the earlier message.")
