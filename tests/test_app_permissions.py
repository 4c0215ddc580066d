"""The Entra app registration's application permissions: README, ``resetbot doctor`` and the lab agree, and none of
them lets the app set a credential.

An application permission is checked against no directory role: an app holding ``UserAuthenticationMethod.ReadWrite.
All`` mints a Temporary Access Pass for anyone, a Global Administrator included, whatever the agent who asked may do.
So every credential is set with a delegated token, and the app asks only for reads.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.services.doctor.entra import CREDENTIAL_APP_ROLES, GRAPH_APP_ROLES
from lab.entra import config

README = Path(__file__).resolve().parents[1] / "README.md"
#: The application permissions that set a password or an authentication method (a TAP among them).
SETS_CREDENTIALS = re.compile(r"UserAuthenticationMethod|UserAuthMethod-|PasswordProfile|ReadWrite")


def readme_app_permissions() -> list[str]:
    """The permissions README's "Entra ID" set-up asks to admin-consent for the app (its "Application
    permissions" step, up to the next step)."""
    text = README.read_text()
    step = re.search(r"^2\. Application permissions.*?(?=^\d\. )", text, re.MULTILINE | re.DOTALL)
    assert step, "README's Entra ID set-up names the application permissions in its step 2"
    return re.findall(r"`([A-Za-z-]+(?:\.[A-Za-z]+)+)`", step.group(0))


def test_readme_doctor_and_the_lab_ask_for_the_same_application_permissions() -> None:
    assert sorted(readme_app_permissions()) == sorted(GRAPH_APP_ROLES)
    assert sorted(config.APP_ROLES) == sorted(GRAPH_APP_ROLES), "the lab's app holds exactly what README asks for"


def test_no_application_permission_sets_a_credential() -> None:
    assert [r for r in GRAPH_APP_ROLES if SETS_CREDENTIALS.search(r)] == []
    assert [r for r in config.APP_ROLES if SETS_CREDENTIALS.search(r)] == []
    # What the doctor flags when an app holds one anyway covers the ones this project once held.
    assert {"UserAuthenticationMethod.ReadWrite.All", "User-PasswordProfile.ReadWrite.All"} <= set(CREDENTIAL_APP_ROLES)
