"""The DACL reader behind the doctor's writeback check, on descriptors built here byte by byte (MS-DTYP 2.4.6),
including the ones it must refuse or read as "not granted"."""

from __future__ import annotations

import struct
import uuid

import pytest

from bot.clients.ad_acl import (
    ADS_RIGHT_DS_CONTROL_ACCESS,
    ADS_RIGHT_DS_WRITE_PROP,
    ATTR_LOCKOUT_TIME,
    ATTR_PWD_LAST_SET,
    CLASS_USER,
    GENERIC_ALL,
    RESET_PASSWORD_RIGHT,
    DescriptorError,
    dacl,
    missing_rights,
)
from bot.services.doctor import token_roles

WRITEBACK = "S-1-5-21-1-2-3-1104"
OTHER = "S-1-5-21-1-2-3-1105"
CI, NO_PROPAGATE = 0x02, 0x04
GROUP_CLASS = "bf967a9c-0de6-11d0-a285-00aa003049e2"


def sid_bytes(sid: str) -> bytes:
    parts = [int(p) for p in sid.split("-")[1:]]
    revision, authority, subs = parts[0], parts[1], parts[2:]
    return bytes([revision, len(subs)]) + authority.to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def object_ace(sid: str, mask: int, object_type: str | None, *, flags: int = CI, deny: bool = False,
               inherited: str | None = CLASS_USER) -> bytes:
    present = (1 if object_type else 0) | (2 if inherited else 0)
    body = struct.pack("<II", mask, present)
    body += uuid.UUID(object_type).bytes_le if object_type else b""
    body += uuid.UUID(inherited).bytes_le if inherited else b""
    body += sid_bytes(sid)
    return struct.pack("<BBH", 0x06 if deny else 0x05, flags, 4 + len(body)) + body


def plain_ace(sid: str, mask: int, *, flags: int = CI) -> bytes:
    body = struct.pack("<I", mask) + sid_bytes(sid)
    return struct.pack("<BBH", 0x00, flags, 4 + len(body)) + body


def descriptor(*aces: bytes) -> bytes:
    body = b"".join(aces)
    acl = struct.pack("<BBHHH", 4, 0, 8 + len(body), len(aces), 0) + body
    return struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl


def delegated(sid: str = WRITEBACK, **kw: object) -> bytes:
    return descriptor(object_ace(sid, ADS_RIGHT_DS_CONTROL_ACCESS, RESET_PASSWORD_RIGHT, **kw),  # type: ignore[arg-type]
                      object_ace(sid, ADS_RIGHT_DS_WRITE_PROP, ATTR_PWD_LAST_SET, **kw),  # type: ignore[arg-type]
                      object_ace(sid, ADS_RIGHT_DS_WRITE_PROP, ATTR_LOCKOUT_TIME, **kw))  # type: ignore[arg-type]


ALL = ["Reset Password", "Write pwdLastSet", "Write lockoutTime"]


def test_entra_connects_delegation_is_enough() -> None:
    assert missing_rights([(delegated(), True)], frozenset({WRITEBACK})) == []


def test_someone_elses_delegation_is_not() -> None:
    assert missing_rights([(delegated(OTHER), True)], frozenset({WRITEBACK})) == ALL


def test_granted_to_a_group_the_account_is_in() -> None:
    assert missing_rights([(delegated(OTHER), True)], frozenset({WRITEBACK, OTHER})) == []


def test_full_control_on_a_grandparent_counts_unless_it_does_not_propagate() -> None:
    full = descriptor(plain_ace(WRITEBACK, GENERIC_ALL))
    assert missing_rights([(descriptor(), True), (full, False)], frozenset({WRITEBACK})) == []
    stopped = descriptor(plain_ace(WRITEBACK, GENERIC_ALL, flags=CI | NO_PROPAGATE))
    assert missing_rights([(descriptor(), True), (stopped, False)], frozenset({WRITEBACK})) == ALL


def test_not_inheritable_or_for_groups_only_grants_nothing_on_users() -> None:
    assert missing_rights([(delegated(flags=0), True)], frozenset({WRITEBACK})) == ALL
    assert missing_rights([(delegated(inherited=GROUP_CLASS), True)], frozenset({WRITEBACK})) == ALL


def test_a_deny_met_first_wins() -> None:
    deny = object_ace(WRITEBACK, ADS_RIGHT_DS_CONTROL_ACCESS, RESET_PASSWORD_RIGHT, deny=True)
    assert missing_rights([(descriptor(deny), True), (delegated(), False)], frozenset({WRITEBACK})) == \
        ["Reset Password"]


def test_a_descriptor_without_dacl_grants_nothing() -> None:
    assert dacl(struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)) == []


@pytest.mark.parametrize("raw", [b"", b"\x01\x00", descriptor(plain_ace(WRITEBACK, GENERIC_ALL))[:30],
                                 b"\x01\x00\x04\x80" + b"\x00" * 12 + struct.pack("<I", 4000)])
def test_truncated_or_garbage_descriptors_are_refused(raw: bytes) -> None:
    with pytest.raises(DescriptorError):
        dacl(raw)


@pytest.mark.parametrize(("token", "roles"), [
    ("not-a-jwt", None),
    ("a.!!!.c", None),
    ("a.bm90IGpzb24.c", None),  # "not json"
    ("a.eyJyb2xlcyI6ICJVc2VyLlJlYWQuQWxsIn0.c", []),  # roles not a list
    ("a.eyJyb2xlcyI6IFsiVXNlci5SZWFkLkFsbCJdfQ.c", ["User.Read.All"]),
])
def test_token_roles_of_odd_tokens(token: str, roles: list[str] | None) -> None:
    assert token_roles(token) == roles
