"""The project tracker example: one scenario, the same decisions on every engine.

Real servers and clients: the example's server on the embedded engine, then on
``PermitPDPEngine`` -> ``LocalPDP`` (the tools write facts to the PDP's
directory, as they would to ``permit.api``), and each request the guard sent
asked again through the real ``permit`` SDK -> ``LocalPDP``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

from permit_guard import DecisionEvent, LocalPolicyEngine, PermitPDPEngine
from permit_guard.testing import LocalPDP, RecordingEngine

EXAMPLE = Path(__file__).parent.parent / "examples" / "project_tracker"
KEY = "permit_key_FAKE_tracker"

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit import Permit


def example_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tracker_client", EXAMPLE / "client.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLIENT = example_client()
EXPECTED = [allowed for *_, allowed, _ in CLIENT.SCENARIO]


async def test_the_embedded_engine_gives_every_expected_decision() -> None:
    """Tenant isolation, ownership by creation, derivation, archived, loaded priority."""
    events: list[DecisionEvent] = []
    results = await CLIENT.run(events)
    assert [allowed for *_, allowed, _ in results] == EXPECTED
    reasons = {(user, tool, tuple(args.values())): why for user, tool, args, _, why in results}
    assert (
        "derived: 'admin' on workspace:acme-hq -parent-> 'owner' on project:acme-3"
        in (reasons["alice", "delete_project", ("acme-3",)])
    )
    assert "tenant 'acme'" in reasons["carol", "get_project", ("acme-1",)]


async def test_the_pdp_engine_against_local_pdp_decides_alike() -> None:
    """The same scenario through PermitPDPEngine -> LocalPDP, and each request via the SDK."""
    events: list[DecisionEvent] = []
    with LocalPDP(LocalPolicyEngine.from_file(EXAMPLE / "policy.yaml"), api_key=KEY) as pdp:
        async with PermitPDPEngine(pdp.url, KEY) as inner:
            engine = RecordingEngine(inner)
            results = await CLIENT.run(events, engine, pdp.engine.api)
            assert [allowed for *_, allowed, _ in results] == EXPECTED
            # The PDP saw the instance keys and tenants the embedded engine decides on.
            asked = {(r.resource.type, r.resource.key) for r in engine.requests}
            assert ("project", "acme-1") in asked
            assert ("workspace", "acme-hq") in asked
            assert any(r.resource.attributes.get("priority") == 4 for r in engine.requests)

            # The facts are those the tools wrote, so replaying a request now
            # answers as it would after the last step: ask the SDK only about
            # the instances the scenario left unchanged.
            sdk = Permit(token=KEY, pdp=pdp.url, pdp_timeout=2)
            replayed = 0
            for request, decision in zip(engine.requests, engine.decisions, strict=True):
                if request.resource.key not in {"acme-1", "acme-2", "acme-hq"}:
                    continue
                resource = {
                    "type": request.resource.type,
                    "key": request.resource.key,
                    "tenant": request.resource.tenant,
                    "attributes": dict(request.resource.attributes),
                }
                user = {"key": request.user.key, "attributes": dict(request.user.attributes)}
                answer = await sdk.check(user, request.action, resource)
                assert answer is decision.allowed, (request, decision)
                replayed += 1
            assert replayed >= 8


def test_the_example_client_runs_and_checks_itself() -> None:
    """``python examples/project_tracker/client.py`` exits 0 and prints each decision."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "client.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(EXPECTED)
    assert sum("ALLOW" in line for line in lines) == sum(EXPECTED)
    assert "unexpected" not in done.stdout
    assert not done.stderr.strip(), done.stderr
