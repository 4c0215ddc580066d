"""What Slack makes of the text a person types after a slash command, before the app sees it.

Why this exists: an app only ever sees Slack's *wire form* of what was typed, and the lab must deliver exactly
that, or the bot's parser and its escaping are tested against text no Slack would send. The facts, from Slack's
docs ("Enabling interactivity with slash commands", "Formatting text for app surfaces", "Basic message
formatting"):

- All text in Slack uses one escaping: ``&``, ``<`` and ``>`` are control characters, so the ones a person types
  arrive as ``&amp;``, ``&lt;`` and ``&gt;`` (a typed ``<!channel>`` is the text ``&lt;!channel&gt;``, never a
  mention of the channel). The lab applies this to every command, with or without ``should_escape``.
- With *Escape channels, users, and links sent to your app* (``should_escape: true`` in the manifest), Slack
  "will wrap URLs in angle brackets and translate channel or user mentions into their correlated IDs":
  ``@bob`` → ``<@U0000BOB|bob>``, ``#security`` → ``<#C0SECURITY|security>``, ``https://x`` → ``<https://x>``,
  a link made with the composer's link tool → ``<https://x|its text>``, an address → ``<mailto:a@b.c|a@b.c>``,
  ``@channel`` / ``@here`` / ``@everyone`` → ``<!channel>`` / ``<!here>`` / ``<!everyone>``, a user group's
  ``@handle`` → ``<!subteam^S…|@handle>``. (Slack's page shows the bare ``<@U…>`` form in one example; the bot
  accepts both.) Without it "the payload will repeat the plain text" (still escaped as above).
- ``should_escape`` is read per command from ``manifest.yml``, as Slack reads it from the installed app's
  configuration; a command the manifest does not list (the stand-in's own tests use some) has it off, Slack's
  default.

What ``text`` means in ``POST /control/command``: the characters the person typed, where ``@name`` (a member's
Slack name, i.e. the fixture key), ``#name``, ``@channel``, a group's ``@handle``, URLs and addresses are what
Slack's composer recognises, and ``[text](https://…)`` stands for a link made with the composer's link tool
(text shown, URL behind it). A mention already in wire form, ``<@U…>`` or ``<@U…|name>`` naming a member, counts as
a mention picked from the autocomplete (the form tests written before this module use); anything else between
``<`` and ``>`` is typed text and is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

import yaml

from .faults import MANIFEST
from .records import Channel, User

_TRAILING = ".,;:!?)'\""
_TOKEN = re.compile(
    r"(?P<wire><@(?P<wid>[UW][A-Z0-9]+)(?:\|[^<>]*)?>)"
    r"|(?P<link>\[(?P<ltext>[^\]\n]+)\]\((?P<lurl>https?://[^\s)]+)\))"
    r"|(?P<url>(?:https?://|www\.)[^\s<>]+)"
    r"|(?P<email>[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})"
    r"|(?<![\w@])@(?P<at>[A-Za-z0-9._\-]+)"
    r"|(?<![\w#])#(?P<hash>[a-z0-9_\-]+)"
)
_BROADCASTS = ("channel", "here", "everyone")


@cache
def should_escape(command: str) -> bool:
    """The manifest's ``should_escape`` for ``command`` (off for a command it does not list, as in Slack)."""
    data = yaml.safe_load(MANIFEST.read_text())
    for entry in (data.get("features") or {}).get("slash_commands") or []:
        if entry.get("command") == command:
            return bool(entry.get("should_escape", False))
    return False


def escape(text: str) -> str:
    """Slack's escaping of typed characters: exactly ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Composer:
    """Turns typed text into the ``text`` of a slash-command payload, looking names up in the workspace."""

    def __init__(self, *, user: Callable[[str], User | None], channel_named: Callable[[str], Channel | None],
                 group_by_handle: Callable[[str], str | None]) -> None:
        self._user = user
        self._channel_named = channel_named
        self._group_by_handle = group_by_handle

    def command_text(self, typed: str, *, escape_entities: bool) -> str:
        out: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(typed):
            out.append(escape(typed[pos:m.start()]))
            wire, rest = self._entity(m, escape_entities)
            out.append(wire)
            out.append(escape(rest))
            pos = m.end()
        out.append(escape(typed[pos:]))
        return "".join(out)

    def _entity(self, m: re.Match[str], on: bool) -> tuple[str, str]:
        """(what Slack sends for the token, typed text after it that belongs to the sentence, not the token)."""
        token = m.group(0)
        if m.group("wire"):
            user = self._user(m.group("wid"))
            if user is None or user.is_bot:
                return escape(token), ""
            return (f"<@{user.id}|{user.name}>" if on else f"@{user.name}"), ""
        if m.group("link"):
            text, url = m.group("ltext"), m.group("lurl")
            return (f"<{escape(url)}|{escape(text)}>" if on else escape(text)), ""
        if m.group("url"):
            url = token.rstrip(_TRAILING)
            rest = token[len(url):]
            if not on:
                return escape(url), rest
            full = url if "://" in url else f"http://{url}"
            return (f"<{escape(full)}>" if full == url else f"<{escape(full)}|{escape(url)}>"), rest
        if m.group("email"):
            return (f"<mailto:{escape(token)}|{escape(token)}>" if on else escape(token)), ""
        if name := m.group("at"):
            return self._mention(name, on)
        if name := m.group("hash"):
            channel = self._channel_named(name)
            if channel is None or not on:
                return escape(token), ""
            return f"<#{channel.id}|{channel.name}>", ""
        return escape(token), ""

    def _mention(self, name: str, on: bool) -> tuple[str, str]:
        word = name.rstrip(_TRAILING)
        rest = name[len(word):]
        if not on:
            return escape(f"@{word}"), rest
        if word.lower() in _BROADCASTS:
            return f"<!{word.lower()}>", rest
        user = self._user(word)
        if user is not None and not user.is_bot and user.id != word:
            return f"<@{user.id}|{user.name}>", rest
        gid = self._group_by_handle(word)
        if gid is not None:
            return f"<!subteam^{gid}|@{word}>", rest
        return escape(f"@{word}"), rest
