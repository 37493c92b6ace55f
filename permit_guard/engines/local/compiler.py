"""Conditions in Permit's JSON form: checked and compiled once, at load time.

A condition is a mapping. A logical node is ``{"allOf": [...]}``,
``{"anyOf": [...]}`` or ``{"not": {...}}``, nesting freely; a leaf compares
attributes of the request, ``{"resource.arg_amount": {"less-than-equals": 100}}``
(several attributes, or several operators on one attribute, must all hold). An
operand may be ``{"ref": "user.key"}`` to compare with another attribute of the
request instead of a literal.

A comparison on a missing attribute, or on values of different kinds (a string
and a number; ``true`` is not a number), is false: never an error, never an
allow. :meth:`~permit_guard.engines.local.conditions.Condition.may_hold`
evaluates the same condition in three-valued (Kleene) logic, where a *resource*
attribute absent from the request is unknown rather than false; the local
engine uses it when it answers for lists.

Example:
    >>> from permit_guard.engines.local.conditions import UNKNOWN, Subject
    >>> from permit_guard.model import Resource
    >>> problems: list[str] = []
    >>> small = compile_condition(
    ...     {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
    ...     location="resource_sets.small_refunds.condition",
    ...     problems=problems,
    ... )
    >>> problems
    []
    >>> call = Resource(type="mcp_server", attributes={"arg_amount": 50})
    >>> small.holds(Subject(user_key="bob", user_attributes={}, resource=call))
    True
    >>> listing = Resource(type="mcp_server", attributes={"mcp_method": "tools/list"})
    >>> small.holds(Subject(user_key="bob", user_attributes={}, resource=listing))
    False
    >>> small.may_hold(Subject(user_key="bob", user_attributes={}, resource=listing)) is UNKNOWN
    True
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Final

from permit_guard.engines.local.conditions import (
    MISSING,
    Condition,
    Getter,
    Node,
    Subject,
    all_of,
    any_of,
    constant,
    literal_leaf,
    negation,
    ref_leaf,
)
from permit_guard.engines.local.operators import (
    OPERATORS,
    OPERATORS_BY_NAME,
    describe,
    json_kind,
    kinds_phrase,
    literal_test,
)
from permit_guard.explanation import ConditionTrace, show_value

__all__ = ["LOGICAL_OPERATORS", "child_location", "compile_condition"]

#: The logical keys of a condition mapping.
LOGICAL_OPERATORS: Final = ("allOf", "anyOf", "not")

_USER = "user."
_RESOURCE = "resource."

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def child_location(parent: str, key: object) -> str:
    """The location of ``key`` inside ``parent``, for load-time error messages.

    Args:
        parent: The parent's location (``""`` for the top level).
        key: A mapping key or a list index.

    Returns:
        ``parent.key`` for plain keys, ``parent[0]`` for indexes and
        ``parent['odd key']`` for keys with dots, spaces or other characters.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{parent}[{key}]"
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{key!r}]"


def _attribute(
    path: object, location: str, problems: list[str], *, hint: str = ""
) -> tuple[Getter, bool] | None:
    """A getter for ``user.<name>`` / ``resource.<name>``, and whether it reads the resource."""
    if isinstance(path, str):
        if path.startswith(_USER) and len(path) > len(_USER):
            name = path[len(_USER) :]
            if name == "key":
                return (lambda s: s.user_key), False
            return (lambda s: s.user_attributes.get(name, MISSING)), False
        if path.startswith(_RESOURCE) and len(path) > len(_RESOURCE):
            name = path[len(_RESOURCE) :]
            if name == "key":
                return (lambda s: MISSING if s.resource.key is None else s.resource.key), True
            if name == "type":
                return (lambda s: s.resource.type), True
            if name == "tenant":
                return (lambda s: s.resource.tenant), True
            return (lambda s: s.resource.attributes.get(name, MISSING)), True
    problems.append(
        f"{location}: unknown attribute {path!r} (an attribute starts with 'user.' or "
        f"'resource.'{hint})"
    )
    return None


def _compile(raw: object, location: str, problems: list[str]) -> Node | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{location}: a condition is a mapping, not {describe(raw)}")
        return None
    if not raw:
        problems.append(f"{location}: empty condition")
        return None
    logical = [key for key in raw if key in LOGICAL_OPERATORS]
    if logical:
        if len(raw) > 1:
            others = ", ".join(repr(k) for k in raw if k != logical[0])
            problems.append(
                f"{location}: {logical[0]!r} must be the only key of its mapping "
                f"(also found: {others}); combine them inside an 'allOf'"
            )
            return None
        return _compile_logical(logical[0], raw[logical[0]], location, problems)
    nodes: list[Node | None] = []
    for path, comparisons in raw.items():
        nodes.extend(_compile_attribute(path, comparisons, location, problems))
    if any(node is None for node in nodes):
        return None
    return all_of([node for node in nodes if node is not None])


