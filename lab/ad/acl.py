"""Editing a DACL the way an AD admin would in "Advanced Security Settings", for tests that take a right away.

Only what the lab needs: put one explicit *deny read property* ACE in front of an object's DACL (explicit denies
come first in canonical order, so it wins over every allow), and put the original back afterwards.
Samba honours such an ACE for constructed attributes too (seen on 4.17: ``msDS-KeyVersionNumber`` comes back
empty to the denied account while the rest of the object reads as before).
"""

from __future__ import annotations

import struct
import uuid

#: ACCESS_DENIED_OBJECT_ACE_TYPE, ADS_RIGHT_DS_READ_PROP, ACE_OBJECT_TYPE_PRESENT, ACL_REVISION_DS (MS-DTYP).
_DENIED_OBJECT_ACE = 0x06
_READ_PROPERTY = 0x10
_OBJECT_TYPE_PRESENT = 0x1
_ACL_REVISION_DS = 4
#: A self-relative descriptor's header: revision, sbz1, control, then the owner, group, SACL and DACL offsets.
_HEADER = struct.Struct("<BBHIIII")
_ACL_HEADER = struct.Struct("<BBHHH")


def sid_to_bytes(sid: str) -> bytes:
    """``S-1-5-21-…`` as the binary SID an ACE carries."""
    parts = sid.split("-")
    if len(parts) < 3 or parts[0] != "S":
        raise ValueError(f"not a SID: {sid!r}")
    subs = [int(p) for p in parts[3:]]
    return (struct.pack("<BB", int(parts[1]), len(subs)) + int(parts[2]).to_bytes(6, "big")
            + b"".join(struct.pack("<I", s) for s in subs))


def with_read_denied(descriptor: bytes, *, trustee_sid: str, attribute_guid: uuid.UUID) -> bytes:
    """``descriptor`` (read with SD flags = DACL only) with a deny-read-``attribute`` ACE for the trustee first,
    as a DACL-only self-relative descriptor to write back with the same SD flags."""
    _, _, control, _, _, _, dacl_at = _HEADER.unpack_from(descriptor)
    revision, _, size, count, _ = _ACL_HEADER.unpack_from(descriptor, dacl_at)
    aces = descriptor[dacl_at + _ACL_HEADER.size: dacl_at + size]
    body = struct.pack("<II", _READ_PROPERTY, _OBJECT_TYPE_PRESENT) + attribute_guid.bytes_le + \
        sid_to_bytes(trustee_sid)
    ace = struct.pack("<BBH", _DENIED_OBJECT_ACE, 0, 4 + len(body)) + body
    acl = _ACL_HEADER.pack(max(revision, _ACL_REVISION_DS), 0, _ACL_HEADER.size + len(ace) + len(aces), count + 1,
                           0) + ace + aces
    return _HEADER.pack(1, 0, control, 0, 0, 0, _HEADER.size) + acl
