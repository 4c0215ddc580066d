"""The bot's own app-only token for Graph (client credentials: a secret or a certificate), used for reads and
Temporary Access Passes, and the certificate credential itself.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr

from bot.clients.entra_auth.authority import _S_AUTHORITY, _check_authority, instance_discovery_for
from bot.clients.entra_auth.msal_errors import (
    _UNAVAILABLE_ERRORS,
    _aadsts,
    _fields,
    _unavailable_from,
    _unreadable_authority,
    msal_failures,
)
from bot.clients.http import DEFAULT_TIMEOUT_S
from bot.errors import ConfigError, EntraAuthError, EntraUnavailableError

# Named after the package, as before the split: every log line shows its logger's name.
log = logging.getLogger("bot.clients.entra_auth")

#: The app-only scope for Microsoft Graph (application permissions granted to the app registration).
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"

# Setting names the operator sees in sentences (the composition root builds these clients from Settings).
_S_CLIENT_ID = "RESETBOT_ENTRA_CLIENT_ID"
_S_SECRET = "RESETBOT_ENTRA_CLIENT_SECRET"  # noqa: S105 - a setting's name
_S_CERT = "RESETBOT_ENTRA_CERTIFICATE_FILE and RESETBOT_ENTRA_PRIVATE_KEY_FILE"


class TokenSource(Protocol):
    """Something that hands out a bearer token for Graph (the app's, here)."""

    def token(self) -> str: ...


# --- the app's certificate credential -------------------------------------------------------------------------
@dataclass(frozen=True)
class CertificateCredential:
    """The app registration's certificate credential: the certificate (public) and its private key (secret).

    By default msal signs the client assertion RS256 with the certificate's SHA-1 thumbprint (``x5t``), which
    every Entra cloud accepts; ``send_x5c=True`` sends the certificate chain instead (PS256, ``x5t#S256`` and
    ``x5c``), as subject-name/issuer authentication needs.
    """

    certificate_pem: str
    private_key_pem: SecretStr = field(repr=False)
    thumbprint: str
    send_x5c: bool = False
    passphrase: SecretStr | None = field(default=None, repr=False)

    @classmethod
    def from_pem(cls, certificate_pem: str, private_key_pem: SecretStr | str, *,
                 passphrase: SecretStr | None = None, send_x5c: bool = False) -> CertificateCredential:
        """Checked at once: both parse, and the key belongs to the certificate (a ConfigError says which).
        cryptography's X.509 module is imported here (about 30 ms), only where a certificate is configured."""
        from cryptography import x509  # noqa: PLC0415 (lazy: see the docstring)
        from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
        key_pem = private_key_pem if isinstance(private_key_pem, SecretStr) else SecretStr(private_key_pem)
        try:
            cert = x509.load_pem_x509_certificate(certificate_pem.encode())
        except ValueError:
            raise ConfigError("RESETBOT_ENTRA_CERTIFICATE_FILE does not hold a PEM certificate.") from None
        try:
            key = serialization.load_pem_private_key(
                key_pem.get_secret_value().encode(),
                password=passphrase.get_secret_value().encode() if passphrase else None,
            )
        except (ValueError, TypeError):
            raise ConfigError("RESETBOT_ENTRA_PRIVATE_KEY_FILE does not hold a readable PEM private key (or its "
                              "passphrase is wrong).") from None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.DER, spki) != \
                cert.public_key().public_bytes(serialization.Encoding.DER, spki):
            raise ConfigError("RESETBOT_ENTRA_PRIVATE_KEY_FILE is not the key of the certificate in "
                              "RESETBOT_ENTRA_CERTIFICATE_FILE.")
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1 by definition
        return cls(certificate_pem=pem, private_key_pem=key_pem, thumbprint=thumbprint, send_x5c=send_x5c,
                   passphrase=passphrase)

    @classmethod
    def from_files(cls, certificate_file: str | Path, private_key_file: str | Path | None = None, *,
                   passphrase: SecretStr | None = None, send_x5c: bool = False) -> CertificateCredential:
        """From PEM files; without ``private_key_file`` the key is looked for in the certificate file."""
        try:
            cert_text = Path(certificate_file).read_text()
            key_text = Path(private_key_file).read_text() if private_key_file else cert_text
        except OSError as e:
            raise ConfigError(f"The Entra certificate or key file cannot be read: {e.strerror} "
                              f"({e.filename}).") from None
        return cls.from_pem(cert_text, SecretStr(key_text), passphrase=passphrase, send_x5c=send_x5c)

    def msal_credential(self) -> dict[str, str]:
        cred = {"private_key": self.private_key_pem.get_secret_value()}
        if self.send_x5c:
            cred["public_certificate"] = self.certificate_pem
        else:
            cred["thumbprint"] = self.thumbprint
        if self.passphrase is not None:
            cred["passphrase"] = self.passphrase.get_secret_value()
        return cred