def _compile_logical(key: str, value: object, location: str, problems: list[str]) -> Node | None:
    here = child_location(location, key)
    if key == "not":
        inner = _compile(value, here, problems)
        return None if inner is None else negation(inner)
    if not isinstance(value, list):
        problems.append(f"{here}: expected a list of conditions, not {describe(value)}")
        return None
    children = [_compile(item, child_location(here, i), problems) for i, item in enumerate(value)]
    kept = [c for c in children if c is not None]
    if len(kept) < len(children):
        return None
    if not kept:
        # Vacuous truth: allOf [] holds, anyOf [] does not.
        return constant(key == "allOf")
    return all_of(kept) if key == "allOf" else any_of(kept)


def _compile_attribute(
    path: object, comparisons: object, location: str, problems: list[str]
) -> list[Node | None]:
    here = child_location(location, path)
    logical = f"; the logical keys are {', '.join(LOGICAL_OPERATORS)}"
    attribute = _attribute(path, here, problems, hint=logical)
    if attribute is None:
        # What follows an unknown name is probably not a comparison at all.
        return [None]
    if not isinstance(comparisons, Mapping) or not comparisons:
        found = "an empty mapping" if isinstance(comparisons, Mapping) else describe(comparisons)
        problems.append(f"{here}: expected a mapping {{operator: operand}}, not {found}")
        return [None]
    nodes: list[Node | None] = []
    for operator, operand in comparisons.items():
        node = _compile_comparison(attribute, str(path), operator, operand, here, problems)
        nodes.append(node)
    return nodes


def _compile_comparison(
    attribute: tuple[Getter, bool],
    name: str,
    operator: object,
    operand: object,
    location: str,
    problems: list[str],
) -> Node | None:
    spec = OPERATORS_BY_NAME.get(operator) if isinstance(operator, str) else None
    if spec is None or not isinstance(operator, str):
        close = difflib.get_close_matches(str(operator), OPERATORS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            f"{location}: unknown operator {operator!r} ({hint}known: {', '.join(OPERATORS)})"
        )
        return None
    here = child_location(location, operator)
    if isinstance(operand, Mapping):
        if set(operand) != {"ref"}:
            problems.append(
                f"{here}: a mapping operand must be {{ref: <user.* or resource.* attribute>}}"
            )
            return None
        other = _attribute(operand["ref"], child_location(here, "ref"), problems)
        if other is None:
            return None
        return ref_leaf(
            attribute[0],
            attribute[1],
            other[0],
            other[1],
            spec.compare,
            label=(name, operator, str(operand["ref"])),
        )
    kind = json_kind(operand)
    if kind not in spec.operand_kinds:
        problems.append(
            f"{here}: {operator!r} takes {kinds_phrase(spec.operand_kinds)} "
            f"(or a {{ref: ...}}), not {describe(operand)}"
        )
        return None
    if kind == "number" and isinstance(operand, float) and math.isnan(operand):
        problems.append(f"{here}: NaN equals and orders with nothing; use a number")
        return None
    label = (name, f"{operator} {show_value(operand)}")
    return literal_leaf(attribute[0], attribute[1], literal_test(operator, operand), label=label)


def _never(_subject: Subject) -> bool:
    return False


def _never_explained(_subject: Subject, _three_valued: bool) -> ConditionTrace:
    return ConditionTrace(text="an invalid condition", value=False)


def compile_condition(raw: object, *, location: str, problems: list[str]) -> Condition:
    """Check a condition and compile it for fast evaluation.

    Every problem found is appended to ``problems`` (one line each, starting
    with its location) rather than raised, so a policy loader can report all of
    them at once.

    Args:
        raw: The condition as parsed from YAML or JSON.
        location: Where the condition stands, e.g. ``resource_sets.small.condition``.
        problems: Receives one line per problem.

    Returns:
        The compiled condition; when ``problems`` grew, a condition that never
        holds (the caller is expected to reject the policy).
    """
    before = len(problems)
    try:
        node = _compile(raw, location, problems)
    except RecursionError:
        problems.append(f"{location}: the condition is nested too deeply")
        node = None
    if node is None or len(problems) > before:
        return Condition(holds=_never, may_hold=_never, explain=_never_explained)
    return Condition(holds=node[0], may_hold=node[1], explain=node[2])
