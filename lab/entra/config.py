"""Fixed facts of the lab tenant: ids, app registrations, permissions, roles and timings.

Everything a test or the bot might want to name lives here, so the stand-in's behaviour can be read in one
place. Ids derive from the people fixture's realm, so they are the same in every lab run (a developer can
paste a tenant id from yesterday's descriptor); secrets, keys and certificates are new at every start.
"""

from __future__ import annotations

import uuid
from typing import Final

from lab.people import DOMAIN, REALM

_NAMESPACE: Final = uuid.UUID("1f0b6c2e-93d4-4c8a-b7e5-2a9d0c4e6f81")

#: One tenant per lab, stable across runs (derived from the realm): cached msal state is keyed by host and
#: port as well, so a stable id never lets one lab's tokens leak into another's.
TENANT_ID: Final = str(uuid.uuid5(_NAMESPACE, f"tenant:{REALM}"))
TENANT_NAME: Final = "resetbot lab"
#: The confidential app the bot authenticates as (client credentials: secret or certificate).
APP_CLIENT_ID: Final = str(uuid.uuid5(_NAMESPACE, "app:resetbot"))
APP_NAME: Final = "resetbot"
#: The public client agents sign in with (device-code flow), "Allow public client flows" = yes.
PUBLIC_CLIENT_ID: Final = str(uuid.uuid5(_NAMESPACE, "app:resetbot-agent"))
PUBLIC_CLIENT_NAME: Final = "resetbot agent sign-in"

#: Microsoft Graph's resource: the audience of every access token the stand-in issues.
GRAPH_RESOURCE: Final = "https://graph.microsoft.com"
GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"

#: The fixed id of the password authentication method (Graph documents it).
PASSWORD_METHOD_ID: Final = "28c10230-6103-485e-b985-444c60001490"

#: Application permissions (app roles) admin-consented for the confidential app: exactly what README asks for
#: (tests/test_app_permissions.py keeps the two in step), none that sets a credential. So an app-only TAP or
#: passwordProfile change is refused (403) as Graph refuses it to such an app; resetPassword refuses any app token.
#: ``POST /control/consent`` changes the set for a test; ``POST /control/reset`` puts this back.
APP_ROLES: Final[tuple[str, ...]] = (
    "User.Read.All",
    "GroupMember.Read.All",
    "Organization.Read.All",
    "RoleManagement.Read.Directory",
    "PrivilegedEligibilitySchedule.Read.AzureADGroup",
    "PrivilegedAssignmentSchedule.Read.AzureADGroup",
)
#: Delegated permissions admin-consented for the public client (what an agent's token may carry in scp).
DELEGATED_SCOPES: Final[tuple[str, ...]] = (
    "User.Read",
    "User.Read.All",
    "User.ReadBasic.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
    "Organization.Read.All",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "User.RevokeSessions.All",
    "OnPremDirectorySynchronization.Read.All",
)
#: OpenID Connect scopes msal adds on its own; they never reach an access token's scp.
RESERVED_SCOPES: Final = frozenset({"openid", "profile", "offline_access", "email"})

#: Entra built-in role template ids (the same in every tenant).
ROLE_TEMPLATE_IDS: Final[dict[str, str]] = {
    "Global Administrator": "62e90394-69f5-4237-9190-012177145e10",
    "Privileged Authentication Administrator": "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    "Privileged Role Administrator": "e8611ab8-c189-46e8-94e1-60213ab1f814",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
    "Groups Administrator": "fdd7a751-b60b-444a-984c-02652fe8fa1c",
    "Helpdesk Administrator": "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    "Password Administrator": "966707d0-3269-4727-9be2-8c3a10f19b9d",
    "Authentication Administrator": "c4e39bd9-1100-46d3-8c65-fb160da0071f",
    "Directory Readers": "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
    "Guest Inviter": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
}

#: Entra ID Password Protection's list as this tenant has it (global list sample + custom words). It is
#: checked before anything reaches the writeback agent. Deliberately disjoint from the on-prem filter's
#: BANNED_WORDS (lab.people), so tests can tell the cloud's refusal from AD's.
CLOUD_BANNED_WORDS: Final[tuple[str, ...]] = ("qwerty", "123456", "iloveyou", "monkey", "dragon", "resetbot")
#: Cloud-only users' password policy (Entra's own: 8-256 characters, 3 of 4 character classes).
CLOUD_MIN_LENGTH: Final = 8
CLOUD_MAX_LENGTH: Final = 256

#: Token lifetimes: msal treats a token with under 5 minutes left as expired, so stay well above that.
ACCESS_TOKEN_LIFETIME_S: Final = 3600
DEVICE_CODE_LIFETIME_S: Final = 900
#: Microsoft's device-code polling interval; a poll sooner than this after the previous one gets slow_down. It is
#: what the lab announces unless it was started with another (``Lab(device_code_interval_s=...)``, ``resetbot-lab up
#: --device-code-interval``) or ``POST /control/device/interval`` changed it: a shorter one makes every agent sign-in
#: of a test run seconds shorter (msal sleeps exactly the interval it was given between polls).
DEVICE_CODE_INTERVAL_S: Final = 5
#: The bounds of an interval the lab may announce: whole seconds (msal counts them with ``range``), and never longer
#: than a code lives.
DEVICE_CODE_INTERVAL_RANGE_S: Final = (1, 60)

#: How long an "offline" writeback agent keeps an operation running before it fails (Entra waits for the
#: relay; the default is short so tests stay fast, and POST /faults {"offline_delay_ms"} changes it).
DEFAULT_OFFLINE_DELAY_MS: Final = 1500
#: Retry-After (seconds) on 202 answers of resetPassword, by default: none (0). Microsoft's reference lists the
#: header as optional and its examples of this call send none; POST /faults {"reset_retry_after"} sets one.
RESET_RETRY_AFTER_S: Final = 0
#: Entra Connect runs a delta sync every 30 minutes and password hash sync every 2 minutes.
SYNC_CYCLE_S: Final = 30 * 60
PASSWORD_SYNC_CYCLE_S: Final = 2 * 60

ONPREM_DOMAIN: Final = DOMAIN
