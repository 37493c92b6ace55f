"""The permit-fastmcp example server (examples/seed_server/server.py) as a module-level ``mcp``.

The example builds its server in a function that takes the JWT secret.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from fastmcp import FastMCP

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_server" / "server.py"
_spec = importlib.util.spec_from_file_location("seed_example_server", _EXAMPLE)
assert _spec is not None
assert _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

mcp: FastMCP[Any] = _module.build_server("test-only-FAKE-cli-secret-0123456789abcdef")
