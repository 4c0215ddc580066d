"""Fixtures for the Slack stand-in's tests: one stand-in per test module, a clean workspace per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.slack import SlackDriver, SlackStandIn


@pytest.fixture(scope="module")
def stand_in() -> Iterator[SlackStandIn]:
    with SlackStandIn() as server:
        yield server


@pytest.fixture(scope="module")
def driver(stand_in: SlackStandIn) -> Iterator[SlackDriver]:
    with SlackDriver(stand_in.descriptor()["control"]) as drv:
        yield drv


@pytest.fixture(autouse=True)
def _clean(driver: SlackDriver) -> None:
    """Every test starts with no messages, views, calls or faults (connections stay)."""
    driver.reset()
