"""``resetbot doctor``: one line per check, saying what was found, or what is wrong and what to do about it.
Never a secret's value.
"""

from __future__ import annotations

from datetime import datetime

DOCTOR_OK, DOCTOR_FAIL, DOCTOR_SKIP = "ok", "FAIL", "skip"


# The checks' names, in the order they run.
CHECK_SETTINGS = "settings"
CHECK_PROXY = "outbound proxy"
CHECK_SLACK_BOT = "Slack bot token"
CHECK_SLACK_SCOPES = "Slack bot scopes"
CHECK_SLACK_APP = "Slack app token"
CHECK_SLACK_GROUPS = "Slack user groups"
CHECK_ENTRA_TLS = "TLS to Entra ID"
CHECK_ENTRA_TOKEN = "Entra app token"  # noqa: S105 - a check's name
CHECK_GRAPH_ROLES = "Graph permissions"
CHECK_GRAPH_REACHABLE = "Graph reachable"
CHECK_GRAPH_USER = "Graph test user"
CHECK_RESET_ROLE = "Entra reset role"
CHECK_LDAP_TLS = "TLS to AD"
CHECK_LDAP_BIND = "LDAP bind"
CHECK_AD_POLICY = "AD password policy"
CHECK_WRITEBACK = "writeback rights"
CHECK_KEY_VERSION = "AD password version"
CHECK_DATABASE = "database"
CHECK_SERVICE_LINK = "service identity link"
CHECK_CALLBACK = "sign-in callback"
CHECK_DUO = "Duo Auth API"


def doctor_line(outcome: str, check: str, detail: str) -> str:
    return f"{outcome:<4}  {check}: {detail}"


def doctor_summary(failed: int) -> str:
    if not failed:
        return "Every check passed."
    return (f"{failed} check{'s' if failed != 1 else ''} failed: fix the lines marked FAIL and run resetbot doctor "
            "again.")


def doctor_settings_ok() -> str:
    return "complete"


def doctor_skipped_for(what: str) -> str:
    return f"skipped: {what} failed above"


def doctor_app_token_not_used() -> str:
    return "skipped: HTTP mode (RESETBOT_SLACK_MODE=http) uses no app-level token; Slack calls the bot's request URL"


def doctor_skipped_unset(setting: str, why: str) -> str:
    return f"skipped: set {setting} to {why}"


def doctor_slack_bot_ok(user: str, team: str) -> str:
    return f"authenticates as {user} in {team}"


def doctor_slack_refused(setting: str, error: str, kind: str) -> str:
    return f"Slack refused {setting} ({error}): copy the {kind} from the app's settings page into {setting}"


def doctor_slack_unreachable(reason: str, api_base: str) -> str:
    return f"Slack could not be reached at {api_base} ({reason}): check the network path and RESETBOT_SLACK_API_BASE"


def doctor_scopes_ok(count: int) -> str:
    return f"the bot token has all {count} scopes manifest.yml asks for"


def doctor_scopes_missing(missing: list[str]) -> str:
    return (f"the bot token lacks {', '.join(missing)}: add {'them' if len(missing) > 1 else 'it'} under "
            "OAuth & Permissions (as manifest.yml asks) and reinstall the app to the workspace")


def doctor_scopes_unknown() -> str:
    return "Slack did not say which scopes the bot token has (no x-oauth-scopes header)"


def doctor_group_pinned(setting: str, handle: str, group_id: str, *, by_id: bool) -> str:
    how = "pinned by id" if by_id else f"a handle: set {setting}={group_id} to pin it by id"
    return f"{setting} @{handle} is {group_id} ({how})"


def doctor_groups_ok(groups: list[str]) -> str:
    """The user groups exist and Slack shows no change by a member; what Slack does not show is said plainly."""
    return ("; ".join(groups) + ". Every change Slack shows to them was made by a workspace admin, but Slack does not "
            "show apps whether members may change user groups: check that only admins may (Workspace settings > "
            "Permissions > User Groups)")


