"""The shipped deployment files (``deploy/``) stay true to the code: every setting they name exists, the unit
starts a real subcommand, gives the bot's graceful drain time to finish before SIGKILL, and is a unit systemd
accepts. An example env file copied unedited refuses to start rather than serving with placeholders."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import command_modules
from bot.cli.run import EXIT_MUST_FIX
from bot.errors import ConfigError
from bot.settings import DEFAULT_DRAIN_SECONDS, Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
UNIT = DEPLOY / "resetbot.service"
ENV_EXAMPLE = DEPLOY / "resetbot.env.example"
#: Where the README installs the virtualenv; the unit's ExecStart must point into it.
INSTALLED_COMMAND = "/opt/resetbot/venv/bin/resetbot"
#: After the drain bound the bot still closes its connections and exits: the stop timeout must leave room for it.
CLOSE_MARGIN_S = 5.0


def _unit_values(key: str) -> list[str]:
    """Every value of ``key`` in the unit (systemd keys may repeat)."""
    return [line.split("=", 1)[1].strip() for line in UNIT.read_text().splitlines()
            if line.split("=", 1)[0].strip() == key and "=" in line]


def _env_example() -> dict[str, str]:
    """The settings the example sets (commented-out alternatives left out)."""
    pairs = [line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def _seconds(value: str) -> float:
    """A systemd time span as the unit writes it: ``40``, ``40s``, ``1min 30s``."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.mark.parametrize("path", [UNIT, ENV_EXAMPLE], ids=lambda p: p.name)
def test_every_setting_named_is_a_real_setting(path: Path) -> None:
    named = set(re.findall(r"RESETBOT_[A-Z0-9_]+", path.read_text()))
    assert named or path == UNIT
    unknown = sorted(n for n in named if n.removeprefix("RESETBOT_").lower() not in Settings.model_fields)
    assert not unknown, f"{path.name} names settings resetbot does not have: {unknown}"


def test_the_unit_starts_a_real_subcommand_from_the_installed_virtualenv() -> None:
    [exec_start] = _unit_values("ExecStart")
    command, subcommand, *_ = exec_start.split()
    assert command == INSTALLED_COMMAND
    sub = argparse.ArgumentParser().add_subparsers()
    for module in command_modules([]):  # the subcommands `resetbot` itself registers
        module.register(sub)
    assert subcommand == "run" and subcommand in sub.choices, sorted(sub.choices)


def test_the_stop_timeout_outlasts_the_graceful_drain() -> None:
    [stop_timeout] = _unit_values("TimeoutStopSec")
    [kill_signal] = _unit_values("KillSignal")
    assert kill_signal == "SIGTERM", "the bot drains on SIGTERM"
    drain = float(_env_example().get("RESETBOT_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS))
    for bound in (DEFAULT_DRAIN_SECONDS, drain):
        assert _seconds(stop_timeout) >= bound + CLOSE_MARGIN_S, (
            f"TimeoutStopSec={stop_timeout} would SIGKILL a bot still draining for up to {bound:.0f} s")


def test_a_start_that_needs_a_fix_is_not_restarted_and_one_out_of_reach_is() -> None:
    assert _unit_values("Restart") == ["on-failure"]
    assert _unit_values("RestartPreventExitStatus") == [str(EXIT_MUST_FIX)]


def test_the_state_folder_is_the_only_writable_place_and_holds_the_sqlite_file() -> None:
    assert _unit_values("ProtectSystem") == ["strict"]
    [state] = _unit_values("StateDirectory")
    assert _unit_values("WorkingDirectory") == [f"/var/lib/{state}"]
    assert _env_example()["RESETBOT_DATABASE_URL"] == f"sqlite:////var/lib/{state}/resetbot.db"


def test_the_example_copied_unedited_refuses_to_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"RESETBOT_{name.upper()}", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "RESETBOT_SLACK_BOT_TOKEN" in str(err.value)
    assert "<" not in str(err.value), "a placeholder is named, never echoed"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine; the other checks of the unit still ran")
    # verify checks that ExecStart exists: point it at this checkout's own command.
    resetbot = Path(sys.executable).parent / "resetbot"
    assert resetbot.exists(), "the resetbot command is installed in this virtualenv"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_COMMAND, str(resetbot)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    said = [line for line in (done.stdout + done.stderr).splitlines() if unit.name in line]
    assert done.returncode == 0 and not said, done.stdout + done.stderr


def test_the_unit_caps_glibcs_malloc_arenas() -> None:
    """The fix for the bot's growth over thousands of resets (bench/soak.py) lives in the unit: glibc reads
    MALLOC_ARENA_MAX only at the process's start, so the code cannot set it for itself."""
    assert "MALLOC_ARENA_MAX=2" in _unit_values("Environment")
