"""Run a real Samba AD DC on loopback: provision once into a cached template, start copies of it.

Provisioning and seeding cost several seconds, so they happen once per (Samba version, fixture, seed
code) and the result is kept as a template; each lab run copies the template into its own state folder
and starts Samba there. Samba only serves LDAP (389) and LDAPS (636, a port Samba does not let us move)
with a certificate from the lab CA so that clients verify TLS properly.

Because the port is fixed, each lab takes its own loopback address instead (Linux routes all of
127.0.0.0/8 to ``lo``, and Samba binds an address given in ``interfaces`` without it being configured
on the interface — seen with Samba 4.17). A lock file per address, held for the lab's lifetime, keeps two
labs (a developer's and a test run, say) from picking the same one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from lab.errors import LabError
from lab.people import ADMIN_PASSWORD, BANNED_WORDS, NETBIOS, REALM
from lab.pki import IssuedCert

INSTALL_HINT = (
    "Samba is not installed: run `apt-get install -y samba samba-ad-dc winbind krb5-user ldb-tools` as root "
    "(the README's commands do this for you)."
)
LDAPS_PORT = 636
HOST_NAME = "dc1"
_START_TIMEOUT_S = 60.0


def require_samba(search_path: str | None = None) -> tuple[str, str]:
    """Paths of ``samba`` and ``samba-tool``, or a LabError that says how to install them."""
    if search_path is None:
        # samba lives in /usr/sbin, which a non-login shell's PATH may lack.
        search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    samba = shutil.which("samba", path=search_path)
    tool = shutil.which("samba-tool", path=search_path)
    if not samba or not tool:
        raise LabError(INSTALL_HINT)
    if os.geteuid() != 0:
        raise LabError("The lab's Samba AD DC must run as root (it provisions a domain and binds port 636).")
    return samba, tool


def samba_version() -> str:
    samba, _ = require_samba()
    out = subprocess.run([samba, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def provision(target: Path) -> None:
    """``samba-tool domain provision`` into ``target`` (a fresh folder)."""
    _, tool = require_samba()
    target.mkdir(parents=True)
    cmd = [
        tool, "domain", "provision", f"--targetdir={target}", f"--realm={REALM}", f"--domain={NETBIOS}",
        "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}", "--use-rfc2307",
        f"--host-name={HOST_NAME}", "--option=interfaces=lo", "--option=bind interfaces only=yes",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LabError(f"samba-tool domain provision failed (exit {done.returncode}): {done.stderr[-2000:]}")


def password_filter_script(root: Path) -> str:
    """Install the lab's password filter (check_password.py) and its banned-word list into ``root``;
    returns the ``check password script`` command line for smb.conf."""
    script = root / "check-password.py"
    shutil.copyfile(Path(__file__).with_name("check_password.py"), script)
    script.chmod(0o755)
    words = root / "banned-words.txt"
    words.write_text("\n".join(BANNED_WORDS) + "\n")
    counter = refuse_counter(root)
    counter.write_text("0")
    return f"{script} {words} {counter}"


def refuse_counter(root: Path) -> Path:
    """The password filter's "refuse the next N passwords" counter (see check_password.py)."""
    return root / "filter-refuse-next"


def write_smb_conf(root: Path, tls: IssuedCert, ca_file: Path, host: str) -> Path:
    """A complete smb.conf for a DC rooted at ``root`` (the provisioned one names the template's paths)."""
    (root / "log").mkdir(exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    filter_command = password_filter_script(root)
    conf = root / "etc" / "smb.conf"
    conf.write_text(
        "[global]\n"
        f"\tnetbios name = {HOST_NAME.upper()}\n"
        f"\trealm = {REALM}\n"
        f"\tworkgroup = {NETBIOS}\n"
        "\tserver role = active directory domain controller\n"
        "\tserver services = ldap\n"
        f"\tinterfaces = {host}/8\n"
        "\tbind interfaces only = yes\n"
        f"\tprivate dir = {root}/private\n"
        f"\tstate directory = {root}/state\n"
        f"\tcache directory = {root}/cache\n"
        f"\tlock directory = {root}\n"
        f"\tpid directory = {root}/run\n"
        f"\tbinddns dir = {root}/bind-dns\n"
        f"\tncalrpc dir = {root}/run/ncalrpc\n"
        f"\tlog file = {root}/log/samba.log\n"
        "\tlog level = 1\n"
        "\tidmap_ldb:use rfc2307 = yes\n"
        "\ttls enabled = yes\n"
        f"\ttls keyfile = {tls.key_file}\n"
        f"\ttls certfile = {tls.cert_file}\n"
        f"\ttls cafile = {ca_file}\n"
        f"\tcheck password script = {filter_command}\n"
    )
    return conf


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class LoopbackAddress:
    """Claims a free 127.0.0.x for one lab's DC until ``release()``."""

    def __init__(self, lock_dir: Path) -> None:
        lock_dir.mkdir(parents=True, exist_ok=True)
        for last in range(10, 250):
            host = f"127.0.0.{last}"
            f = (lock_dir / f"dc-{host}.lock").open("w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            if _port_open(host, LDAPS_PORT):  # a DC we do not know about (a leftover lab)
                f.close()
                continue
            self.host = host
            self._lock = f
            return
        raise LabError("No free loopback address for the lab's DC (127.0.0.10-249 are all taken).")

    def release(self) -> None:
        self._lock.close()


class SambaProcess:
    """One running ``samba`` serving LDAP/LDAPS from ``root``; stop() leaves no process behind."""

    def __init__(self, root: Path, conf: Path, host: str) -> None:
        self.root = root
        self.conf = conf
        self.host = host
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        samba, _ = require_samba()
        if _port_open(self.host, LDAPS_PORT):
            raise LabError(f"Port 636 on {self.host} is already taken: is another lab using this address?")
        log = (self.root / "log" / "samba.stdout").open("wb")
        self._proc = subprocess.Popen(
            [samba, "-s", str(self.conf), "--foreground", "--no-process-group", "-M", "single", "--debug-stdout"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LabError(f"Samba exited at start (code {self._proc.returncode}); see {self.root}/log/")
            if _port_open(self.host, LDAPS_PORT):
                return
            time.sleep(0.1)
        self.stop()
        raise LabError(f"Samba did not open LDAPS within {_START_TIMEOUT_S:.0f} s; see {self.root}/log/")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def freeze(self) -> None:
        """SIGSTOP every process of this Samba: connections stay open and the kernel still completes new TCP
        handshakes into the listen backlog, but nothing is answered, so a client's LDAP call hangs in flight
        (bounded only by its own timeouts) until ``thaw()``."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what ``freeze()`` stopped: calls in flight are answered as if the DC had been slow."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # A frozen Samba holds SIGTERM pending until it runs again: without SIGCONT first, every stop of a frozen
        # lab would wait out the timeout below and end in SIGKILL (no clean shutdown, a slow test teardown).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Samba forks helpers into the same session; make sure none outlives the lab.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _port_open(self.host, LDAPS_PORT) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so two labs never build the same template at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def copy_template(template: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    # Sockets (ldapi, msg.sock) cannot be copied and belong to the run that made them.
    skip = shutil.ignore_patterns("log", "run", "ldapi", "*.sock", "msg.*")
    shutil.copytree(template, root, symlinks=True, ignore=skip)
