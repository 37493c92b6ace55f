"""Helpers for testing a guarded server in your own test suite.

:class:`RecordingEngine` wraps a real engine and records what it was asked::

    from fastmcp import Client
    from permit_guard import LocalPolicyEngine, PermitMcpMiddleware
    from permit_guard.testing import RecordingEngine

    engine = RecordingEngine(LocalPolicyEngine.from_file("policy.yaml"))
    mcp.add_middleware(PermitMcpMiddleware(engine=engine))
    async with Client(mcp) as client:
        await client.list_tools()
    assert engine.calls == [("check_many", 4)]   # one engine call for the whole list

:class:`LocalPDP` is a real HTTP server on 127.0.0.1 that speaks the Permit.io
PDP API (``POST /allowed``, ``POST /allowed/bulk``, ``GET /health``, and the
AuthZEN endpoints ``POST /access/v1/evaluation(s)``), decides
with a :class:`~permit_guard.engines.local.LocalPolicyEngine`, counts what it
receives and misbehaves on demand (:class:`Fault`)::

    import json
    import urllib.error
    import urllib.request

    from permit_guard.testing import Fault, LocalPDP

    policy = {
        "resources": {"mcp_server": {"actions": ["greet"]}},
        "roles": {"viewer": {"grants": {"mcp_server": ["greet"]}}},
        "users": {"bob": {"roles": ["viewer"]}},
    }
    query = {"user": {"key": "bob"}, "action": "greet", "resource": {"type": "mcp_server"}}
    with LocalPDP.from_dict(policy) as pdp:
        asked = urllib.request.Request(
            f"{pdp.url}/allowed",
            data=json.dumps(query).encode(),
            headers={"Authorization": f"Bearer {pdp.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(asked) as answer:
            assert json.load(answer)["allow"] is True
        pdp.inject(Fault.status(503), times=1)   # the next decision request fails
        try:
            urllib.request.urlopen(asked)
        except urllib.error.HTTPError as failed:
            assert failed.code == 503
        assert pdp.requests_by_path == {"/allowed": 2}
"""

from permit_guard.testing.faults import Fault
from permit_guard.testing.faults import FaultKind as FaultKind  # importable here, as before
from permit_guard.testing.pdp import LocalPDP
from permit_guard.testing.recording import RecordingEngine

__all__ = ["Fault", "LocalPDP", "RecordingEngine"]
