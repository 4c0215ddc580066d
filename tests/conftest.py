"""One lab per test run: the Samba AD DC's LDAPS port is fixed, and starting it costs seconds.

Every test that uses the ``lab`` fixture, directly or through another fixture, and every test of the lab's own
stand-ins (``tests/lab_*``) is marked ``lab`` here, so the fast loop (``bash tests/run.sh --fast``) can leave them
out without anyone having to remember the marker. CI runs them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.stack import Lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()) or item.path.parent.name.startswith("lab_"):
            item.add_marker(pytest.mark.lab)
