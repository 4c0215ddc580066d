"""The lab's Active Directory: a seeded Samba AD DC, started from a cached template.

The template is keyed by the Samba version, the people fixture and the seeding code, so changing any of
them rebuilds it and nothing stale is ever reused.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.formatters.formatters import format_sid
from ldap3.protocol.microsoft import security_descriptor_control

from lab import people as fixture
from lab.ad import acl, samba, seed
from lab.ad.ldap import connect
from lab.errors import LabError
from lab.people import ADMIN_PASSWORD, BASE_DN, NETBIOS, PEOPLE, READER, REALM, WRITEBACK
from lab.pki import IssuedCert, LabCA

ADMIN_BIND = f"{NETBIOS}\\Administrator"
DC_DNS_NAME = f"{samba.HOST_NAME}.{REALM.lower()}"
#: How long a started Samba may take from an open LDAPS port to serving an authenticated read.
_SERVE_TIMEOUT_S = 60.0


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "resetbot-lab"


#: Machine-wide, whatever cache folder a lab uses: the loopback addresses are machine-wide too.
ADDRESS_LOCKS = Path(tempfile.gettempdir()) / "resetbot-lab-addresses"


#: A template of another key (another Samba, another seed: another checkout) is removed only when no lab has
#: started from it for this long, since a checkout next to this one may be copying it right now.
TEMPLATE_KEEP_S = 24 * 3600.0


def _unused_for(template: Path, seconds: float) -> bool:
    """Whether ``template`` (or an abandoned ``.partial`` build) has not been used for ``seconds``. A build
    in progress holds the template lock, so an unfinished ``.partial`` of another key is abandoned."""
    ready = template / "READY"
    if not ready.exists():
        return template.name.endswith(".partial")
    return time.time() - ready.stat().st_mtime > seconds


def template_key() -> str:
    h = hashlib.sha256(samba.samba_version().encode())
    for module in (fixture, seed, samba):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


class LabAD:
    """Start/stop one lab DC in ``state_dir``; ``descriptor()`` is the LAB.md ``ad`` section."""

    def __init__(self, state_dir: Path, ca: LabCA, *, cache_dir: Path | None = None) -> None:
        self.root = state_dir / "samba"
        self.ca = ca
        self.cache_dir = cache_dir or default_cache_dir()
        self._proc: samba.SambaProcess | None = None
        self._address: samba.LoopbackAddress | None = None

    @property
    def host(self) -> str:
        if self._address is None:
            raise LabError("The lab AD has no address before start().")
        return self._address.host

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.host}:{samba.LDAPS_PORT}"

    # -- template -------------------------------------------------------------------------------------
    def ensure_template(self) -> Path:
        """The seeded template folder, built (about 10 s) when there is none for this key."""
        template = self.cache_dir / f"samba-template-{template_key()}"
        with samba.locked(self.cache_dir / "template.lock"):
            if (template / "READY").exists():
                (template / "READY").touch()  # in use: another key's build leaves it alone (see below)
                return template
            partial = self.cache_dir / f"{template.name}.partial"
            if partial.exists():
                shutil.rmtree(partial)
            samba.provision(partial)
            conf = samba.write_smb_conf(partial, self._server_cert(), self.ca.ca_file, self.host)
            proc = samba.SambaProcess(partial, conf, self.host)
            proc.start()
            try:
                admin = self.admin_connection()
                seed.seed(admin)
                writeback_sid = seed.object_sid(admin, WRITEBACK.dn)
                reader_sid = seed.object_sid(admin, READER.dn)
                admin.unbind()
            finally:
                proc.stop()
            _, tool = samba.require_samba()
            seed.delegate_writeback(tool, conf, partial / "private" / "sam.ldb", writeback_sid)
            seed.delegate_reader(tool, conf, partial / "private" / "sam.ldb", reader_sid)
            for stale in template.parent.glob("samba-template-*"):
                if stale != partial and _unused_for(stale, TEMPLATE_KEEP_S):
                    shutil.rmtree(stale, ignore_errors=True)
            (partial / "READY").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
            partial.rename(template)
            return template

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._address is None:
            self._address = samba.LoopbackAddress(ADDRESS_LOCKS)
        template = self.ensure_template()
        samba.copy_template(template, self.root)
        self._start_process()
        for p in PEOPLE:
            if p.has("locked") and fixture.in_ad(p):
                seed.lock_out(self.ldaps_url, self.ca.ca_file, p)

    def _server_cert(self) -> IssuedCert:
        return self.ca.issue_server_cert("ldaps", dns_names=(DC_DNS_NAME,), ips=(self.host,))

    def _start_process(self) -> None:
        conf = samba.write_smb_conf(self.root, self._server_cert(), self.ca.ca_file, self.host)
        self._proc = samba.SambaProcess(self.root, conf, self.host)
        self._proc.start()
        self._await_reads()

    def _await_reads(self) -> None:
        """Return once the reader account binds and reads the base DN's object; a LabError after
        ``_SERVE_TIMEOUT_S`` (or at once if Samba exits). An open LDAPS port is not enough: Samba listens before
        it answers binds, and in that moment a bind fails as if the DC were down (socket errors, or a refused
        bind). Bounded polling of the very thing callers need is the only signal Samba gives."""
        deadline = time.monotonic() + _SERVE_TIMEOUT_S
        last = "no attempt"
        while True:
            if not self.running:
                raise LabError(f"Samba exited before it served LDAP reads; see {self.root}/log/")
            last = self._read_base_dn()
            if not last:
                return
            if time.monotonic() >= deadline:
                self.pause()
                raise LabError(f"Samba opened LDAPS but did not serve an authenticated read within "
                               f"{_SERVE_TIMEOUT_S:.0f} s ({last}); see {self.root}/log/")
            time.sleep(0.1)

    def _read_base_dn(self) -> str:
        """An empty string when the reader's bind and base-DN read work, else what went wrong."""
        try:
            conn = connect(READER.upn, READER.password, ca_file=self.ca.ca_file, url=self.ldaps_url)
        except LDAPException as exc:
            return f"bind: {type(exc).__name__}"
        try:
            conn.search(BASE_DN, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["objectClass"])
            return "" if conn.entries else f"read: {conn.result.get('description')}"
        except LDAPException as exc:
            return f"read: {type(exc).__name__}"
        finally:
            conn.unbind()

    def pause(self) -> None:
        """Stop Samba but keep its data and address: ``resume()`` brings the same DC back (an outage)."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def stop(self) -> None:
        """Stop Samba and give its loopback address back."""
        self.pause()
        if self._address is not None:
            self._address.release()
            self._address = None

    def resume(self) -> None:
        """Start the paused DC again and return only once it serves an authenticated bind and read (the end of
        the outage, as a client sees it). Samba opens its LDAPS port a moment before binds work, so a caller that
        went on at the open port (a health ping, a follow-up check) could still see the outage and flake; the
        wait is a bounded poll of that bind and read, not a sleep (see ``_await_reads``)."""
        if self._proc is not None and self._proc.running:
            return
        if self._address is None or not (self.root / "private" / "sam.ldb").exists():
            raise LabError("The lab AD was not started (or was stopped for good); call start() first.")
        self._start_process()

    def freeze(self) -> None:
        """Hold every LDAP call in flight: Samba keeps running, its port open and its connections up, but answers
        nothing until ``thaw()`` (SIGSTOP / SIGCONT). Unlike ``pause()``, which is an outage (connections refused at
        once), this is a DC that hangs, the way a client's call is caught mid-way; the client's own timeouts are
        all that bound it. ``stop()`` and ``pause()`` thaw first, so a frozen lab still shuts down cleanly."""
        if self._proc is not None:
            self._proc.freeze()

    def thaw(self) -> None:
        """Let a frozen DC answer again; calls held by ``freeze()`` go on where they were."""
        if self._proc is not None:
            self._proc.thaw()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    # -- access ---------------------------------------------------------------------------------------
    def refuse_next_passwords(self, count: int = 1) -> None:
        """Make the DC's password filter refuse the next ``count`` passwords set, whatever they are: Samba's
        own refusal of a password that meets length and complexity (how a banned-word filter looks)."""
        samba.refuse_counter(self.root).write_text(str(count))

    def change_own_password(self, dn: str, old: str, new: str) -> tuple[bool, str]:
        """The user changes their own password, as Windows does at "you must change your password" after a sign-in
        with a temporary one: a *change* (delete the old value, add the new), which AD checks against the old
        password and the full policy (history, minimum age, filter), not an admin reset. A user whose must-change
        flag is set cannot bind, so the change travels on another authenticated connection, as AD allows (Everyone
        holds the Change Password right; the old password is the proof). Returns (done, AD's message)."""
        conn = connect(READER.upn, READER.password, ca_file=self.ca.ca_file, url=self.ldaps_url)
        try:
            done = bool(conn.extend.microsoft.modify_password(dn, new, old_password=old))
            return done, str(conn.result.get("message") or conn.result.get("description"))
        finally:
            conn.unbind()

    @contextmanager
    def read_denied(self, dn: str, *, attribute: str, to_account: str) -> Iterator[None]:
        """While the block runs, ``to_account`` (a sAMAccountName) may not read ``attribute`` on ``dn``: an
        explicit deny ACE, as an admin would add one; the object's own DACL is put back afterwards."""
        dacl_only = security_descriptor_control(sdflags=0x04)
        admin = self.admin_connection()
        try:
            admin.search(BASE_DN, f"(sAMAccountName={to_account})", attributes=["objectSid"])
            sid = format_sid(admin.response[0]["raw_attributes"]["objectSid"][0])
            admin.search(f"CN=Schema,CN=Configuration,{BASE_DN}", f"(lDAPDisplayName={attribute})",
                         attributes=["schemaIDGUID"])
            guid = uuid.UUID(bytes_le=bytes(admin.response[0]["raw_attributes"]["schemaIDGUID"][0]))
            admin.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["nTSecurityDescriptor"],
                         controls=dacl_only)
            original = bytes(admin.response[0]["raw_attributes"]["nTSecurityDescriptor"][0])
            denied = acl.with_read_denied(original, trustee_sid=sid, attribute_guid=guid)
            if not admin.modify(dn, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [denied])]}, controls=dacl_only):
                raise LabError(f"could not deny reading {attribute} on {dn}: {admin.result}")
            try:
                yield
            finally:
                if not admin.modify(dn, {"nTSecurityDescriptor": [(ldap3.MODIFY_REPLACE, [original])]},
                                    controls=dacl_only):
                    raise LabError(f"could not restore the DACL of {dn}: {admin.result}")
        finally:
            admin.unbind()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def admin_connection(self) -> Any:
        return connect(ADMIN_BIND, ADMIN_PASSWORD, ca_file=self.ca.ca_file, url=self.ldaps_url)

    def descriptor(self) -> dict[str, Any]:
        return {
            "ldaps_url": self.ldaps_url,
            "ca_file": str(self.ca.ca_file),
            "base_dn": BASE_DN,
            "realm": REALM,
            "netbios": NETBIOS,
            "admin": {"bind": ADMIN_BIND, "password": ADMIN_PASSWORD},
            "writeback": {"bind": WRITEBACK.upn, "password": WRITEBACK.password},
            "reader": {"bind": READER.upn, "password": READER.password},
        }
