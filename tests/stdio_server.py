"""The test billing server on stdio; the user comes from PERMIT_MCP_IDENTITY_FIXED_VALUE."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware
from tests.conftest import POLICY, build_server

mcp = build_server()
mcp.add_middleware(
    PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY), enable_audit_logging=False)
)

if __name__ == "__main__":
    mcp.run(transport="stdio", show_banner=False)
