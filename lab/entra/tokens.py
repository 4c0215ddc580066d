"""Tokens: the signing key, access/id tokens, refresh tokens, and the app's credentials.

Access tokens are real RS256 JWTs signed with a key made at start and published at ``jwks_uri``, so the
Graph side validates them the way Graph does (signature, audience, issuer, lifetime) and a token from
another lab run, or one a test forged, is refused. Refresh tokens are opaque, as Microsoft's are.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lab.entra import config
from lab.entra.wire import AadError


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class AppCredentials:
    """The confidential app's secret and certificate (new at every start, like a freshly rotated app)."""

    client_secret: str
    certificate: x509.Certificate
    private_key_pem: str

    @classmethod
    def generate(cls) -> AppCredentials:
        key = _new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{config.APP_NAME} lab app credential")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        # Entra's client secrets look like "abc8Q~..." (40 characters); the shape does not matter to clients.
        return cls(client_secret=f"lab8Q~{secrets.token_urlsafe(30)}", certificate=cert, private_key_pem=pem)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def thumbprint(self) -> str:
        """SHA-1 hex, upper case, as the Entra portal shows it (msal's ``thumbprint``)."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t is SHA-1 by spec

    def x5t_values(self) -> dict[str, str]:
        """The header values an assertion may name this certificate by."""
        return {
            "x5t": b64url(self.certificate.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1 by spec
            "x5t#S256": b64url(self.certificate.fingerprint(hashes.SHA256())),
        }

    def secret_matches(self, candidate: str) -> bool:
        return secrets.compare_digest(candidate.encode(), self.client_secret.encode())

    def verify_assertion(self, assertion: str, *, client_id: str, audiences: tuple[str, ...]) -> None:
        """Check a client_assertion the way the token endpoint does; raise AadError when it is refused."""
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise _invalid_client(50027, "JWT token is invalid or malformed.") from exc
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise _invalid_client(5002738, f"Invalid JWT token. '{alg}' is not a supported signature algorithm.")
        names = self.x5t_values()
        named = [k for k in ("x5t", "x5t#S256") if k in header]
        if not named:
            raise _invalid_client(700027, "Client assertion failed signature validation. [Reason - The key was "
                                  "not found., Please visit the Azure Portal, Graph Explorer or directly use MS "
                                  "Graph to see configured keys for app Id '" + client_id + "'.]")
        # msal sends x5t with base64 padding; Entra accepts either form.
        if any(str(header[k]).rstrip("=") != names[k] for k in named):
            raise _invalid_client(700027, "Client assertion failed signature validation. [Reason - The key was "
                                  f"not found. Thumbprint of key used by client: '{header[named[0]]}'.]")
        x5c = header.get("x5c")
        if x5c is not None:
            # msal sends the PEM body with its line breaks; Entra compares the certificate, not the text.
            first = x5c[0] if isinstance(x5c, list) and x5c else x5c
            try:
                sent = base64.b64decode("".join(str(first).split()), validate=True)
            except ValueError:
                sent = b""
            if sent != self.certificate.public_bytes(serialization.Encoding.DER):
                raise _invalid_client(700027, "Client assertion failed signature validation. [Reason - The "
                                      "certificate in x5c is not the one registered for the app.]")
        try:
            claims = jwt.decode(
                assertion,
                self.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=[alg],
                audience=list(audiences),
                options={"require": ["exp", "aud", "iss", "sub"]},
                leeway=300,
            )
        except jwt.ExpiredSignatureError as exc:
            raise _invalid_client(700024, "Client assertion is not within its valid time range.") from exc
        except jwt.InvalidAudienceError as exc:
            raise _invalid_client(700212, "The audience of the client assertion must be the token endpoint "
                                  f"{audiences[0]}.") from exc
        except jwt.InvalidSignatureError as exc:
            raise _invalid_client(700027, "Client assertion failed signature validation. [Reason - The "
                                  "signature does not verify with the registered key.]") from exc
        except jwt.PyJWTError as exc:
            raise _invalid_client(50027, f"JWT token is invalid or malformed. [Reason - {type(exc).__name__}]") from exc
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise _invalid_client(700021, "Client assertion application identifier doesn't match 'client_id' "
                                  "parameter. Review the documentation at https://aka.ms/certCredentials .")


def _invalid_client(code: int, description: str) -> AadError:
    return AadError(401, "invalid_client", code, description)


@dataclass(frozen=True)
class Grant:
    """Who a refresh token speaks for, and what it may be redeemed for."""

    client_id: str
    person_key: str
    scopes: tuple[str, ...]
    #: When it was issued: a refresh token issued before the user's ``signInSessionsValidFromDateTime`` (moved by
    #: revokeSignInSessions) is refused, as Entra refuses it (AADSTS50173).
    issued: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass
class TokenIssuer:
    """Signs access and id tokens for one tenant; remembers refresh tokens."""

    tenant_id: str
    authority: str  # https://127.0.0.1:PORT/TENANT_ID
    key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)

    @property
    def kid(self) -> str:
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return b64url(hashlib.sha1(der).digest())  # noqa: S324 - a key id, as Microsoft's are

    @property
    def access_issuer(self) -> str:
        """Graph tokens are v1.0 tokens: Microsoft's iss is https://sts.windows.net/{tid}/."""
        return f"{self.authority}/"

    @property
    def id_token_issuer(self) -> str:
        return f"{self.authority}/v2.0"

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        def as_b64(n: int) -> str:
            return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": as_b64(numbers.n), "e": as_b64(numbers.e), "issuer": self.id_token_issuer}]}

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid,
                                                                         "typ": "JWT"})

    def _times(self) -> dict[str, int]:
        now = int(time.time())
        return {"iat": now, "nbf": now, "exp": now + config.ACCESS_TOKEN_LIFETIME_S}

    def app_token(self, *, client_id: str, app_name: str, roles: tuple[str, ...]) -> str:
        sp_oid = str(uuid.uuid5(uuid.UUID(client_id), "service-principal"))
        return self._sign({
            "aud": config.GRAPH_RESOURCE, "iss": self.access_issuer, **self._times(),
            "appid": client_id, "app_displayname": app_name, "idtyp": "app", "oid": sp_oid, "sub": sp_oid,
            "roles": list(roles), "tid": self.tenant_id, "ver": "1.0", "uti": secrets.token_urlsafe(16),
        })

    def user_token(self, *, client_id: str, app_name: str, person: dict[str, str], scopes: tuple[str, ...]) -> str:
        return self._sign({
            "aud": config.GRAPH_RESOURCE, "iss": self.access_issuer, **self._times(),
            "appid": client_id, "app_displayname": app_name, "idtyp": "user", "oid": person["id"],
            "sub": person["id"], "upn": person["upn"], "unique_name": person["upn"], "name": person["name"],
            "scp": " ".join(scopes), "tid": self.tenant_id, "ver": "1.0", "uti": secrets.token_urlsafe(16),
        })

    def id_token(self, *, client_id: str, person: dict[str, str], nonce: str | None = None,
                 tid: str | None = None) -> str:
        """The v2 id token; ``nonce`` as the authorization request sent it (msal compares it with its own)."""
        claims: dict[str, Any] = {
            "aud": client_id, "iss": self.id_token_issuer, **self._times(), "oid": person["id"],
            "sub": person["id"], "tid": tid or self.tenant_id, "preferred_username": person["upn"],
            "name": person["name"], "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def client_info(self, person: dict[str, str]) -> str:
        """base64url {"uid", "utid"}: msal builds the account's home_account_id from it."""
        return b64url(json.dumps({"uid": person["id"], "utid": self.tenant_id}).encode())

    def new_refresh_token(self, grant: Grant) -> str:
        token = f"1.lab.{secrets.token_urlsafe(48)}"
        self.refresh_tokens[token] = grant
        return token

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed for Graph; raises jwt.PyJWTError otherwise."""
        claims: dict[str, Any] = jwt.decode(
            token, self.key.public_key(), algorithms=["RS256"], audience=[config.GRAPH_RESOURCE,
                                                                          config.GRAPH_APP_ID],
            issuer=self.access_issuer, options={"require": ["exp", "aud", "iss", "tid"]},
        )
        if claims.get("tid") != self.tenant_id:
            raise jwt.InvalidIssuerError("token from another tenant")
        return claims
