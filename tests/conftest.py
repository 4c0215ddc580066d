"""One lab per test run: the Samba AD DC's LDAPS port is fixed, and starting it costs seconds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.stack import Lab


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("lab")) as running:
        yield running
