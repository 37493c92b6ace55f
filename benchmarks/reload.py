"""How long a saved edit of a watched policy takes to reach decisions.

Loads a policy with ``LocalPolicyEngine.from_file(path, reload=True)``, then
saves it ``--edits`` times (by rename, as editors do), alternately granting
and revoking ``refund``, and times each from the rename to the first decision
that sees it. Also times decisions while the watcher runs, against an engine
that does not watch, side by side, so that the watcher's cost shows as a
ratio. Files go to a temporary folder; every loop is bounded.

    python3 -m uv run python benchmarks/reload.py [--edits 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from permit_guard import LocalPolicyEngine
from permit_guard.model import AuthzRequest, Principal, Resource

#: The longest an edit may take to be seen before the run gives up on it.
PATIENCE = 10.0

ASK = AuthzRequest(
    user=Principal(key="alice"), action="refund", resource=Resource(type="mcp_server")
)


def policy(grants: list[str]) -> dict[str, Any]:
    return {
        "resources": {"mcp_server": {"actions": ["greet", "refund"]}},
        "roles": {"viewer": {"grants": {"mcp_server": grants}}},
        "users": {"alice": {"roles": ["viewer"]}},
    }


def save(folder: Path, path: Path, grants: list[str]) -> float:
    partial = folder / "policy.tmp"
    partial.write_text(yaml.safe_dump(policy(grants)))
    started = time.monotonic()
    os.replace(partial, path)
    return started


def latencies(engine: LocalPolicyEngine, folder: Path, path: Path, edits: int) -> list[float]:
    seen: list[float] = []
    for edit in range(edits):
        wanted = edit % 2 == 0
        started = save(folder, path, ["greet", "refund"] if wanted else ["greet"])
        while engine.decide(ASK).allowed is not wanted:
            if time.monotonic() - started > PATIENCE:
                raise SystemExit(f"edit {edit} not seen within {PATIENCE} s")
            time.sleep(0.005)
        seen.append(time.monotonic() - started)
    return seen


def rate(engine: LocalPolicyEngine, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        engine.decide(ASK)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="permit-guard-reload-"))
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(policy(["greet"])))
    watched = LocalPolicyEngine.from_file(path, reload=True)
    still = LocalPolicyEngine.from_file(path)
    try:
        seen = latencies(watched, folder, path, args.edits)
        ratios = []
        for _ in range(5):
            ratios.append(rate(still, 20_000) / rate(watched, 20_000))
    finally:
        watched.close()
    print(
        f"edit -> effect: median {statistics.median(seen) * 1000:.0f} ms, "
        f"max {max(seen) * 1000:.0f} ms over {len(seen)} edits"
    )
    print(f"decision time, watched / not watched: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
