from __future__ import annotations

import os
import struct
import time
import uuid
from pathlib import Path

import pytest

from bot.clients.ad_acl import dacl
from lab.ad.acl import sid_to_bytes, with_read_denied
from lab.ad.dc import TEMPLATE_KEEP_S, _unused_for
from lab.ad.samba import require_samba
from lab.errors import LabError


def test_missing_samba_is_one_sentence_with_the_install_command() -> None:
    with pytest.raises(LabError, match=r"apt-get install -y samba samba-ad-dc"):
        require_samba(search_path="/nonexistent")


def test_a_read_denied_ace_goes_first_and_keeps_every_ace_after_it() -> None:
    """lab.ad.acl builds what bot.clients.ad_acl (the product's own DACL reader) reads back: the deny first."""
    everyone = sid_to_bytes("S-1-1-0")
    allow = struct.pack("<BBHI", 0x00, 0, 8 + len(everyone), 0x10) + everyone  # ACCESS_ALLOWED: read property
    descriptor = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + struct.pack("<BBHHH", 2, 0, 8 + len(allow), 1,
                                                                                    0) + allow
    guid = uuid.UUID("c523e9c0-33b5-4ac8-8923-b57b927f42f6")
    trustee = "S-1-5-21-2786049656-3488614840-3723550556-1116"
    first, second = dacl(with_read_denied(descriptor, trustee_sid=trustee, attribute_guid=guid))
    assert (first.type, first.mask, first.sid, first.object_type) == (0x06, 0x10, trustee, str(guid))
    assert not first.allows
    assert (second.sid, second.raw) == ("S-1-1-0", allow)


def test_a_template_another_checkout_used_recently_is_kept_when_a_new_key_is_built(tmp_path: Path) -> None:
    """Two checkouts side by side (another branch: another template key) share the cache: building one key's
    template must not delete the other's while that checkout may be copying it."""
    fresh, old = tmp_path / "samba-template-a", tmp_path / "samba-template-b"
    abandoned = tmp_path / "samba-template-c.partial"
    for folder in (fresh, old, abandoned):
        folder.mkdir()
    (fresh / "READY").write_text("now\n")
    (old / "READY").write_text("long ago\n")
    long_ago = time.time() - TEMPLATE_KEEP_S - 60
    os.utime(old / "READY", (long_ago, long_ago))
    assert not _unused_for(fresh, TEMPLATE_KEEP_S)
    assert _unused_for(old, TEMPLATE_KEEP_S)
    assert _unused_for(abandoned, TEMPLATE_KEEP_S)
