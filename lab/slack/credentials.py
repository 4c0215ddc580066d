"""The secrets of one stand-in run: the tokens the Web API accepts, the secret HTTP delivery signs with and
the verification token the payloads carry.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from .ids import APP_ID


@dataclass(frozen=True)
class Credentials:
    """Secrets of one stand-in run: fresh random values every start, shaped like Slack's."""

    bot_token: str
    app_token: str
    signing_secret: str
    verification_token: str

    @classmethod
    def generate(cls) -> Credentials:
        digits = "".join(secrets.choice(string.digits) for _ in range(13))
        alnum = string.ascii_letters + string.digits
        return cls(
            bot_token=f"xoxb-{digits}-{secrets.randbelow(10**13):013d}-"
                      + "".join(secrets.choice(alnum) for _ in range(24)),
            app_token=f"xapp-1-{APP_ID}-{secrets.randbelow(10**13):013d}-{secrets.token_hex(32)}",
            signing_secret=secrets.token_hex(16),
            verification_token="".join(secrets.choice(alnum) for _ in range(24)),
        )
