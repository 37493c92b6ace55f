"""Decision test suites: what a suite file holds, as checked values.

A suite is a YAML table of requests and the answers the guard must give,
read by :func:`~permit_guard.cli.suite_read.read_suite` and run by
``permit-guard test`` (:mod:`~permit_guard.cli.suite_run`)::

    server: app.py:mcp              # relative to this file's folder
    policy: policy.yaml             # optional: else the server's own engine
    data: facts.yaml                # optional, with policy: its facts replace the policy's
    cases:
      - name: viewers read their tenant's projects
        user: bob
        tenant: acme                # optional
        attributes: {department: eng}
        tool: get_project           # or resource: URI, or prompt: NAME
        args: {project_id: acme-1}
        expect: allow               # allow | deny
      - name: bob's tool list
        user: bob
        list: tools                 # tools | resources | resource_templates | prompts
        visible: [get_project]
        hidden: [delete_project]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from permit_guard.exceptions import ConfigurationError
from permit_guard.methods import Kind

__all__ = [
    "CASE_KEYS",
    "LIST_KINDS",
    "SUITE_KEYS",
    "CallCase",
    "Caller",
    "Case",
    "ListCase",
    "Problem",
    "Suite",
    "SuiteError",
]

#: What a list case's ``list:`` names, and the kind of component each list holds.
LIST_KINDS: Final[Mapping[str, Kind]] = {
    "tools": "tool",
    "resources": "resource",
    "resource_templates": "template",
    "prompts": "prompt",
}

#: The keys of a suite.
SUITE_KEYS: Final = ("server", "policy", "data", "cases")

#: The keys of a case.
CASE_KEYS: Final = (
    "name",
    "user",
    "tenant",
    "attributes",
    "tool",
    "resource",
    "prompt",
    "list",
    "args",
    "key",
    "expect",
    "visible",
    "hidden",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """Why a suite cannot run, and where.

    Attributes:
        file: The suite file, as given.
        line: The line (1-based) at fault, ``None`` for the file as a whole.
        message: What is wrong, and what would be right.
    """

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class SuiteError(ConfigurationError):
    """A suite that cannot run.

    Attributes:
        problems: Every problem found, in file order.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, kw_only=True, slots=True)
class Caller:
    """Who a case asks as: the :class:`~permit_guard.model.Principal` the guard is given.

    Attributes:
        user: The user key.
        tenant: The caller's tenant (``None``: the default one).
        attributes: The user's attributes.
    """

    user: str
    tenant: str | None = None
    attributes: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class CallCase:
    """A call, read or render, and whether the guard must allow it.

    Attributes:
        name: The case's name, unique in its suite.
        line: Where the case starts.
        caller: Who asks.
        kind: ``tool``, ``resource`` (a URI, static or templated) or ``prompt``.
        target: The tool or prompt name, or the URI.
        arguments: Tool or prompt arguments, as a client sends them.
        key: The resource instance key (the component's ``key=`` argument).
        allow: The answer expected.
    """

    name: str
    line: int
    caller: Caller
    kind: Literal["tool", "resource", "prompt"]
    target: str
    arguments: Mapping[str, Any]
    key: str | None = None
    allow: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ListCase:
    """A list, and which components must be in it and which must not.

    Attributes:
        name: The case's name, unique in its suite.
        line: Where the case starts.
        caller: Who asks.
        kind: The kind of component the list holds.
        visible: Names (URIs, URI templates) that must be listed.
        hidden: Names that must not be.
    """

    name: str
    line: int
    caller: Caller
    kind: Kind
    visible: tuple[str, ...]
    hidden: tuple[str, ...]


Case = CallCase | ListCase


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite:
    """A suite file, checked.

    Attributes:
        file: The suite file, as given.
        server: The server to load, its file part relative to the current folder.
        server_line: Where ``server:`` stands.
        policy: The policy file, if the suite names one.
        data: The data file that goes with the policy, if any.
        policy_line: Where ``policy:`` stands.
        cases: The cases, in file order.
    """

    file: str
    server: str
    server_line: int
    policy: Path | None = None
    data: Path | None = None
    policy_line: int | None = None
    cases: tuple[Case, ...]
