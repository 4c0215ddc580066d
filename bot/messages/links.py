"""Linking an Entra account: ``/resetbot login | logout | whoami``, and what an agent is told before a reset
about whose hands it is made by. The sign-in code reaches these builders only to be put in the agent's DM;
never a token.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from bot.ids import Command, ResetbotSubcommand
from bot.messages.format import esc, listed, slack_date

LOGIN = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN}`"
LOGIN_SERVICE = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN} --service`"
LOGIN_BROWSER = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN} --browser`"
LOGIN_SERVICE_BROWSER = f"`{Command.RESETBOT} {ResetbotSubcommand.LOGIN} --service --browser`"


def _roles_phrase(roles: Sequence[str] | None) -> str:
    if roles is None:
        return "roles could not be read just now"
    return ", ".join(esc(r) for r in roles) if roles else "no Entra admin role"


def link_usage(subcommand: str) -> str:
    if subcommand == ResetbotSubcommand.WHOAMI:
        return f"`{Command.RESETBOT} {subcommand}` takes nothing after it."
    if subcommand == ResetbotSubcommand.LOGIN:
        return (f"`{Command.RESETBOT} {subcommand}` takes nothing after it, or `--browser` to sign in in your "
                "browser, or `--service` (and `--browser`) for the service identity (approvers only).")
    return (f"`{Command.RESETBOT} {subcommand}` takes nothing after it, or `--service` for the service identity "
            f"(approvers only).")


def link_not_an_agent(group: str) -> str:
    return (f"Only members of the @{group} user group link an Entra account to resetbot, since only they request "
            "resets.")


def link_service_not_an_approver(group: str | None) -> str:
    who = f"members of the @{group} user group" if group else "approvers (no approver group is configured)"
    return f"Only {who} can link or unlink the service identity."


def link_service_not_used() -> str:
    return (f"Resets here are made with each agent's own Entra account, so there is no service identity to link; "
            f"{LOGIN} links yours.")


def link_not_needed(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, so you don't need to link your own "
            f"account. An approver links the service identity with {LOGIN_SERVICE}.")


def login_already_waiting(expires_at: datetime, *, service: bool) -> str:
    whose = "A sign-in for the service identity" if service else "Your sign-in from before"
    return (f"{whose} is still waiting: use the code in the DM I sent, before {slack_date(expires_at)}, or let it "
            "run out and start again.")


def login_code_sent(expires_at: datetime) -> str:
    return (f"I've sent you a sign-in code in a DM; it works until {slack_date(expires_at)}. I'll tell you there "
            "when the account is linked.")


def login_code_dm(user_code: str, verification_uri: str, expires_at: datetime, *, sign_in_as: str | None,
                  service: bool) -> str:
    account = f"`{esc(sign_in_as)}`" if sign_in_as else "your own account"
    what = (f"link the service identity {account} to resetbot: every reset will be made as that account"
            if service else "link your Entra account to resetbot: resets you ask for will be made as you")
    return (f"To {what}. Open {verification_uri} and enter the code *{user_code}*, then sign in as {account}. "
            f"The code works until {slack_date(expires_at)}. Never pass it on to anyone: whoever signs in with it "
            "would be linked to your request. If you didn't ask for this, ignore this message.")


def login_link_sent(expires_at: datetime) -> str:
    return (f"I've sent you a sign-in link in a DM; it works once, until {slack_date(expires_at)}. I'll tell you "
            "there when the account is linked.")


def login_link_dm(auth_uri: str, expires_at: datetime, *, sign_in_as: str | None, service: bool) -> str:
    """The browser sign-in's link: Microsoft's own page, which sends the browser back to resetbot."""
    account = f"`{esc(sign_in_as)}`" if sign_in_as else "your own account"
    what = (f"link the service identity {account} to resetbot: every reset will be made as that account"
            if service else "link your Entra account to resetbot: resets you ask for will be made as you")
    return (f"To {what}, open <{auth_uri}|this Microsoft sign-in page> and sign in as {account}. The link works "
            f"once, until {slack_date(expires_at)}. Never pass it on to anyone: whoever signs in with it would be "
            "linked to your request. If you didn't ask for this, ignore this message.")


def browser_sign_in_off() -> str:
    return (f"Signing in in the browser isn't turned on here, so {LOGIN} uses a sign-in code. Whoever runs "
            "resetbot turns it on with RESETBOT_SIGNIN=both.")


def device_code_blocked(*, browser_allowed: bool, service: bool) -> str:
    """Conditional Access refused the device-code sign-in: not a failure to retry, a flow to switch from."""
    if browser_allowed:
        again = _again(service=service, browser=True)
        return (f"Your organisation blocks signing in with a code (Conditional Access), so nothing was linked. Run "
                f"{again} to sign in in your browser instead.")
    return ("Your organisation blocks signing in with a code (Conditional Access), so nothing was linked. Ask "
            "whoever runs resetbot to turn on browser sign-in (RESETBOT_SIGNIN=both), then run "
            f"{LOGIN_BROWSER}.")


def browser_link_expired(*, service: bool) -> str:
    again = _again(service=service, browser=True)
    return (f"Your sign-in came back after its link had run out, so nothing was linked. Run {again} for a new "
            "link.")


def browser_link_reused(*, service: bool) -> str:
    again = _again(service=service, browser=True)
    return (f"A sign-in link of yours came back after it had been used or replaced by a newer one (a reloaded page, "
            f"an older DM, or someone replaying it). A link works once, so this did nothing. If you still need to "
            f"link, run {again}.")


def callback_page(kind: str, reference: str) -> tuple[str, str]:
    """(title, sentence) of the page the browser lands on after Microsoft's sign-in. It never repeats anything
    from the request (no reflection), and it says nothing of the result: that goes to the agent's Slack DM."""
    again = LOGIN_BROWSER
    pages = {
        "done": ("Sign-in finished", "You can close this page and go back to Slack: resetbot tells you there "
                 "whether your account was linked."),
        "stale": ("This sign-in link did nothing", f"The link was already used or has run out. Run {again} in Slack "
                  "for a new one."),
        "invalid": ("Not a resetbot sign-in", f"This page only finishes a sign-in started with {again} in Slack, "
                    "and this request is not one."),
        "unavailable": ("Try again in a minute", "resetbot could not finish the sign-in just now. Go back to "
                        f"Slack and run {again} again in a minute."),
    }
    title, sentence = pages[kind]
    return title, f"{sentence.replace('`', '')} (reference {reference})"


