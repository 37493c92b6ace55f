"""A LocalPDP in its own process, so a benchmark's server and PDP do not share a GIL.

    python benchmarks/pdp_server.py TOOLS API_KEY

Prints the PDP's URL on one line, then serves until its standard input closes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import tool_policy

from permit_guard.testing import LocalPDP


def main() -> None:
    tools, key = int(sys.argv[1]), sys.argv[2]
    with LocalPDP.from_dict(tool_policy(tools), api_key=key) as pdp:
        print(pdp.url, flush=True)
        sys.stdin.read()  # returns when the parent closes the pipe


if __name__ == "__main__":
    main()
