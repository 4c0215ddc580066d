"""Cloud-side password checks and the password history the stand-in must keep itself.

Entra checks a new password against its banned-password list before anything goes to the writeback agent,
and cloud-only users against the cloud's complexity rule. Every on-prem rule is AD's, except history on an
admin reset: Entra Connect gets it from the policy-hints control, which Samba lacks, so the stand-in keeps
salted hashes of the passwords it set (never the passwords) and refuses a repeat the way the control would.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field

from lab.entra import config

_LEET = str.maketrans({"0": "o", "1": "l", "!": "i", "$": "s", "@": "a", "3": "e", "4": "a", "5": "s", "7": "t"})
_PBKDF2_ROUNDS = 20_000  # enough for a lab; keeps 24 comparisons well under a second


def banned_word(password: str) -> bool:
    """Whether Password Protection refuses ``password``: lower-cased and with common substitutions undone
    (``P@ssw0rd`` is ``password``), does it contain a banned word? (Microsoft's scoring is subtler.)"""
    normal = password.lower().translate(_LEET)
    return any(word in normal or word in password.lower() for word in config.CLOUD_BANNED_WORDS)


def cloud_complex_enough(password: str) -> bool:
    """Entra's rule for cloud-only users: 8-256 characters, 3 of upper, lower, digit, symbol."""
    if not config.CLOUD_MIN_LENGTH <= len(password) <= config.CLOUD_MAX_LENGTH:
        return False
    classes = (
        any(c.isupper() for c in password),
        any(c.islower() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    return sum(classes) >= 3


def generate_cloud_password() -> str:
    """What the service generates when resetPassword gets no newPassword for a cloud-only user."""
    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(12)) + secrets.choice("!#%+-=")
        if cloud_complex_enough(candidate) and not banned_word(candidate):
            return candidate


@dataclass(frozen=True)
class _Hashed:
    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, password: str) -> _Hashed:
        salt = secrets.token_bytes(16)
        return cls(salt, hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS))

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(
            self.digest, hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, _PBKDF2_ROUNDS)
        )


@dataclass
class PasswordHistory:
    """Per user, newest first: the current password and the ones before it (as salted hashes)."""

    _by_user: dict[str, list[_Hashed]] = field(default_factory=dict)

    def seed(self, user: str, password: str) -> None:
        """The password the user has at start (the fixture's), as AD's history would hold it."""
        self._by_user[user] = [_Hashed.of(password)]

    def in_history(self, user: str, password: str, length: int) -> bool:
        """Whether ``password`` is one of the last ``length`` passwords (AD counts the current one)."""
        return any(h.matches(password) for h in self._by_user.get(user, [])[:length])

    def record(self, user: str, password: str) -> None:
        entries = self._by_user.setdefault(user, [])
        entries.insert(0, _Hashed.of(password))
        del entries[1024:]  # AD's maximum pwdHistoryLength

    def forget(self) -> None:
        self._by_user.clear()