def callback_html(kind: str, reference: str) -> str:
    title, sentence = callback_page(kind, reference)
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>resetbot: "
            f"{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1><p>{html.escape(sentence)}</p>"
            "</body></html>")


def linked(upn: str, roles: Sequence[str] | None, *, service: bool, can_reset_anyone: bool) -> str:
    who = "The service identity is" if service else "Your Entra account is"
    made = "every reset is made as this account" if service else "resets you ask for are made as this account"
    sentence = f"{who} linked as {esc(upn)} (roles: {_roles_phrase(roles)}); {made}."
    if roles is not None and not can_reset_anyone:
        sentence += (" It holds no Entra role that may reset passwords, so Microsoft will refuse its resets until "
                     "it gets one (Helpdesk Administrator or Password Administrator, for example).")
    return sentence


def _again(*, service: bool, browser: bool) -> str:
    """The command that starts the same kind of sign-in again."""
    if browser:
        return LOGIN_SERVICE_BROWSER if service else LOGIN_BROWSER
    return LOGIN_SERVICE if service else LOGIN


def link_declined(*, service: bool, browser: bool = False) -> str:
    again = _again(service=service, browser=browser)
    return f"The Microsoft sign-in was declined, so nothing was linked. Run {again} to try again."


def link_expired(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"The sign-in code ran out before anyone used it, so nothing was linked. Run {again} for a new one."


def link_interrupted(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"resetbot restarted while your sign-in was waiting, so nothing was linked. Run {again} again."


def link_failed(reason: str, correlation_id: str, *, service: bool, browser: bool = False) -> str:
    again = _again(service=service, browser=browser)
    return f"The sign-in did not link anything: {reason} Run {again} to try again (reference {correlation_id})."


def link_wrong_account(signed_in: str, expected: str, *, service: bool, security_told: bool,
                       browser: bool = False) -> str:
    signed_in, expected = esc(signed_in), esc(expected)
    told = " and security has been told" if security_told else ""
    again = _again(service=service, browser=browser)
    if service:
        return (f"That sign-in was completed as {signed_in}, not as the service identity {expected}, so nothing was "
                f"linked{told}. Run {again} again and sign in as {expected}.")
    what = "link" if browser else "code"
    return (f"That sign-in was completed as {signed_in}, which isn't your own account ({expected}), so nothing was "
            f"linked{told}. Run {again} again and sign in as yourself; never pass a sign-in {what} on to anyone.")


def link_no_email(signed_in: str) -> str:
    return (f"Your Slack profile shows no email address, so I can't tell whether {esc(signed_in)} is your own account; "
            "nothing was linked. Ask a Slack admin to show your email address, then try again.")


def security_link_mismatch(slack_user: str, signed_in: str, expected: str, *, service: bool) -> str:
    asked = f"<@{slack_user}> ran {LOGIN_SERVICE}" if service else f"<@{slack_user}> ran {LOGIN}"
    signed_in, expected = esc(signed_in), esc(expected)
    return (f":rotating_light: {asked}, but the Microsoft sign-in was completed as `{signed_in}` instead of "
            f"`{expected}`. Nothing was linked. A sign-in code completed by someone else can mean phishing: check "
            f"with <@{slack_user}> and with `{signed_in}`.")


def not_linked() -> str:
    return f"You haven't linked your Entra account yet, and resets you ask for are made as you: run {LOGIN} first."


def service_not_linked(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, which isn't linked yet: an approver has "
            f"to run {LOGIN_SERVICE} first.")


def link_reauth(upn: str, *, service: bool) -> str:
    if service:
        return (f"The service identity's sign-in ({esc(upn)}) can no longer be used (it expired or was revoked): an "
                f"approver has to run {LOGIN_SERVICE} again.")
    return f"Your Entra sign-in ({esc(upn)}) can no longer be used (it expired or was revoked): run {LOGIN} again."


def role_too_weak(upn: str, caller_roles: Sequence[str], blocking: Sequence[str], needed: Sequence[str], *,
                  service: bool, tap: bool = False) -> str:
    """Why Entra would refuse this reset (``tap``: this Temporary Access Pass) to the acting account's roles."""
    who = f"The service identity {esc(upn)}" if service else f"Your Entra account {esc(upn)}"
    what = "create Temporary Access Passes" if tap else "reset passwords"
    holds = f"({', '.join(map(esc, caller_roles))})" if caller_roles else f"(no Entra role that may {what})"
    whom = f"someone who holds {listed([esc(r) for r in blocking], 'and')}" if blocking else "anyone"
    act = f"create a Temporary Access Pass for {whom}" if tap else f"reset the password of {whom}"
    return f"{who} {holds} can't {act}: that takes {listed([esc(r) for r in needed])}."


def may_not_revoke_sessions(upn: str, *, service: bool) -> str:
    """``--revoke-sessions`` asked of an account whose role may reset but not sign anyone out."""
    who = f"The service identity {esc(upn)}" if service else f"Your Entra account {esc(upn)}"
    return (f"{who} may reset this password but not revoke the user's sign-in sessions (`--revoke-sessions`): that "
            "takes Helpdesk, Authentication, User, Privileged Authentication or Global Administrator. Ask without "
            "it, or ask someone with one of those roles.")


def whoami_not_linked() -> str:
    return f"You haven't linked an Entra account. {LOGIN} links your own, through a Microsoft sign-in sent by DM."


def whoami_linked(upn: str, display_name: str, linked_at: datetime, roles: Sequence[str] | None,
                  token_state: str, *, service: bool) -> str:
    who = "The service identity is" if service else "You're"
    name = f" ({esc(display_name)})" if display_name and display_name != upn else ""
    return (f"{who} linked as {esc(upn)}{name} since {slack_date(linked_at)}. Entra roles: {_roles_phrase(roles)}. "
            f"{token_state}")


def token_works() -> str:
    return "A token comes silently right now."


def token_needs_login(*, service: bool) -> str:
    again = LOGIN_SERVICE if service else LOGIN
    return f"But the sign-in can no longer be used silently (expired or revoked): run {again} again."


def token_unknown(reason: str) -> str:
    return f"Whether a token comes silently can't be checked right now: {reason}"


def whoami_service_mode(service_upn: str) -> str:
    return (f"Resets here are made as the service identity `{service_upn}`, not as you; any link of your own is "
            "not used.")


def unlinked(upn: str, *, service: bool) -> str:
    who = "The service identity" if service else "Your Entra account"
    return (f"{who} {esc(upn)} is unlinked: resetbot has deleted its sign-in. To end the sign-in at Microsoft too, "
            "sign out of your sessions at https://myaccount.microsoft.com.")


def nothing_to_unlink(*, service: bool) -> str:
    return "The service identity isn't linked." if service else "You have no linked Entra account."
