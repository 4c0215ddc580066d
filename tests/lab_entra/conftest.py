"""One lab AD (Samba) and one Entra stand-in for this package, started here and stopped at the end.

Self-contained on purpose (it does not use the session ``lab`` fixture): each lab DC takes its own loopback
address and the stand-in an OS-chosen port, so this runs beside any other lab on the machine.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ldap3
import msal
import pytest
import requests

from lab.ad.dc import LabAD
from lab.ad.ldap import connect
from lab.entra import EntraStandIn
from lab.people import Person, person
from lab.pki import LabCA

GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
AGENT_SCOPES = ["UserAuthenticationMethod.ReadWrite.All", "User.Read.All", "OnPremDirectorySynchronization.Read.All",
                "User.RevokeSessions.All"]
_SAFE = "bcdfghjkmnpqrstvwxz"  # no vowels: a random tail never spells a banned word


def fresh_password() -> str:
    """A password no test used before (so history never refuses it), complex for AD and the cloud."""
    return "Tide!" + "".join(secrets.choice(_SAFE) for _ in range(8)) + "Qz7"


def msal_http(ca_file: Path) -> requests.Session:
    """msal's HTTP client trusting the lab CA only; trust_env=False so REQUESTS_CA_BUNDLE cannot override it."""
    session = requests.Session()
    session.verify = str(ca_file)
    session.trust_env = False
    return session


@dataclass
class EntraLab:
    ad: LabAD
    entra: EntraStandIn
    ca_file: Path
    _agents: dict[str, str] = field(default_factory=dict)
    _app: Any = None

    @property
    def d(self) -> dict[str, Any]:
        return self.entra.descriptor()

    @property
    def ad_d(self) -> dict[str, Any]:
        return self.ad.descriptor()

    def http(self) -> httpx.Client:
        return httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_file)), trust_env=False, timeout=30)

    def control(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with self.http() as client:
            return client.request(method, self.d["control"] + path, json=body)

    def graph(self, method: str, path: str, token: str, body: Any = None, **kw: Any) -> httpx.Response:
        with self.http() as client:
            url = path if path.startswith("https://") else self.d["graph_base"] + path
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return client.request(method, url, json=body, headers=headers, **kw)

    # -- tokens -----------------------------------------------------------------------------------------
    def confidential(self, credential: Any = None) -> msal.ConfidentialClientApplication:
        d = self.d
        return msal.ConfidentialClientApplication(
            d["app"]["client_id"], client_credential=credential or d["app"]["client_secret"],
            authority=d["authority"], instance_discovery=False, http_client=msal_http(self.ca_file),
        )

    def public(self) -> msal.PublicClientApplication:
        d = self.d
        return msal.PublicClientApplication(d["public_client_id"], authority=d["authority"],
                                            instance_discovery=False, http_client=msal_http(self.ca_file))

    def app_token(self, *, fresh: bool = False) -> str:
        """The app's token (``fresh``: from a new msal app, e.g. after the app's consent changed)."""
        if self._app is None or fresh:
            self._app = self.confidential()
        result = self._app.acquire_token_for_client(scopes=GRAPH_DEFAULT)
        assert "access_token" in result, result
        return str(result["access_token"])

    def agent_token(self, key: str) -> str:
        """A delegated token for ``key``, through msal's device-code flow approved via the control API."""
        if key not in self._agents:
            app = self.public()
            flow = app.initiate_device_flow(scopes=AGENT_SCOPES)
            approved = self.control("POST", "/device/approve", {"user_code": flow["user_code"],
                                                                 "upn": person(key).upn})
            assert approved.status_code == 200, approved.text
            result = app.acquire_token_by_device_flow(flow)
            assert "access_token" in result, result
            self._agents[key] = str(result["access_token"])
        return self._agents[key]

    # -- the tenant's configuration --------------------------------------------------------------------
    def consent(self, *app_roles: str) -> None:
        """Admin-consent exactly these application permissions for the bot's app (``POST /reset`` undoes it)."""
        answer = self.control("POST", "/consent", {"app_roles": list(app_roles)})
        assert answer.status_code == 200, answer.text

    def assign(self, key: str, role: str, **how: Any) -> None:
        """Give ``key`` an Entra role (``eligible``, ``administrative_unit``, ``custom``, ``remove``: see the
        stand-in's README); ``POST /reset`` puts the fixture's roles back."""
        answer = self.control("POST", "/roles", {"upn": person(key).upn, "role": role, **how})
        assert answer.status_code == 200, answer.text

    # -- resets -----------------------------------------------------------------------------------------
    def reset(self, caller: str, target: str, password: str | None) -> httpx.Response:
        body = {} if password is None else {"newPassword": password}
        path = f"/users/{person(target).upn}/authentication/methods/28c10230-6103-485e-b985-444c60001490/resetPassword"
        return self.graph("POST", path, self.agent_token(caller), body)

    def wait(self, location: str, token: str, *, timeout: float = 20) -> dict[str, Any]:
        """Poll the operation until it is terminal, as a client following Retry-After would (but faster)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.graph("GET", location, token)
            assert got.status_code == 200, got.text
            op: dict[str, Any] = got.json()
            if op["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                return op
            time.sleep(0.05)

    def reset_and_wait(self, caller: str, target: str, password: str | None) -> dict[str, Any]:
        answer = self.reset(caller, target, password)
        assert answer.status_code == 202, answer.text
        return self.wait(answer.headers["Location"], self.agent_token(caller))

    # -- AD -------------------------------------------------------------------------------------------
    def reader(self) -> ldap3.Connection:
        r = self.ad_d["reader"]
        return connect(r["bind"], r["password"], ca_file=self.ca_file, url=self.ad_d["ldaps_url"])

    def ad_attrs(self, p: Person, *attrs: str) -> Any:
        conn = self.reader()
        try:
            conn.search(p.dn, "(objectClass=user)", search_scope=ldap3.BASE, attributes=list(attrs))
            assert conn.entries, conn.result
            return conn.entries[0]
        finally:
            conn.unbind()

    def pwd_last_set(self, p: Person) -> int:
        return int(self.ad_attrs(p, "pwdLastSet").pwdLastSet.raw_values[0])

    def restore(self, p: Person) -> None:
        """Put the fixture password back (an admin reset), since other tests sign in with it; first let any
        operation still running finish, or its writeback would land after the restore."""
        deadline = time.monotonic() + 20
        while any(op["status"] in ("notStarted", "running") for op in self.control("GET", "/operations").json()):
            assert time.monotonic() < deadline, "an operation never finished"
            time.sleep(0.05)
        assert self.ad.admin_connection().extend.microsoft.modify_password(p.dn, p.password)


@pytest.fixture(scope="package")
def entra_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraLab]:
    state = tmp_path_factory.mktemp("entra-lab")
    ca = LabCA(state / "pki")
    ad = LabAD(state, ca)
    try:
        ad.start()
        with EntraStandIn(ad.descriptor(), ca) as entra:
            yield EntraLab(ad=ad, entra=entra, ca_file=ca.ca_file)
    finally:
        ad.stop()


@pytest.fixture
def entra(entra_lab: EntraLab) -> Iterator[EntraLab]:
    """The package's lab with faults off and logs cleared before and after the test."""
    assert entra_lab.control("POST", "/reset").status_code == 200
    yield entra_lab
    assert entra_lab.control("POST", "/reset").status_code == 200
