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


#: How old (seconds) a user group's member list may be, by what it decides. Slack sends the bot no word when a
#: group changes (it would need the ``subteam_members_changed`` event, and an event can be late or lost), so age
#: is the only bound, and the list costs a Tier 2 call (``usergroups.users.list``, about 20 a minute).
#:
#: A decision a person makes by clicking, that moves a reset forward or shows its password (approve, deny, the
#: target's Yes, Reveal, linking a sign-in): read for that click, never remembered. People click at human pace,
#: so this costs little, and someone taken out of the helpdesk or the approvers is refused from that moment.
#: Concurrent clicks share one read that began after each of them asked, so nothing older is ever used.
MEMBERS_FOR_A_DECISION_S = 0.0
#: A ``/reset`` (and ``/reset-status``'s lookup of anyone): a few seconds, so a burst of two hundred requests
#: costs one read per group every few seconds, not one each (which Slack would throttle). Safe because a request
#: only asks: nothing is changed until an approval, which reads the requester's membership again, now; an agent
#: taken out of the group in those seconds gets a request that cannot be approved. A remembered list only says
#: yes: a no is read again, so someone just added is not refused. The same list tells whether the target is one of
#: the bot's operators (protected): someone added in those seconds counts from the next read.
MEMBERS_FOR_A_REQUEST_S = 5.0
#: What is only shown (who may approve, in App Home): a minute.
MEMBERS_FOR_A_VIEW_S = 60.0
