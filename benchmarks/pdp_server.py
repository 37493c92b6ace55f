"""A LocalPDP in its own process, so a benchmark's server and PDP do not share a GIL.

    python benchmarks/pdp_server.py TOOLS API_KEY

Prints the PDP's URL on one line, then serves until its standard input closes.
Commands on standard input, one a line, each answered with one line of JSON:
``stats`` (requests per path and TCP connections accepted since the last
``reset``), ``reset``, and ``cpu`` (this process's CPU seconds so far).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import tool_policy

from permit_guard.testing import LocalPDP


def main() -> None:
    tools, key = int(sys.argv[1]), sys.argv[2]
    with LocalPDP.from_dict(tool_policy(tools), api_key=key) as pdp:
        print(pdp.url, flush=True)
        for line in sys.stdin:  # ends when the parent closes the pipe
            command = line.strip()
            if command == "stats":
                answer = {
                    "requests_by_path": pdp.requests_by_path,
                    "connections": pdp.connections,
                    "errors": [repr(error) for error in pdp.errors],
                }
            elif command == "cpu":
                answer = {"cpu_s": time.process_time()}
            elif command == "reset":
                pdp.reset()
                answer = {"reset": True}
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
