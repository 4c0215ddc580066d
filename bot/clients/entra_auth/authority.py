"""The Entra authority URL, checked before msal sees it, and whether msal may run instance discovery for it."""

from __future__ import annotations

from urllib.parse import urlsplit

from bot.errors import ConfigError

#: The public cloud's authority host: the only one for which msal's instance discovery is left on.
PUBLIC_CLOUD_HOST = "login.microsoftonline.com"

# Setting names the operator sees in sentences (the composition root builds these clients from Settings).
_S_AUTHORITY = "RESETBOT_ENTRA_AUTHORITY"


def instance_discovery_for(authority: str) -> bool:
    """Whether msal may run instance discovery for ``authority``.

    Instance discovery asks login.microsoftonline.com which hosts are aliases of the authority. For any other
    host (the lab's ``https://127.0.0.1:PORT/TENANT``, a sovereign or private cloud) Microsoft does not know
    the host, so msal would refuse the authority, and it would tell Microsoft about a host that is none of
    its business. Turned off, msal reads the authority's own OpenID configuration, which is all it needs.
    """
    return (urlsplit(authority).hostname or "").lower() == PUBLIC_CLOUD_HOST


def _check_authority(authority: str, setting: str = _S_AUTHORITY) -> str:
    parts = urlsplit(authority.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path.strip("/") == "":
        raise ConfigError(f"{setting} must be an https URL ending in the tenant, like "
                          f"https://{PUBLIC_CLOUD_HOST}/<tenant id>.")
    return authority.strip().rstrip("/")
