from __future__ import annotations

import pytest

from lab.ad.samba import require_samba
from lab.errors import LabError


def test_missing_samba_is_one_sentence_with_the_install_command() -> None:
    with pytest.raises(LabError, match=r"apt-get install -y samba samba-ad-dc"):
        require_samba(search_path="/nonexistent")
