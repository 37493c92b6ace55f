"""The embedded engine alone: decisions per second on one core, and how they scale.

    .venv/bin/python benchmarks/engine.py                  # about a minute
    .venv/bin/python benchmarks/engine.py --seconds 5 --sizes 1000 10000

1. ``bench_engine``: 5,000 mixed requests; 100 roles, 1,000 users and 50
   resource sets with a condition on ``resource.arg_amount`` (``big_policy``).
2. ``bench_scale``: the project tracker of ``benchmarks/facts.py`` with N
   users, N projects (instances) and N tuples, for each N. Four kinds of
   decision, 900 distinct requests each, spread over all the users and
   projects, measured side by side in rotating rounds: rbac (a tenant role on
   the type), instance (a known instance, decided in its tenant on its
   attributes: a resource set), assigned (a resource role on the instance),
   derived (``owner`` derived from ``admin`` on the project's workspace).
   ``steady``: once each question was asked; ``first use``: each the first
   time in a new state of the facts, which remembers no plans. Decision time
   is flat when the ratios to the smallest N stay near 1.

Every loop is bounded by a deadline; nothing leaves the process.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from facts import TENANTS, ask
from facts import policy as tracker_model

from permit_guard import AuthzRequest, LocalPolicyEngine, Principal, Resource
from permit_guard.engines.local.facts import Facts
from permit_guard.engines.local.policy import Policy

__all__ = ["bench_engine", "bench_scale", "big_policy", "scaled_engine", "tracker"]

#: The kinds of decision ``bench_scale`` measures, in table order, and what their reasons say.
KINDS = {
    "rbac": "role 'member' grants project:read",
    "instance": "on resource set 'active_projects'",
    "assigned": "resource role 'owner' on project:",
    "derived": "(derived: 'admin' on workspace:",
}

#: The distinct requests of each kind (fewer than the users who hold no workspace).
QUESTIONS = 900

#: Spreads the questions over the whole range (coprime to every size measured).
STRIDE = 7919


def big_policy(seed: int = 7) -> tuple[dict[str, Any], list[AuthzRequest]]:
    """100 roles, 1,000 users, 50 resource sets; and a mix of requests."""
    rng = random.Random(seed)
    actions = [f"action-{i}" for i in range(20)]
    resources = {f"type_{t}": {"actions": actions} for t in range(10)}
    sets = {
        f"set_{s}": {
            "resource": f"type_{s % 10}",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 10 * (s + 1)}}]},
        }
        for s in range(50)
    }
    roles = {}
    for r in range(100):
        grants: dict[str, list[str]] = {}
        for t in rng.sample(range(10), 3):
            grants[f"type_{t}"] = rng.sample(actions, 5)
        for s in rng.sample(range(50), 2):
            grants[f"set_{s}"] = rng.sample(actions, 3)
        roles[f"role_{r}"] = {"grants": grants}
    users = {
        f"user_{u}": {
            "roles": {"default": [f"role_{r}" for r in rng.sample(range(100), 2)]},
            "attributes": {"department": rng.choice(["finance", "sales", "ops"])},
        }
        for u in range(1000)
    }
    policy = {"resources": resources, "resource_sets": sets, "roles": roles, "users": users}
    requests = [
        AuthzRequest(
            user=Principal(key=f"user_{rng.randrange(1200)}"),
            action=rng.choice(actions),
            resource=Resource(
                type=f"type_{rng.randrange(10)}",
                attributes={"arg_amount": rng.randrange(600), "mcp_method": "tools/call"},
            ),
        )
        for _ in range(5000)
    ]
    return policy, requests


def bench_engine(seconds: float) -> dict[str, Any]:
    """Decisions per second for :func:`big_policy`, the median of five slices of ``seconds``."""
    policy, requests = big_policy()
    started = time.perf_counter()
    engine = LocalPolicyEngine.from_dict(policy)
    load_ms = (time.perf_counter() - started) * 1e3
    for request in requests[:500]:
        engine.decide(request)
    rates = [_rate(engine, requests, seconds / 5) for _ in range(5)]
    allowed = sum(engine.decide(r).allowed for r in requests)
    return {
        "decisions_per_s": round(statistics.median(rates)),
        "load_ms": round(load_ms, 1),
        "allowed_share": round(allowed / len(requests), 3),
    }


def tracker(size: int) -> dict[str, Any]:
    """The tracker's model with ``size`` users, projects and tuples, and size/10 workspaces."""
    workspaces = size // 10
    model = tracker_model(size, facts=False)
    model["users"] = {
        f"u{u}": {
            "roles": {f"t{u % TENANTS}": ["member", "editor"]},
            "resource_roles": (
                {f"workspace:w{u}": ["admin"]}
                if u < workspaces
                else {f"project:p{(u * 7) % size}": ["owner"]}
            ),
        }
        for u in range(size)
    }
    # Project p is in workspace p % workspaces, so in tenant p % TENANTS, as its workspace.
    model["resource_instances"] = {
        f"project:p{p}": {"tenant": f"t{p % TENANTS}", "attributes": {"archived": False}}
        for p in range(size)
    } | {f"workspace:w{w}": {"tenant": f"t{w % TENANTS}"} for w in range(workspaces)}
    model["relationships"] = [
        {"subject": f"workspace:w{p % workspaces}", "relation": "parent", "object": f"project:p{p}"}
        for p in range(size)
    ]
    return model