def doctor_group_changed_by_member(setting: str, handle: str, group_id: str, who: str) -> str:
    return (f"@{handle} ({group_id}, {setting}) was last changed by {who}, who is not a workspace admin: this "
            "workspace lets members change user groups, so anyone can make themselves an agent or an approver. Let "
            "only admins manage user groups (Workspace settings > Permissions > User Groups), then check who is in "
            "the group")


def doctor_app_token_ok() -> str:
    return "opens a Socket Mode connection (apps.connections.open)"


def doctor_tls_ok(host: str, ca_setting: str, ca_file: object, *, via: str | None = None) -> str:
    path = f", through the proxy {via}" if via else ""
    return (f"{host} presents a certificate trusted by {ca_file if ca_file else 'the system store'} "
            f"({ca_setting}{path})")


def doctor_tls_untrusted(host: str, reason: str, ca_setting: str, ca_file: object) -> str:
    bundle = f"the CA bundle {ca_file}" if ca_file else "the system's trust store"
    return (f"the certificate of {host} does not verify against {bundle} ({reason}): put the CA that issued it "
            f"in {ca_setting}")


def doctor_tls_unreachable(host: str, reason: str) -> str:
    return f"{host} did not answer TLS ({reason}): check that the server runs and the network path to it"


def doctor_ca_bundle_unreadable(ca_setting: str, reason: str) -> str:
    return f"{ca_setting} cannot be used as a CA bundle ({reason})"


def doctor_entra_token_ok(client_id: str, credential: str) -> str:
    return f"app {client_id} got a Graph token with its {credential}"


def doctor_entra_failed(sentence: str) -> str:
    return sentence.rstrip(".")


def doctor_roles_ok(roles: list[str]) -> str:
    return (f"the app's token carries {', '.join(roles)}; the app needs no directory role (resets are made "
            "with delegated tokens: the agents' own, or the service identity's)")


def doctor_roles_missing(missing: list[str], client_id: str) -> str:
    return (f"the app's token lacks the application permission{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}: add {'them' if len(missing) > 1 else 'it'} to app {client_id} under API "
            "permissions → Microsoft Graph → Application permissions, and grant admin consent")


def doctor_roles_set_credentials(excess: list[str], client_id: str) -> str:
    return (f"the app's token also carries {', '.join(excess)}, which resetbot never uses: with "
            f"{'them' if len(excess) > 1 else 'it'}, whoever holds the app's credential can set passwords or "
            f"Temporary Access Passes for anyone, no Entra role asked; remove {'them' if len(excess) > 1 else 'it'} "
            f"from app {client_id} under API permissions → Microsoft Graph → Application permissions")


def doctor_roles_sign_out(excess: list[str], client_id: str) -> str:
    return (f"the app's token also carries {', '.join(excess)}, which resetbot never uses (it revokes sessions with "
            "the delegated token the reset was made with): with it, whoever holds the app's credential can sign "
            f"anyone out, a Global Administrator included, no Entra role asked; remove it from app {client_id} under "
            "API permissions → Microsoft Graph → Application permissions")


def doctor_roles_unreadable() -> str:
    return "the app's token is not a readable JWT, so its permissions cannot be checked"


def doctor_graph_ok(host: str) -> str:
    return f"{host} presents a trusted certificate and answers the app's token (it read the tenant)"


def doctor_graph_refused(code: str, client_id: str) -> str:
    return (f"Graph refused the app's token when reading the tenant ({code}): give app {client_id} the application "
            "permission Organization.Read.All (API permissions → Microsoft Graph) and grant admin consent")


def doctor_graph_unavailable(sentence: str, graph_base: str) -> str:
    return (f"{sentence.rstrip('.')}: check RESETBOT_GRAPH_BASE ({graph_base}), the network path to it and "
            "Microsoft 365's service health")


def doctor_service_not_used() -> str:
    return ("skipped: RESETBOT_RESET_IDENTITY=agent and no canary, so no service identity is used: each agent's own "
            "Entra role is checked when they ask for a reset (/resetbot whoami shows it)")


