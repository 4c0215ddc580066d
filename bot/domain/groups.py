"""The Slack user groups that hold authority (agents, approvers): naming them, and reading what Slack shows of
who changed them. Pure functions.

Why ids: a handle (``@helpdesk``) belongs to whichever group holds it now. Where members may change user groups
(Slack's default), anyone can rename the real group's handle away and create a group of their own under it, and a
bot that looks groups up by handle then takes its agents from that group. An id (``S0123ABCD``) never moves to
another group, so the settings accept one, and a handle is resolved to an id once, at start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


def is_group_id(ref: str) -> bool:
    """``S0123ABCD`` is a group's id; a handle is lower-case (Slack lower-cases them), so it never looks like one."""
    return bool(_GROUP_ID.match(ref))


def group_ref(setting: str) -> str:
    """A group as a setting names it: its id, or its handle with or without the ``@``."""
    return setting.strip().removeprefix("@")


@dataclass(frozen=True)
class GroupFacts:
    """One user group as ``usergroups.list`` shows it."""

    id: str
    handle: str
    created_by: str | None = None
    updated_by: str | None = None


def find_group(ref: str, groups: Iterable[GroupFacts]) -> GroupFacts | None:
    """The group ``ref`` names: by id when it is one, else by its handle now."""
    key = group_ref(ref)
    return next((g for g in groups if (g.id if is_group_id(key) else g.handle) == key), None)


def changed_by_a_member(group: GroupFacts, is_admin: Callable[[str], bool]) -> str | None:
    """Who, of the last person to change the group and the one who created it, is not a workspace admin (the
    first such), or None. Slack shows apps no workspace setting for who may change user groups; a change made by
    a member is the one proof the bot can see that members may."""
    for user in dict.fromkeys(u for u in (group.updated_by, group.created_by) if u):
        if not is_admin(user):
            return user
    return None
