"""Just enough of Windows security descriptors (MS-DTYP 2.4.6, self-relative form) to answer one question:
does a DACL let an account reset passwords and write ``pwdLastSet`` / ``lockoutTime`` on user objects below it?

Why hand-written: ldap3 returns ``nTSecurityDescriptor`` as raw bytes, and the libraries that parse it
(impacket, Samba's own bindings) pull in whole protocol stacks or are not on PyPI. The format is small and
fixed: a 20-byte header, an ACL header, then ACEs; only the allow/deny ACEs (plain and object) matter here.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

#: Control-access right "Reset Password" (User-Force-Change-Password).
RESET_PASSWORD_RIGHT = "00299570-246d-11d0-a768-00aa006e0529"  # noqa: S105 - a right's GUID
#: schemaIDGUIDs of the attributes writeback writes besides the password, and of the user class.
ATTR_PWD_LAST_SET = "bf967a0a-0de6-11d0-a285-00aa003049e2"  # noqa: S105 - a schema GUID
ATTR_LOCKOUT_TIME = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
CLASS_USER = "bf967aba-0de6-11d0-a285-00aa003049e2"

ADS_RIGHT_DS_CONTROL_ACCESS = 0x100
ADS_RIGHT_DS_WRITE_PROP = 0x20
GENERIC_ALL = 0x10000000
GENERIC_WRITE = 0x40000000

_ALLOWED, _DENIED, _ALLOWED_OBJECT, _DENIED_OBJECT = 0x00, 0x01, 0x05, 0x06
_CONTAINER_INHERIT, _NO_PROPAGATE, _INHERIT_ONLY = 0x02, 0x04, 0x08
_OBJECT_TYPE_PRESENT, _INHERITED_OBJECT_TYPE_PRESENT = 0x1, 0x2

#: What writeback needs on each user object, as (access mask bit, object GUID).
WRITEBACK_RIGHTS: dict[str, tuple[int, str]] = {
    "Reset Password": (ADS_RIGHT_DS_CONTROL_ACCESS, RESET_PASSWORD_RIGHT),
    "Write pwdLastSet": (ADS_RIGHT_DS_WRITE_PROP, ATTR_PWD_LAST_SET),
    "Write lockoutTime": (ADS_RIGHT_DS_WRITE_PROP, ATTR_LOCKOUT_TIME),
}


class DescriptorError(ValueError):
    """The bytes are not a self-relative security descriptor."""


@dataclass(frozen=True)
class Ace:
    type: int
    flags: int
    mask: int
    sid: str
    object_type: str | None
    inherited_object_type: str | None
    raw: bytes

    @property
    def allows(self) -> bool:
        return self.type in (_ALLOWED, _ALLOWED_OBJECT)

    def reaches_children(self, *, direct_parent: bool) -> bool:
        """Whether the ACE is inherited by user objects one level (or, without no-propagate, more) below."""
        if not self.flags & _CONTAINER_INHERIT:
            return False
        if not direct_parent and self.flags & _NO_PROPAGATE:
            return False
        return self.inherited_object_type in (None, CLASS_USER)

    def covers(self, bit: int, guid: str) -> bool:
        if self.mask & (GENERIC_ALL | GENERIC_WRITE if bit == ADS_RIGHT_DS_WRITE_PROP else GENERIC_ALL):
            return True
        return bool(self.mask & bit) and self.object_type in (None, guid)


def sid_to_str(data: bytes) -> str:
    if len(data) < 8:
        raise DescriptorError("short SID")
    revision, count = data[0], data[1]
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", data, 8)
    return "S-" + "-".join(str(x) for x in (revision, authority, *subs))


def _sid_len(data: bytes, offset: int) -> int:
    return 8 + 4 * data[offset + 1]


def dacl(descriptor: bytes) -> list[Ace]:
    """The DACL's ACEs in order (empty when the descriptor has no DACL)."""
    try:
        (dacl_offset,) = struct.unpack_from("<I", descriptor, 16)
        if dacl_offset == 0:
            return []
        _rev, _sbz, _size, count, _sbz2 = struct.unpack_from("<BBHHH", descriptor, dacl_offset)
        aces, pos = [], dacl_offset + 8
        for _ in range(count):
            ace_type, flags, size = struct.unpack_from("<BBH", descriptor, pos)
            body = descriptor[pos + 4:pos + size]
            object_type = inherited = None
            if ace_type in (_ALLOWED, _DENIED):
                (mask,) = struct.unpack_from("<I", body, 0)
                sid_at = 4
            elif ace_type in (_ALLOWED_OBJECT, _DENIED_OBJECT):
                mask, present = struct.unpack_from("<II", body, 0)
                sid_at = 8
                if present & _OBJECT_TYPE_PRESENT:
                    object_type = str(uuid.UUID(bytes_le=bytes(body[sid_at:sid_at + 16])))
                    sid_at += 16
                if present & _INHERITED_OBJECT_TYPE_PRESENT:
                    inherited = str(uuid.UUID(bytes_le=bytes(body[sid_at:sid_at + 16])))
                    sid_at += 16
            else:  # audit, callback and other ACE types grant nothing
                pos += size
                continue
            sid = sid_to_str(bytes(body[sid_at:sid_at + _sid_len(body, sid_at)]))
            aces.append(Ace(ace_type, flags, mask, sid, object_type, inherited, bytes(descriptor[pos:pos + size])))
            pos += size
        return aces
    except (struct.error, IndexError) as e:
        raise DescriptorError(f"not a security descriptor ({e})") from None


def missing_rights(descriptors: Sequence[tuple[bytes, bool]], sids: frozenset[str]) -> list[str]:
    """Which of :data:`WRITEBACK_RIGHTS` no ACE grants any of ``sids`` on user objects below the containers whose
    descriptors are given (``(descriptor, is_direct_parent)``, nearest first). A deny ACE met first wins, as in
    AD's canonical order."""
    missing = []
    for name, (bit, guid) in WRITEBACK_RIGHTS.items():
        decided: bool | None = None
        for descriptor, direct in descriptors:
            for ace in dacl(descriptor):
                if ace.sid in sids and ace.reaches_children(direct_parent=direct) and ace.covers(bit, guid):
                    decided = ace.allows
                    break
            if decided is not None:
                break
        if not decided:
            missing.append(name)
    return missing
