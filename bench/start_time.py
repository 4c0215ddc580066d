"""A faster start: ``resetbot run`` launch → Socket Mode connected, against a bare bolt app on the same lab.

    .venv/bin/python -m bench.start_time [--rounds 5] [--dev-venv]

Both are launched as processes of their own, alternately, ``--rounds`` times each after one warm-up each (the
first start of the bot also migrates its new database, and the first of either fills the page cache). The time is
from just before ``Popen`` to the moment the lab's Slack opened the app's Socket Mode connection (the stand-in's
own ``opened_at``, same clock). The bare app is ``bench.ack_burst``'s: a bolt ``App`` with one ``/reset`` listener
that only acks. The bot starts as ``resetbot run`` does, with every start-up check: settings, the database's
schema, the proxy and Slack token checks, the user groups pinned, then Socket Mode.

Fair to production: this project's development virtualenv has ``click`` and ``rich`` (pulled in by
import-linter), and with them ``httpx`` imports its command-line interface (and ``pygments``) on ``import httpx``,
about 60 ms a production install (``pip install resetbot``: neither is a dependency) never pays; it also has
``h2`` (``httpx[http2]``, pulled in by the tests' Microsoft Graph SDK), which ``httpcore`` imports whenever it is
there. Both processes are therefore started with those modules made unimportable (``sys.modules[name] = None``,
which is what an absent package looks like to ``import``); ``--dev-venv`` starts them as they are. Likewise a
wheel's install writes every module's bytecode, while a checkout run with ``PYTHONDONTWRITEBYTECODE`` compiles the
bot's 150 source files at each start (about 0.3 s): both processes run without that variable, so the warm-up round
leaves the bytecode a production install has.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ack_burst import BARE_APP, ROOT
from lab.demo import bot_environment
from lab.slack.driver import SlackDriver
from lab.stack import Lab

#: What a production install lacks but the development virtualenv has (see the module doc).
DEV_ONLY = ("click", "rich", "pygments", "h2")

BOT = "import runpy; sys.argv = ['resetbot', 'run']; runpy.run_module('bot', run_name='__main__')"


def _prelude(dev_venv: bool) -> str:
    if dev_venv:
        return "import sys\n"
    return "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in DEV_ONLY)


def _cpu_s(pid: int) -> float:
    """The process's CPU seconds so far (user + system, from /proc): less swayed than wall time by other work on
    the machine, so it shows a change on a loaded machine that the wall time hides."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(driver: SlackDriver, code: str, env: dict[str, str], log: Path,
           cpu: list[float] | None = None) -> float:
    """Seconds from launch to the app's Socket Mode connection opened at the lab (and, into ``cpu``, the CPU
    seconds it had used when the connection was seen); the process is stopped after."""
    before = {c["id"] for c in driver.connections()}
    with log.open("w") as out:
        launched = time.time()
        # this interpreter with our own code
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,  # noqa: S603
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            conn = driver.wait_for(
                lambda: next((c for c in driver.connections() if c["id"] not in before and c.get("ready")),
                             None) or (proc.poll() is not None and {"exited": proc.returncode}) or None,
                timeout=120, what="a new Socket Mode connection")
            if "exited" in conn:
                raise RuntimeError(f"the process exited with {conn['exited']} before it connected: see {log}")
            if cpu is not None:
                cpu.append(_cpu_s(proc.pid))
            return float(conn["opened_at"]) - launched
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            driver.wait_for(lambda: not [c for c in driver.connections() if c["id"] not in before] or None,
                            timeout=60, what="the connection closed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dev-venv", action="store_true", help="keep click/rich importable (see the module doc)")
    args = parser.parse_args()
    prelude = _prelude(args.dev_venv)
    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp) / "lab") as lab, \
            SlackDriver(lab.descriptor["slack"]["control"], timeout=120) as driver:
        slack = lab.descriptor["slack"]
        base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        bare_env = {**base, "BOT_TOKEN": slack["bot_token"], "APP_TOKEN": slack["app_token"],
                    "API_BASE": slack["api_base"]}
        bot_env = {k: v for k, v in bot_environment(lab.descriptor, f"sqlite:///{Path(tmp) / 'resetbot.db'}").items()
                   if k != "PYTHONDONTWRITEBYTECODE"}
        bare: list[float] = []
        bot: list[float] = []
        bare_cpu: list[float] = []
        bot_cpu: list[float] = []
        for i in range(args.rounds + 1):  # round 0 is the warm-up
            b = _start(driver, prelude + BARE_APP, bare_env, Path(tmp) / "bare.log", bare_cpu if i else None)
            r = _start(driver, prelude + BOT, bot_env, Path(tmp) / "bot.log", bot_cpu if i else None)
            if i:
                bare.append(b)
                bot.append(r)
    venv = "development virtualenv as is" if args.dev_venv else f"without {', '.join(DEV_ONLY)} (as in production)"
    print(f"start: launch -> Socket Mode connected, median of {args.rounds}, {os.cpu_count()} CPUs, {venv}:")
    print(f"  bare bolt app: {statistics.median(bare):.3f} s (min {min(bare):.3f}, max {max(bare):.3f})")
    print(f"  resetbot run:  {statistics.median(bot):.3f} s (min {min(bot):.3f}, max {max(bot):.3f})")
    print(f"  resetbot - bare: {statistics.median(bot) - statistics.median(bare):+.3f} s")
    bare_c, bot_c = statistics.median(bare_cpu), statistics.median(bot_cpu)
    print(f"  CPU seconds when connected (median): bare {bare_c:.2f}, resetbot {bot_c:.2f}, difference "
          f"{bot_c - bare_c:+.2f} (load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
