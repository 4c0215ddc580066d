"""Help and usage: what ``/resetbot help`` says and what an unknown subcommand gets."""

from __future__ import annotations

from bot.ids import Command, ResetbotSubcommand
from bot.messages.format import esc

HELP_TEXT = "\n".join((
    "*resetbot* resets passwords in Entra ID and proves they reached Active Directory.",
    f"• `{Command.RESET} <user> [reason…] [--unlock] [--tap] [--revoke-sessions]`: request a reset; an approver "
    "approves it in the thread.",
    f"• `{Command.RESET_STATUS} [request-id | user]`: where a request stands, with its timeline.",
    f"• `{Command.RESETBOT} {ResetbotSubcommand.LOGIN} | {ResetbotSubcommand.LOGOUT} | "
    f"{ResetbotSubcommand.WHOAMI}`: link your own Entra account (`--browser` to sign in in your browser), or see or "
    "remove the link.",
    f"• `{Command.RESETBOT} {ResetbotSubcommand.HEALTH}`: is writeback working right now.",
    "A user is an @mention, an email address, a UPN or a sAMAccountName.",
))

RESET_USAGE = (f"Type `{Command.RESET} @user [reason] [--unlock] [--tap] [--revoke-sessions]`, "
               f"for example `{Command.RESET} @alice locked out`.")


def help_text() -> str:
    return HELP_TEXT


def unknown_subcommand(word: str) -> str:
    choices = ", ".join(f"`{s}`" for s in ResetbotSubcommand)
    return f"`{Command.RESETBOT} {esc(word)}` is not a command I know; try one of {choices}."


def not_available_yet(subcommand: str) -> str:
    return f"`{Command.RESETBOT} {subcommand}` is not available in this version of resetbot yet."
