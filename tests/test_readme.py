"""The README's promises: its commands are the ones CI and users run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run runs exactly the README's second command."""
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_quickstart_shows_allow_and_deny() -> None:
    """The quickstart (the README's first command, minus the install) prints allows and denials."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout
    assert "== alice: tools/list -> delete_invoice, greet, health, refund" in out
    assert "== eve: tools/list -> health" in out
    bob = out.split("== bob")[1].split("== eve")[0]
    assert re.search(r"refund\(amount=50, currency='EUR'\)\s+ALLOW\s+user set 'finance'", bob)
    assert re.search(r"refund\(amount=500, currency='EUR'\)\s+DENY", bob)
    assert re.search(r"debug_dump\(\)\s+DENY\s+undecorated under default deny", out)


def test_every_setting_is_documented() -> None:
    """Each GuardSettings field appears as its PERMIT_MCP_ variable in the docs."""
    from permit_guard.settings import GuardSettings

    text = "\n".join(page.read_text() for page in sorted((ROOT / "docs").rglob("*.md")))
    missing = [
        f"PERMIT_MCP_{name.upper()}"
        for name in GuardSettings.model_fields
        if f"PERMIT_MCP_{name.upper()}" not in text
    ]
    assert missing == []