def doctor_reset_role_ok(upn: str, roles: list[str], use: str, *, may_revoke: bool = True) -> str:
    said = f"the service identity {upn} ({use}) holds {', '.join(roles)}, which may reset an ordinary user's password"
    if may_revoke:
        return said
    return (f"{said}, but not revoke their sign-in sessions when they disown a reset (containment then leaves that "
            "to a person): assign it Helpdesk Administrator or User Administrator as well")


def doctor_reset_role_missing(upn: str, held: list[str], use: str) -> str:
    holds = f"holds only {', '.join(held)}" if held else "holds no Entra directory role"
    return (f"the service identity {upn} ({use}) {holds}, so Microsoft will refuse its resets: assign it Helpdesk "
            "Administrator or User Administrator (Entra admin center → Roles and administrators)")


def doctor_reset_role_no_user(upn: str) -> str:
    return f"Entra ID has no user {upn}: set RESETBOT_SERVICE_IDENTITY_UPN to the service identity's UPN"


def doctor_service_use(service_mode: bool) -> str:
    return "every reset is made as it" if service_mode else "the canary is reset as it"


def doctor_service_link_ok(upn: str, linked_at: datetime) -> str:
    return (f"{upn} is linked (since {linked_at:%Y-%m-%d %H:%M} UTC) and its stored sign-in opens with "
            "RESETBOT_TOKEN_CACHE_KEY; /resetbot whoami shows whether Entra still honours it")


def doctor_service_link_missing(upn: str, use: str) -> str:
    return (f"{upn} is not linked, yet {use}: an approver runs /resetbot login --service and signs in as {upn}")


def doctor_service_link_other(linked: str, upn: str) -> str:
    return (f"the linked service identity is {linked}, not RESETBOT_SERVICE_IDENTITY_UPN ({upn}): an approver runs "
            f"/resetbot logout --service, then /resetbot login --service as {upn}")


def doctor_service_link_unreadable(upn: str) -> str:
    return (f"the stored sign-in of {upn} does not decrypt with RESETBOT_TOKEN_CACHE_KEY (nor any of "
            "RESETBOT_TOKEN_CACHE_OLD_KEYS): put back the key it was stored under, or link it again with "
            "/resetbot login --service")


def doctor_graph_user_ok(upn: str, sam: str | None) -> str:
    return f"{upn} is readable and synced from AD (sAMAccountName {sam})"


def doctor_graph_user_missing(upn: str) -> str:
    return f"Graph does not know {upn}: set RESETBOT_DOCTOR_TEST_USER to the UPN of a synced user"


def doctor_graph_user_not_synced(upn: str) -> str:
    return (f"{upn} is not synced from AD (no on-premises fields): pick a synced user for "
            "RESETBOT_DOCTOR_TEST_USER, or check Entra Connect's sync")


def doctor_ldap_bind_ok(bind: str) -> str:
    return f"bound as {bind} and read the rootDSE"


def doctor_ldap_failed(sentence: str) -> str:
    return (f"{sentence.rstrip('.')}: check RESETBOT_LDAP_URL, RESETBOT_LDAP_BIND and RESETBOT_LDAP_PASSWORD, "
            "and that the domain controller answers")


def doctor_policy_ok(min_length: int, psos: int) -> str:
    pso = f"{psos} fine-grained polic{'ies' if psos != 1 else 'y'} readable" if psos else "no fine-grained policies"
    return f"domain policy readable (minimum length {min_length}); {pso}"


def doctor_pso_hidden(container: str, count: int) -> str:
    return (f"{count} fine-grained password polic{'ies are' if count != 1 else 'y is'} not readable by the bot's "
            f"account: grant it Read on {container} (the bot refuses to guess a policy)")


def doctor_policy_failed(sentence: str) -> str:
    return f"the password policy could not be read ({sentence.rstrip('.')})"