def scaled_engine(size: int) -> tuple[LocalPolicyEngine, Facts]:
    """The tracker at ``size`` and its facts, published whole (``engine.swap``).

    A policy holds at most ``bounds.MAX_NODES`` values: fewer than 100,000 users and their roles.
    """
    engine = LocalPolicyEngine.from_dict(tracker_model(size, facts=False))
    facts = Facts.build(Policy.model_validate(tracker(size)))
    engine.swap(engine.policy, facts)
    return engine, facts


def questions(size: int) -> dict[str, list[AuthzRequest]]:
    """Each kind's :data:`QUESTIONS` distinct requests, every one to be allowed."""
    workspaces, asked = size // 10, range(QUESTIONS)
    users = [(i * STRIDE) % size for i in asked]
    return {
        "rbac": [ask(u, "read", None, u % TENANTS) for u in users],
        # A project of the user's tenant they do not own, named with another tenant.
        "instance": [ask(u, "rename", f"p{_not_owned(u, size)}", u + 1) for u in users],
        "assigned": [
            ask(u, "delete", f"p{(u * 7) % size}", 0)
            for u in (workspaces + (i * STRIDE) % (size - workspaces) for i in asked)
        ],
        # Admin w of workspace w, on one of its 10 projects w + workspaces * j.
        "derived": [
            ask(w, "delete", f"p{w + workspaces * (i // workspaces % 10)}", 0)
            for i, w in ((i, (i * STRIDE) % workspaces) for i in asked)
        ],
    }


def _not_owned(user: int, size: int) -> int:
    # Projects p and p + TENANTS are in the user's tenant; one of them is not theirs.
    project = (user * 31) % size // TENANTS * TENANTS + user % TENANTS
    return (project + TENANTS) % size if project == (user * 7) % size else project


def _rate(engine: LocalPolicyEngine, batch: list[AuthzRequest], seconds: float) -> float:
    """Decisions per second over passes through ``batch``: one, then more until ``seconds``."""
    decide = engine.decide
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:  # bounded by the deadline
        for request in batch:
            decide(request)
        count += len(batch)
        if time.perf_counter() >= deadline:
            return count / (time.perf_counter() - started)


def bench_scale(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000), *, seconds: float
) -> dict[str, Any]:
    """Decisions per second of each kind at each size, over about ``seconds`` of measuring.

    Returns:
        ``{size: {kind: {"steady": per s, "first_use": per s}}}``, plus
        ``"load_s"``: the seconds each size took to load.
    """
    engines, load_s = {}, {}
    for size in sizes:
        started = time.perf_counter()
        engine, facts = scaled_engine(size)
        load_s[str(size)] = round(time.perf_counter() - started, 2)
        engines[size] = engine, facts, questions(size)
        for kind, batch in engines[size][2].items():
            for request in batch:
                decision = engine.decide(request)
                if not decision.allowed or KINDS[kind] not in decision.reason:
                    raise SystemExit(f"{size}, {kind}: {request} -> {decision.reason}")
    slots, rounds = [(size, kind) for size in sizes for kind in KINDS], 7
    rates: dict[tuple[int, str, str], list[float]] = {}
    for round_ in range(rounds):
        for size, kind in slots[round_ % len(slots) :] + slots[: round_ % len(slots)]:
            engine, facts, batches = engines[size]
            engine.swap(engine.policy, facts)  # a new state of the same facts, with no plans
            once = _rate(engine, batches[kind], 0.0)
            again = _rate(engine, batches[kind], seconds / rounds / len(slots))
            rates.setdefault((size, kind, "first_use"), []).append(once)
            rates.setdefault((size, kind, "steady"), []).append(again)
    return {"load_s": load_s} | {
        str(size): {
            kind: {
                how: round(statistics.median(rates[size, kind, how]))
                for how in ("steady", "first_use")
            }
            for kind in KINDS
        }
        for size in sizes
    }


def table(engine: dict[str, Any], scale: dict[str, Any]) -> str:
    """Both benchmarks' results as text."""
    sizes = [key for key in scale if key != "load_s"]
    lines = [
        "1. LocalPolicyEngine alone (100 roles, 1,000 users, 50 resource sets)",
        f"   {engine['decisions_per_s']:,} decisions/s on one core "
        f"(policy loads in {engine['load_ms']} ms; {engine['allowed_share']:.1%} allowed)",
        "",
        "2. decisions/s by size (N users, N instances, N tuples); ratio to the smallest N",
        f"   {'N':>8} {'kind':<9} {'steady':>11} {'ratio':>6} {'first use':>11} {'ratio':>6}",
    ]
    for size in sizes:
        for kind in KINDS:
            now, base = scale[size][kind], scale[sizes[0]][kind]
            cells = (f" {now[how]:>11,} {now[how] / base[how]:>6.2f}" for how in now)
            lines.append(f"   {int(size):>8,} {kind:<9}{''.join(cells)}")
    loads = ", ".join(f"{int(size):,}: {took} s" for size, took in scale["load_s"].items())
    return "\n".join([*lines, f"   loaded in {loads}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time in all")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    engine = bench_engine(seconds=args.seconds / 6)
    scale = bench_scale(tuple(args.sizes), seconds=args.seconds * 5 / 6)
    print(table(engine, scale))


if __name__ == "__main__":
    main()