# --- the app token request's errors ---------------------------------------------------------------------------
def _app_error(result: dict[str, Any], *, client_id: str, uses_certificate: bool) -> Exception:
    """The error dict of a client-credentials request as the exception the operator should see."""
    error = str(result.get("error") or "unknown_error")
    n = _aadsts(result)
    fields = _fields(result)
    if error in _UNAVAILABLE_ERRORS:
        return EntraUnavailableError(f"Entra ID's token service is unavailable ({fields['code']}); the bot will "
                                     "try again later.", **fields)
    credential_setting = _S_CERT if uses_certificate else _S_SECRET
    if n == 7000222:
        return EntraAuthError(f"The bot's client secret has expired (AADSTS7000222): create a new secret for app "
                              f"{client_id} and put its value in {_S_SECRET}.", **fields)
    if n == 7000215 or (error == "invalid_client" and not uses_certificate and n not in (700016,)):
        return EntraAuthError(f"Entra ID refused the bot's client secret ({fields['code']}): check that "
                              f"{_S_SECRET} holds the secret's value (not its id) for app {client_id}.", **fields)
    if error == "invalid_client" or n in (700027, 700024, 700023):
        return EntraAuthError(f"Entra ID refused the bot's certificate credential ({fields['code']}): check that "
                              f"{credential_setting} hold a certificate uploaded to app {client_id} and its key.",
                              **fields)
    if n == 700016 or error == "unauthorized_client":
        return EntraAuthError(f"Entra ID does not know app {client_id} in this tenant ({fields['code']}): check "
                              f"{_S_CLIENT_ID} and {_S_AUTHORITY}.", **fields)
    if n == 90002 or error == "invalid_tenant":
        return EntraAuthError(f"Entra ID does not know the tenant in {_S_AUTHORITY} ({fields['code']}).", **fields)
    return EntraAuthError(f"Entra ID refused the bot's token request ({error}, {fields['code']}): check "
                          f"{_S_CLIENT_ID}, {credential_setting} and the app's Graph permissions.", **fields)


# --- app-only tokens ------------------------------------------------------------------------------------------
class AppTokens:
    """App-only tokens for Graph via msal's ConfidentialClientApplication (client secret OR certificate).

    The msal application is built on first use (its construction already fetches the authority's metadata,
    so a bot starting while Entra is unreachable still starts; msal itself is imported only then) and kept: msal
    caches the token in memory and renews it when under 5 minutes are left. Thread-safe.
    """

    def __init__(self, *, authority: str, client_id: str, client_secret: SecretStr | None = None,
                 certificate: CertificateCredential | None = None, ca_file: str | Path | None = None,
                 proxy: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 scope: str = GRAPH_DEFAULT_SCOPE) -> None:
        if (client_secret is None) == (certificate is None):
            raise ConfigError(f"Set exactly one of {_S_SECRET} or RESETBOT_ENTRA_CERTIFICATE_FILE.")
        if not client_id.strip():
            raise ConfigError(f"{_S_CLIENT_ID} is empty.")
        self.authority = _check_authority(authority)
        self.client_id = client_id.strip()
        self._secret = client_secret
        self._certificate = certificate
        self._ca_file = ca_file
        self._proxy = proxy
        self._timeout = timeout
        self._scope = scope
        self._lock = threading.Lock()
        self._app: Any = None

    def __repr__(self) -> str:
        kind = "certificate" if self._certificate else "secret"
        return f"AppTokens(authority={self.authority!r}, client_id={self.client_id!r}, credential={kind})"

    def _msal_app(self) -> Any:
        import msal  # noqa: PLC0415 (lazy: see msal_errors)

        from bot.clients.entra_auth.msal_http import msal_http_client  # noqa: PLC0415 (lazy, with msal)
        with self._lock:
            if self._app is None:
                credential: Any = (self._certificate.msal_credential() if self._certificate
                                   else self._secret.get_secret_value() if self._secret else None)
                try:
                    self._app = msal.ConfidentialClientApplication(
                        self.client_id, client_credential=credential, authority=self.authority,
                        instance_discovery=instance_discovery_for(self.authority),
                        http_client=msal_http_client(self._ca_file, proxy=self._proxy, timeout=self._timeout),
                    )
                except msal_failures() as e:
                    raise _unavailable_from(e, "reading the authority's metadata") from None
                except ValueError:
                    # msal's text here is about the authority's metadata; a bad key was refused earlier.
                    raise _unreadable_authority(self.authority) from None
            return self._app

    def token(self) -> str:
        """A Graph access token for the app (from msal's cache while it is fresh)."""
        app = self._msal_app()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except msal_failures() as e:
            raise _unavailable_from(e, "getting the bot's app token") from None
        if not isinstance(result, dict) or "access_token" not in result:
            err = _app_error(result if isinstance(result, dict) else {}, client_id=self.client_id,
                             uses_certificate=self._certificate is not None)
            log.warning("app token refused: %s", err)
            raise err
        log.debug("app token from %s", result.get("token_source"))
        return str(result["access_token"])

