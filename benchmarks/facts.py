"""The embedded engine deciding on server-side facts: 10,000 instances, 10,000 tuples.

A project tracker at scale: 100 workspaces in 10 tenants, 10,000 projects
(resource instances with their tenant and an ``archived`` attribute), one
tuple ``workspace parent project`` each (10,000 tuples), 1,000 users holding
tenant roles, resource roles on projects and ``admin`` on workspaces. Six
kinds of decision, measured side by side in rotating rounds so they share the
machine's load, against a baseline of the same policy with no facts but the
tenant roles:

- rbac: a tenant role on the type (the baseline's only kind);
- instance: a known instance, decided in its tenant on its attributes (a resource set);
- assigned: a resource role assigned on the instance;
- derived: a resource role derived from ``admin`` on the project's workspace;
- denied: a user with no path to the instance (every derivation tried);
- listing: a list check, the user holding the role on some instance by derivation.

Prints decisions per second for each and the ratio to the baseline, then the
cost of the directory's changes (create instance + tuple + assignment).

    python3 -m uv run python benchmarks/facts.py [--instances 10000] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from permit_guard import LocalPolicyEngine
from permit_guard.model import AuthzRequest, Principal, Resource

TENANTS = 10
WORKSPACES = 100
USERS = 1_000


def policy(instances: int, *, facts: bool) -> dict[str, Any]:
    """The tracker's model; with ``facts``, its instances, tuples and resource roles."""
    model: dict[str, Any] = {
        "resources": {
            "workspace": {"actions": ["read"], "roles": {"admin": ["read"]}},
            "project": {
                "actions": ["read", "rename", "delete"],
                "relations": {"parent": "workspace"},
                "roles": {
                    "owner": {
                        "permissions": ["read", "rename", "delete"],
                        "granted_to": {
                            "users_with_role": [
                                {
                                    "role": "admin",
                                    "on_resource": "workspace",
                                    "linked_by_relation": "parent",
                                }
                            ]
                        },
                    }
                },
            },
        },
        "resource_sets": {
            "active_projects": {
                "resource": "project",
                "condition": {"allOf": [{"resource.archived": {"equals": False}}]},
            }
        },
        "roles": {
            "member": {"grants": {"project": ["read"]}},
            "editor": {"grants": {"active_projects": ["rename"]}},
        },
        "users": {
            f"u{u}": {"roles": {f"t{u % TENANTS}": ["member", "editor"]}} for u in range(USERS)
        },
    }
    if not facts:
        return model
    for u in range(USERS):
        user = model["users"][f"u{u}"]
        if u < WORKSPACES:  # the admins hold their workspace only: derived ownership
            user["resource_roles"] = {f"workspace:w{u}": ["admin"]}
        else:
            user["resource_roles"] = {f"project:p{(u * 7) % instances}": ["owner"]}
    model["resource_instances"] = {
        f"project:p{p}": {
            "tenant": f"t{(p % WORKSPACES) % TENANTS}",
            "attributes": {"archived": p >= instances - 100},
        }
        for p in range(instances)
    } | {f"workspace:w{w}": {"tenant": f"t{w % TENANTS}"} for w in range(WORKSPACES)}
    model["relationships"] = [
        {"subject": f"workspace:w{p % WORKSPACES}", "relation": "parent", "object": f"project:p{p}"}
        for p in range(instances)
    ]
    return model


def ask(user: int, action: str, key: str | None, tenant: int, **attributes: Any) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=f"u{user}"),
        action=action,
        resource=Resource(type="project", key=key, tenant=f"t{tenant}", attributes=attributes),
    )


def requests(instances: int) -> dict[str, tuple[list[AuthzRequest], bool]]:
    """Each kind's requests (1,000 distinct ones), and the answer every one must get."""
    n = range(1_000)
    listing = {"mcp_method": "tools/list"}
    return {
        "rbac": ([ask(u, "read", None, u % TENANTS) for u in n], True),
        # An active project of the user's tenant, named with another tenant.
        "instance": ([ask(u, "rename", f"p{_active(u, instances)}", u + 1) for u in n], True),
        "assigned": ([ask(u, "delete", f"p{(u * 7) % instances}", 0) for u in n[100:]], True),
        "derived": ([ask(w, "delete", f"p{w + WORKSPACES * (w % 50)}", 0) for w in n[:100]], True),
        "denied": ([ask(u, "delete", f"p{(u * 7 + 1) % instances}", 0) for u in n[100:]], False),
        "listing": ([ask(w, "delete", None, 0, **listing) for w in n[:100]], True),
    }


def _active(user: int, instances: int) -> int:
    # p % 100 % 10 is the tenant of project p; the last 100 projects are archived.
    tenant = user % TENANTS
    return (tenant + TENANTS * (1 + user % 7) + WORKSPACES * (user % 40)) % (instances - 100)


def rate(engine: LocalPolicyEngine, batch: list[AuthzRequest], expected: bool) -> float:
    """Decisions per second over ``batch`` (each answer checked)."""
    decide = engine.decide
    started = time.perf_counter()
    for request in batch:
        if decide(request).allowed is not expected:
            raise SystemExit(f"wrong decision for {request}")
    return len(batch) / (time.perf_counter() - started)


async def changes(engine: LocalPolicyEngine, count: int) -> float:
    """Seconds per create instance + tuple + owner assignment, through ``engine.api``."""
    api = engine.api
    started = time.perf_counter()
    for i in range(count):
        await api.resource_instances.create(
            {"key": f"new{i}", "resource": "project", "tenant": "t0"}
        )
        await api.relationship_tuples.create(
            {"subject": "workspace:w0", "relation": "parent", "object": f"project:new{i}"}
        )
        await api.role_assignments.assign(
            {"user": "u1", "role": "owner", "tenant": "t0", "resource_instance": f"project:new{i}"}
        )
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    engine = LocalPolicyEngine.from_dict(policy(args.instances, facts=True))
    loaded = time.perf_counter() - started
    baseline = LocalPolicyEngine.from_dict(policy(args.instances, facts=False))
    kinds = requests(args.instances)
    rbac_batch, _ = kinds["rbac"]
    rates: dict[str, list[float]] = {"baseline rbac": [], **{kind: [] for kind in kinds}}
    names = list(rates)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            if name == "baseline rbac":
                rates[name].append(rate(baseline, rbac_batch, True))
            else:
                batch, expected = kinds[name]
                rates[name].append(rate(engine, batch, expected))
    base = statistics.median(rates["baseline rbac"])
    facts = engine.facts
    tuples = sum(len(links) for links in facts.parents.values())
    print(
        f"{len(facts.instances):,} instances, {tuples:,} tuples, {USERS:,} users; "
        f"loaded and checked in {loaded:.2f} s; median of {args.rounds} rounds"
    )
    print(f"{'decision':<16} {'decisions/s':>12} {'ratio to baseline':>18}")
    for name, samples in rates.items():
        median = statistics.median(samples)
        print(f"{name:<16} {median:>12,.0f} {median / base:>18.2f}")
    seconds = asyncio.run(changes(engine, 200))
    print(f"directory change (instance + tuple + assignment): {seconds * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
