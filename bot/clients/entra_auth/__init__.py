"""Tokens from Entra ID through msal: the bot's own app-only token, and agents' delegated tokens.

- :class:`AppTokens`: client credentials (secret or certificate) for Graph reads and Temporary Access Passes.
- :class:`DelegatedTokens`: an agent links their own account once through the device-code flow (no inbound
  port, no redirect URI) or, where Conditional Access blocks that, in their browser (auth code with PKCE); the
  bot then keeps that account's msal token cache, encrypted with Fernet, and gets
  fresh access tokens silently with the refresh token. resetPassword accepts only delegated tokens, so every
  reset is made as a named person whose Entra role Microsoft checks.

Wire facts relied on (graph-and-entra.md): msal only talks to ``https`` authorities; with
``instance_discovery=False`` it reads ``{authority}/v2.0/.well-known/openid-configuration`` directly; it
answers ``acquire_token_for_client`` from its in-memory cache while the token has over 5 minutes left; it
RAISES ``MsalServiceError("HTTP Error: 503")`` on a 5xx token answer instead of returning an error dict, and
caches 429/5xx answers for Retry-After seconds (so a later call fails fast without asking again).

Nothing here logs, returns in an exception, or shows in a repr any token, secret, device code or token cache.

The package: :mod:`~bot.clients.entra_auth.app_tokens` (:class:`AppTokens`, :class:`CertificateCredential`),
:mod:`~bot.clients.entra_auth.delegated_tokens` (:class:`DelegatedTokens` and the device-code sign-in),
:mod:`~bot.clients.entra_auth.authority` (the authority URL, instance discovery) and
:mod:`~bot.clients.entra_auth.msal_errors` (what both flows share of msal's errors). Import from here.
"""

from bot.clients.entra_auth.app_tokens import GRAPH_DEFAULT_SCOPE, AppTokens, CertificateCredential, TokenSource
from bot.clients.entra_auth.authority import PUBLIC_CLOUD_HOST, instance_discovery_for
from bot.clients.entra_auth.delegated_tokens import (
    AGENT_SCOPES,
    BROWSER_SIGN_IN_S,
    BrowserFlow,
    DelegatedToken,
    DelegatedTokens,
    DeviceFlow,
    LinkedAccount,
    sign_in_tenant_problem,
)

__all__ = [
    "AGENT_SCOPES",
    "BROWSER_SIGN_IN_S",
    "GRAPH_DEFAULT_SCOPE",
    "PUBLIC_CLOUD_HOST",
    "AppTokens",
    "BrowserFlow",
    "CertificateCredential",
    "DelegatedToken",
    "DelegatedTokens",
    "DeviceFlow",
    "LinkedAccount",
    "TokenSource",
    "instance_discovery_for",
    "sign_in_tenant_problem",
]
