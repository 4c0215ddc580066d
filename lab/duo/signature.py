"""Duo's request signature, checked the way Duo's Auth API checks it.

Duo documents the canonical request its clients sign (HMAC with the integration's secret key, sent as HTTP Basic
``ikey:hexdigest``): version 2 signs ``date, METHOD, host, path, params`` (HMAC-SHA1 or SHA-512) with parameters in
the query or a form body; versions 4 and 5 (HMAC-SHA512, duo-client's default) add the SHA-512 of the body, which
carries the parameters as JSON for POST, and version 5 the SHA-512 of the ``X-Duo-*`` headers. Parameters are
canonicalised as in OAuth 1.0: percent-encoded with ``~`` left alone, sorted by key then value, joined with ``&``.
The host signed is the API hostname the client was given (no port). A request that matches no version is refused;
the lab never accepts an unsigned or wrongly signed request.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: How far a request's Date may be from the server's clock (Duo refuses stale signatures).
MAX_SKEW_S = 300.0


def canon_params(params: Mapping[str, Sequence[str]]) -> str:
    args: list[str] = []
    for key, vals in sorted((urllib.parse.quote(k, "~"), v) for k, v in params.items()):
        for val in sorted(urllib.parse.quote(v, "~") for v in vals):
            args.append(f"{key}={val}")
    return "&".join(args)


def canon_x_duo_headers(headers: Mapping[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-duo-")}
    parts: list[str] = []
    for name in sorted(lowered):
        parts.extend([name, lowered[name]])
    return hashlib.sha512("\x00".join(parts).encode()).hexdigest()


def canonical(version: int, *, date: str, method: str, host: str, path: str, params: Mapping[str, Sequence[str]],
              body: bytes, headers: Mapping[str, str]) -> str:
    head = [date, method.upper(), host.lower(), path, canon_params(params)]
    if version == 2:
        return "\n".join(head)
    head.append(hashlib.sha512(body).hexdigest())
    if version == 5:
        head.append(canon_x_duo_headers(headers))
    return "\n".join(head)


@dataclass(frozen=True)
class Credentials:
    ikey: str
    sig: str


def parse_authorization(value: str | None) -> Credentials | None:
    if not value or not value.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(value[len("Basic "):], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    ikey, sep, sig = raw.partition(":")
    return Credentials(ikey, sig) if sep and ikey and sig else None


def date_is_fresh(date: str | None, now: float) -> bool:
    if not date:
        return False
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return False
    return abs(when.timestamp() - now) <= MAX_SKEW_S


def verified_version(creds: Credentials, skey: str, *, date: str, method: str, host: str, path: str,
                     params: Mapping[str, Sequence[str]], body: bytes, headers: Mapping[str, str],
                     versions: Sequence[int]) -> int | None:
    """The signature version (of ``versions``) the request was signed with, or None when none matches.

    The caller names the versions the request's shape allows: a JSON body is versions 4 and 5 (parameters signed
    as the body's hash), a form body is version 2 (parameters signed themselves), a query is any of them.
    """
    for version in versions:
        digests = (hashlib.sha512,) if version != 2 else (hashlib.sha512, hashlib.sha1)
        text = canonical(version, date=date, method=method, host=host, path=path, params=params,
                         body=body if version != 2 else b"", headers=headers).encode()
        for digest in digests:
            expected = hmac.new(skey.encode(), text, digest).hexdigest()
            if hmac.compare_digest(expected, creds.sig):
                return version
    return None
