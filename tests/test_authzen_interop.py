"""The OpenID AuthZEN interop Todo scenario through AuthZENEngine -> LocalPDP, every decision.

The decision table is the scenario's, for Authorization API 1.0 draft 02 (the
last of the Todo tables): github.com/openid/authzen, file
interop/authzen-todo-backend/test/decisions-authorization-api-1_0-02.json at
commit 4b0ae368fefc8120d8c0ea717a8d1759a886f7ae. Its 40 single evaluations
and 3 batches are restated below row by row (subject, action, resource,
owner, expected); the policy is tests/policies/authzen-todo.yaml.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from permit_guard import AuthZENEngine, AuthzRequest, Principal, Resource
from permit_guard.testing import LocalPDP

POLICY = Path(__file__).parent / "policies" / "authzen-todo.yaml"

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
MORTY = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
SUMMER = "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
JERRY = "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
TODO = "7240d0db-8ff0-41ec-98b2-34a096273b9"  # + the last digit

# The todos of the table: (id, ownerID).
T92 = (TODO + "2", "rick@the-citadel.com")
T91 = (TODO + "1", "morty@the-citadel.com")
T93 = (TODO + "3", "summer@the-smiths.com")
T94 = (TODO + "4", "beth@the-smiths.com")
T95 = (TODO + "5", "jerry@the-smiths.com")

Target = str | tuple[str, str]  # a user's email, a todo id, or (todo id, ownerID)
Row = tuple[str, str, str, Target, bool]


def _rows(who: str, email: str, own: tuple[str, str], editor: bool, admin: bool) -> list[Row]:
    """One user's eight rows, in the table's order (Beth's second one reads Beth again)."""
    evil = who == RICK
    return [
        (who, "can_read_user", "user", "beth@the-smiths.com", True),
        (who, "can_read_user", "user", email, True),
        (who, "can_read_todos", "todo", "todo-1", True),
        (who, "can_create_todo", "todo", "todo-1", editor),
        (who, "can_update_todo", "todo", T92, evil),
        (who, "can_update_todo", "todo", own, editor),
        (who, "can_delete_todo", "todo", T92, admin),
        (who, "can_delete_todo", "todo", own, editor),
    ]


EVALUATION: list[Row] = [
    *_rows(RICK, "rick@the-citadel.com", T91, editor=True, admin=True),
    *_rows(MORTY, "morty@the-citadel.com", T91, editor=True, admin=False),
    *_rows(SUMMER, "summer@the-smiths.com", T93, editor=True, admin=False),
    *_rows(BETH, "beth@the-smiths.com", T94, editor=False, admin=False),
    *_rows(JERRY, "jerry@the-smiths.com", T95, editor=False, admin=False),
]

# (subject, action, todos, expected): every batch shares its subject and action.
EVALUATIONS = [
    (RICK, "can_update_todo", [T92, T95], [True, True]),
    (MORTY, "can_update_todo", [T92, T91], [False, True]),
    (JERRY, "can_update_todo", [T92, T95], [False, False]),
]


def _resource(kind: str, target: Target) -> dict[str, Any]:
    """The table's resource: a todo it acts on carries its ownerID."""
    if isinstance(target, tuple):
        return {"type": kind, "id": target[0], "properties": {"ownerID": target[1]}}
    return {"type": kind, "id": target}


def _wire(subject: str, action: str, kind: str, target: Target) -> dict[str, Any]:
    """A row as the table writes its request."""
    return {
        "subject": {"type": "user", "id": subject},
        "action": {"name": action},
        "resource": _resource(kind, target),
    }


def _request(subject: str, action: str, kind: str, target: Target) -> AuthzRequest:
    """A row as the guard would ask it."""
    resource = _resource(kind, target)
    return AuthzRequest(
        user=Principal(key=subject),
        action=action,
        resource=Resource(type=kind, key=resource["id"], attributes=resource.get("properties", {})),
    )


@pytest.fixture
async def pdp() -> AsyncIterator[LocalPDP]:
    """A LocalPDP deciding with the Todo policy."""
    async with LocalPDP.from_file(POLICY) as server:
        yield server


def test_the_table_is_complete() -> None:
    """All 40 single evaluations and 3 batches of the scenario are restated."""
    assert len(EVALUATION) == 40
    assert sum(expected for *_, expected in EVALUATION) == 26
    assert len(EVALUATIONS) == 3


async def test_every_single_evaluation_through_the_engine(pdp: LocalPDP) -> None:
    """AuthZENEngine.check gives every expected decision of the table, one evaluation each."""
    async with AuthZENEngine(pdp.url, token=pdp.api_key) as engine:
        got = [(await engine.check(_request(*row[:4]))).allowed for row in EVALUATION]
    assert got == [expected for *_, expected in EVALUATION]
    assert pdp.requests_by_path == {
        "/.well-known/authzen-configuration": 1,
        "/access/v1/evaluation": 40,
    }
    assert pdp.errors == []


async def test_every_batch_through_the_engine(pdp: LocalPDP) -> None:
    """AuthZENEngine.check_many gives every batch's expected decisions, one request per batch."""
    async with AuthZENEngine(pdp.url, token=pdp.api_key) as engine:
        for subject, action, todos, expected in EVALUATIONS:
            requests = [_request(subject, action, "todo", todo) for todo in todos]
            assert [d.allowed for d in await engine.check_many(requests)] == expected
        # The whole single-evaluation table, as one list: one round trip.
        pdp.reset()
        decisions = await engine.check_many([_request(*row[:4]) for row in EVALUATION])
    assert [d.allowed for d in decisions] == [expected for *_, expected in EVALUATION]
    assert pdp.requests_by_path == {"/access/v1/evaluations": 1}
    assert len(pdp.bodies[0]["evaluations"]) == 40


async def test_the_tables_own_requests_as_sent_by_the_interop_runner(pdp: LocalPDP) -> None:
    """The table's requests posted as written (batches with top-level defaults) get its answers."""
    headers = {"Authorization": f"Bearer {pdp.api_key}", "Content-Type": "application/json"}
    answers: list[Any] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        for row in EVALUATION:
            url = pdp.url + "/access/v1/evaluation"
            async with http.post(url, data=json.dumps(_wire(*row[:4]))) as response:
                assert response.status == 200
                answers.append((await response.json())["decision"])
        for subject, action, todos, _ in EVALUATIONS:
            body = {
                "subject": {"type": "user", "id": subject},
                "action": {"name": action},
                "evaluations": [{"resource": _resource("todo", todo)} for todo in todos],
            }
            url = pdp.url + "/access/v1/evaluations"
            async with http.post(url, data=json.dumps(body)) as response:
                assert response.status == 200
                answers.append(
                    [item["decision"] for item in (await response.json())["evaluations"]]
                )
    expected = [e for *_, e in EVALUATION] + [e for *_, e in EVALUATIONS]
    assert answers == expected
