"""ldap3 connections to the lab DC, verified against the lab CA (never CERT_NONE)."""

from __future__ import annotations

import ssl
from pathlib import Path

import ldap3


def connect(bind: str, password: str, *, ca_file: Path, url: str) -> ldap3.Connection:
    """A bound connection; raises ldap3's LDAPBindError when AD refuses the credentials."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca_file), version=ssl.PROTOCOL_TLS_CLIENT)
    server = ldap3.Server(url, use_ssl=True, tls=tls, get_info=ldap3.NONE, connect_timeout=5)
    return ldap3.Connection(
        server, user=bind, password=password, auto_bind=True, raise_exceptions=False, receive_timeout=10
    )


def filetime_interval(minutes: float) -> int:
    """AD durations are negative counts of 100-ns intervals."""
    return -int(minutes * 60 * 10_000_000)
