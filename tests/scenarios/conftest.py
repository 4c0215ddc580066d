"""One bot per test module, connected to the session's lab; each test starts from a clean Slack transcript
and the default rules (a test that needs other rules swaps them for its own duration)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot import store
from bot.domain.audit import AuditAction, AuditDraft
from bot.domain.lifecycle import RequestState
from bot.models import ResetRequest
from bot.services.requests import RequestRules
from lab.slack.driver import SlackDriver
from lab.stack import Lab
from tests.scenarios.harness import RunningBot, lab_settings, link_agent, running_bot, wait_until


@pytest.fixture(scope="module")
def driver(lab: Lab) -> Iterator[SlackDriver]:
    with SlackDriver(lab.descriptor["slack"]["control"]) as drv:
        yield drv


@pytest.fixture(scope="module")
def bot(lab: Lab, driver: SlackDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    db: Path = tmp_path_factory.mktemp("bot") / "resetbot.db"
    with running_bot(lab_settings(lab, f"sqlite:///{db}"), driver) as running:
        link_agent(lab, driver, "hank")  # the agent of every story, with his own Entra sign-in
        yield running


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest, driver: SlackDriver) -> Iterator[None]:
    driver.reset()
    if "bot" not in request.fixturenames:
        yield
        return
    bot: RunningBot = request.getfixturevalue("bot")
    rules = bot.services.requests.rules
    yield
    bot.services.requests.rules = rules
    # A reset started by this test finishes (every verdict posted) here, not in the next test's transcript.
    wait_until(lambda: not any(r.state in (RequestState.APPROVED, RequestState.RESETTING) for r in bot.requests()),
               what="the test's resets to finish")
    assert bot.services.reset.wait_idle(timeout=30), "a reset was still posting its verdict"
    # A request the story left waiting would refuse the next story's request for the same person (one open request
    # per target): it expires here, as it would after its TTL.
    with bot.runtime.session_factory.begin() as session:
        for req in session.exec(select(ResetRequest).where(ResetRequest.state == RequestState.PENDING_APPROVAL)):
            store.requests.transition(session, request_id=req.id, expected={RequestState.PENDING_APPROVAL},
                                      to=RequestState.EXPIRED, audit=AuditDraft(actor="scheduler",
                                                                                action=AuditAction.EXPIRED))


def with_rules(bot: RunningBot, **changes: object) -> None:
    bot.services.requests.rules = dataclasses.replace(bot.services.requests.rules, **changes)  # type: ignore[arg-type]


__all__ = ["RequestRules", "with_rules"]
