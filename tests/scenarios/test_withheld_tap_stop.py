"""A TAP withheld (called off while Entra issued it) whose process stops right after the verdict is recorded and
before the deletion in Entra ran. The verdict says the pass is being deleted; a bot that restarts must still delete
it, as recovery deletes a pass issued before a stop: otherwise a live pass, which satisfies MFA, stays in Entra for
its hour with nobody told."""

from __future__ import annotations

from datetime import timedelta

from bot.models import utcnow
from bot.settings import TargetConfirmation
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.clients.graphlab import EntraControl
from tests.scenarios.conftest import with_rules
from tests.scenarios.harness import RunningBot
from tests.scenarios.test_reset_withheld import _withheld_tap, taps_of


def test_a_withheld_tap_whose_process_stopped_before_its_deletion_is_deleted_after_the_restart(
        lab: Lab, bot: RunningBot, driver: SlackDriver) -> None:
    """Hedy's TAP for Bob is cancelled while Entra issues it; the bot stops between the verdict's commit and the
    DELETE (the deletion step never runs here). After the restart, recovery runs: Entra must hold no pass for Bob."""
    entra = EntraControl(lab)
    entra.reset(history=True)
    with_rules(bot, target_confirmation=TargetConfirmation.ASK)
    reset = bot.services.reset
    stopped = lambda *args, **kwargs: None  # noqa: E731 - the process died before this step
    reset._delete_withheld_tap = stopped  # type: ignore[method-assign]
    try:
        ts, rid = _withheld_tap(lab, driver, bot, entra, "cancel", reason="tap, cancel, then a stop")
        assert reset.wait_idle(timeout=30), "the verdict's process is done with what follows its commit"
    finally:
        del reset._delete_withheld_tap
    assert reset.recover_interrupted() == 0, "not before the verdict's own process would have deleted it"
    assert len(taps_of(entra, "bob")) == 1
    later = utcnow() + timedelta(minutes=10)
    assert reset.recover_interrupted(now=later) == 1
    assert taps_of(entra, "bob") == [], "the withheld TAP is still usable in Entra"
    deleted = [e for e in bot.audit(rid) if e.action == "tap_deleted"]
    assert len(deleted) == 1 and '"withheld":"withdrawn"' in deleted[0].detail
    helpdesk = lab.descriptor["slack"]["channels"]["helpdesk"]
    said = driver.wait_for_message(helpdesk, lambda m: "withheld Temporary Access Pass" in m["text"], thread_ts=ts)
    assert said["text"] == (":lock: The withheld Temporary Access Pass for Bob Baker no longer exists (it is deleted "
                            "in Entra): nobody can sign in with it.")
    assert reset.recover_interrupted(now=later + timedelta(minutes=1)) == 0, "once: its outcome is on record"
    assert len([e for e in bot.audit(rid) if e.action == "tap_deleted"]) == 1