def doctor_writeback_ok(account: str, ou: str) -> str:
    return f"{account} may reset passwords and write pwdLastSet and lockoutTime on users in {ou}"


def doctor_writeback_missing(account: str, ou: str, missing: list[str]) -> str:
    return (f"{account} lacks {', '.join(missing)} on users in {ou}: delegate them to the AD DS connector account "
            "(Entra Connect's ADSyncConfig Set-ADSyncPasswordWritebackPermissions does), or writeback will fail")


def doctor_writeback_account_unknown(account: str) -> str:
    return f"no single AD account matches {account}: set RESETBOT_WRITEBACK_ACCOUNT to the AD DS connector account"


def doctor_writeback_user_unknown(upn: str) -> str:
    return f"{upn} is not in AD under RESETBOT_LDAP_BASE_DN: set RESETBOT_DOCTOR_TEST_USER to a synced user"


def doctor_writeback_failed(sentence: str) -> str:
    return f"the rights could not be read ({sentence.rstrip('.')})"


def doctor_key_version_ok(upn: str, version: int) -> str:
    return (f"the bot's account reads msDS-KeyVersionNumber on {upn} (now {version}): follow-ups can prove each "
            "reset reached AD")


def doctor_key_version_hidden(dn: str) -> str:
    return (f"the bot's account cannot read msDS-KeyVersionNumber on {dn}: without it a reset of an account that "
            "already had to change its password cannot be proven to have reached AD (the thread says \"not "
            "confirmed\"); grant the bind account Read on that attribute (or Read all properties) for user objects")


def doctor_db_ok(backend: str) -> str:
    return f"{backend} reachable; the schema is up to date"


def doctor_db_unreachable(backend: str, reason: str) -> str:
    return f"the {backend} database could not be opened ({reason}): check RESETBOT_DATABASE_URL and the server"


def doctor_db_pending(pending: list[str]) -> str:
    shown = ", ".join(pending[:5]) + (", ..." if len(pending) > 5 else "")
    return f"the database is not migrated ({len(pending)} pending: {shown}): run resetbot migrate"


def doctor_unexpected(kind: str) -> str:
    return f"the check itself failed ({kind}); run with the same settings again, and report it if it stays"


def doctor_proxy_ok(proxy: str, targets: list[str]) -> str:
    return f"{proxy} opens tunnels to {', '.join(targets)}"


def doctor_proxy_unset() -> str:
    return "skipped: RESETBOT_HTTPS_PROXY is not set, so Slack, Entra ID and Graph are reached directly"


def doctor_callback_off() -> str:
    return "RESETBOT_SIGNIN is device: agents link with a sign-in code, no callback is served"


def doctor_callback_not_https(public_url: str | None) -> str:
    shown = public_url or "(not set)"
    return (f"RESETBOT_PUBLIC_URL {shown} is not an https URL: Microsoft sends the browser back only to https (the "
            "redirect URI is this URL + /auth/callback)")


def doctor_callback_ok(host: str, redirect_uri: str) -> str:
    return (f"{host} answers with a certificate the system trusts; register the redirect URI {redirect_uri} on the "
            "public client app (Authentication, Mobile and desktop applications)")


def doctor_callback_failed(problem: str, redirect_uri: str) -> str:
    return (f"{problem}; agents' browsers must reach it (is resetbot running, and its listener on "
            f"RESETBOT_CALLBACK_HOST/_PORT behind this URL?). The redirect URI to register is {redirect_uri}")


def doctor_duo_ok(host: str) -> str:
    return f"the Auth API application at {host} accepts the integration key and secret key (signed check)"


def doctor_duo_failed(host: str, why: str) -> str:
    return (f"{why.rstrip('.')} at {host}: check RESETBOT_DUO_API_HOST, RESETBOT_DUO_INTEGRATION_KEY and "
            "RESETBOT_DUO_SECRET_KEY against the Auth API application in the Duo Admin Panel")


def doctor_duo_not_used() -> str:
    return "skipped: duo-push is not in RESETBOT_VERIFY_METHODS"
