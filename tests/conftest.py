"""One lab per test run: the Samba AD DC's LDAPS port is fixed, and starting it costs seconds.

Every test that uses the ``lab`` fixture, directly or through another fixture, and every test of the lab's own
stand-ins (``tests/lab_*``) is marked ``lab`` here, so the fast loop (``bash tests/run.sh --fast``) can leave them
out without anyone having to remember the marker. CI runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.stack import Lab

#: The device-code polling interval the session's lab announces. Every scenario module links its agent with a
#: device-code sign-in, and msal waits the whole interval before the poll that sees it approved: at Microsoft's 5 s
#: that is about four seconds per module, to no purpose. The lab still answers slow_down to a client that polls
#: sooner than the interval it was given (tests/lab_entra/test_identity.py proves it at both intervals).
TEST_DEVICE_CODE_INTERVAL_S = 1


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("lab"), device_code_interval_s=TEST_DEVICE_CODE_INTERVAL_S) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()) or item.path.parent.name.startswith("lab_"):
            item.add_marker(pytest.mark.lab)
