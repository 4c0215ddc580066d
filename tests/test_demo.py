"""The README's main command: the scripted helpdesk morning runs end to end and shows its four stories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.stack import Lab


def test_the_demo_plays_its_stories(lab: Lab, tmp_path: Path) -> None:
    """Runs beside the shared lab (each lab has its own DC address and ports)."""
    done = subprocess.run([sys.executable, "-m", "lab", "demo", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "Your Entra account is linked as hank@corp.example.test" in out
    assert "--- #helpdesk thread: a good reset" in out and "Done: Alice Archer's new temporary password" in out
    assert "Caller verified by Duo push" in out
    assert "--- #helpdesk thread: a verified caller, and a policy refusal" in out
    assert "Caller verified by Slack code" in out and "a password filter on the domain controllers" in out
    assert "--- #helpdesk thread: an impostor" in out and "reported the Duo push as fraud" in out
    assert "--- #security:" in out and "reported a helpdesk Duo push as fraud" in out
    assert "--- #helpdesk thread: a denied request" in out and "Already reset this morning" in out
    assert "--- only Hank sees: Paula Price's account is protected" in out
    assert "revealed the temporary password" in out
    assert "Confirmed on-premises: Active Directory shows the reset of Alice Archer's password" in out
