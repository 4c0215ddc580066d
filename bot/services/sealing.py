"""Sealing a temporary password until its one reveal: Fernet (AES-128-CBC + HMAC) from cryptography.

With no key configured the key is made at start and lives only in this process's memory: the database then
never holds anything that can be decrypted once the bot stops, and a sealed password simply becomes
unrevealable after a restart (it would be wiped ten minutes later anyway). Several replicas need a shared
key (RESETBOT_SEALING_KEY) so that any of them can answer the Reveal click.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr


class Sealer:
    def __init__(self, key: SecretStr | None = None) -> None:
        self._fernet = Fernet(key.get_secret_value().encode() if key else Fernet.generate_key())

    def __repr__(self) -> str:
        return "Sealer()"

    def seal(self, secret: SecretStr) -> str:
        return self._fernet.encrypt(secret.get_secret_value().encode()).decode()

    def unseal(self, ciphertext: str) -> SecretStr | None:
        """The secret, or None when it was sealed with another key (another replica's, or before a restart)."""
        try:
            return SecretStr(self._fernet.decrypt(ciphertext.encode()).decode())
        except InvalidToken:
            return None
