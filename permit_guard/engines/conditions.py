"""Conditions in Permit's JSON form: checked and compiled once, evaluated per request.

A condition is a mapping. A logical node is ``{"allOf": [...]}``,
``{"anyOf": [...]}`` or ``{"not": {...}}``, nesting freely; a leaf compares
attributes of the request, ``{"resource.arg_amount": {"less-than-equals": 100}}``
(several attributes, or several operators on one attribute, must all hold). An
operand may be ``{"ref": "user.key"}`` to compare with another attribute of the
request instead of a literal.

A comparison on a missing attribute, or on values of different kinds (a string
and a number; ``true`` is not a number), is false: never an error, never an
allow. :meth:`Condition.may_hold` evaluates the same condition in three-valued
(Kleene) logic, where a *resource* attribute absent from the request is unknown
rather than false; the local engine uses it when it answers for lists.

Example:
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
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from permit_guard.model import Resource

__all__ = [
    "LOGICAL_OPERATORS",
    "OPERATORS",
    "UNKNOWN",
    "Condition",
    "Subject",
    "Truth",
    "child_location",
    "compile_condition",
    "json_equal",
]

#: A three-valued truth value: ``True``, ``False`` or :data:`UNKNOWN`.
Truth: TypeAlias = bool | None

#: The third truth value of :meth:`Condition.may_hold`.
UNKNOWN: Final = None

#: The logical keys of a condition mapping.
LOGICAL_OPERATORS: Final = ("allOf", "anyOf", "not")

_USER = "user."
_RESOURCE = "resource."


class _Missing:
    """The value of an attribute the request does not carry."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


@dataclass(frozen=True, kw_only=True, slots=True)
class Subject:
    """What a condition can see of one request.

    Attributes:
        user_key: The user key (``user.key``).
        user_attributes: The user's attributes (``user.<name>``).
        resource: The resource (``resource.key``, ``resource.type``,
            ``resource.tenant``; other ``resource.<name>`` are its attributes).
    """

    user_key: str
    user_attributes: Mapping[str, Any]
    resource: Resource


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Condition:
    """A compiled condition.

    Attributes:
        holds: Two-valued evaluation: a comparison on a missing attribute is false.
        may_hold: Three-valued (Kleene) evaluation: a comparison on a
            ``resource.*`` attribute absent from the request is :data:`UNKNOWN`;
            one on a missing ``user.*`` attribute is still false. It is never
            ``False`` where :attr:`holds` would be true for some values of the
            absent resource attributes.
    """

    holds: Callable[[Subject], bool]
    may_hold: Callable[[Subject], Truth]


# -- values -----------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    # bool is an int subclass, but a JSON true is not the number 1.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_array(value: object) -> bool:
    return isinstance(value, list | tuple)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float)


def _kind(value: object) -> str | None:
    """The JSON kind of a value, or None for something JSON has no word for."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    if value is None:
        return "null"
    return None


def json_equal(a: object, b: object) -> bool:
    """Whether two values are equal as JSON values.

    Numbers compare across ``int``/``float``; a boolean equals only a boolean;
    arrays and objects compare element by element. Values JSON cannot express
    are equal to nothing.

    Args:
        a: One value.
        b: The other value.

    Returns:
        True when both are the same JSON value.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float):
        return isinstance(b, int | float) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    if a is None:
        return b is None
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and len(a) == len(b)
            and all(k in b and json_equal(v, b[k]) for k, v in a.items())
        )
    return False


def _key(value: object) -> Hashable:
    """A hashable stand-in for a value, equal exactly when :func:`json_equal` is true."""
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, int | float):
        # NaN equals nothing, not even itself: give it a key nothing else has.
        return (1, value) if value == value else object()
    if isinstance(value, str):
        return (2, value)
    if value is None:
        return (3,)
    if isinstance(value, list | tuple):
        return (4, tuple(_key(v) for v in value))
    if isinstance(value, Mapping):
        return (5, frozenset((_key(k), _key(v)) for k, v in value.items()))
    return object()


# -- operators ---------------------------------------------------------------------------------

_Binary: TypeAlias = Callable[[object, object], bool]
_Unary: TypeAlias = Callable[[object], bool]


def _equals(a: object, b: object) -> bool:
    return json_equal(a, b)


def _not_equals(a: object, b: object) -> bool:
    # Values of different kinds are not comparable, so not "not equal" either.
    kind = _kind(a)
    return kind is not None and kind == _kind(b) and not json_equal(a, b)


def _greater_than(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and bool(a > b)


def _greater_than_equals(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and bool(a >= b)


def _less_than(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and bool(a < b)


def _less_than_equals(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and bool(a <= b)


def _contains(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and b in a


def _array_contains(a: Any, b: object) -> bool:
    return _is_array(a) and _is_scalar(b) and any(json_equal(x, b) for x in a)


def _array_subset(a: Any, b: Any) -> bool:
    return _is_array(a) and _is_array(b) and {_key(x) for x in a} <= {_key(y) for y in b}


def _array_superset(a: Any, b: Any) -> bool:
    return _is_array(a) and _is_array(b) and {_key(x) for x in a} >= {_key(y) for y in b}


def _array_intersect(a: Any, b: Any) -> bool:
    return _is_array(a) and _is_array(b) and not {_key(x) for x in a}.isdisjoint(map(_key, b))


@dataclass(frozen=True, slots=True)
class _Operator:
    compare: _Binary
    operand_kinds: tuple[str, ...]


_SCALAR_OR_ARRAY = ("string", "number", "boolean", "array")

#: Every comparison operator, with the kinds of literal operand it takes.
_OPERATORS: Final[Mapping[str, _Operator]] = {
    "equals": _Operator(_equals, _SCALAR_OR_ARRAY),
    "not-equals": _Operator(_not_equals, _SCALAR_OR_ARRAY),
    "greater-than": _Operator(_greater_than, ("number",)),
    "greater-than-equals": _Operator(_greater_than_equals, ("number",)),
    "less-than": _Operator(_less_than, ("number",)),
    "less-than-equals": _Operator(_less_than_equals, ("number",)),
    "contains": _Operator(_contains, ("string",)),
    "array_contains": _Operator(_array_contains, ("string", "number", "boolean")),
    "array_subset": _Operator(_array_subset, ("array",)),
    "array_superset": _Operator(_array_superset, ("array",)),
    "array_intersect": _Operator(_array_intersect, ("array",)),
}

#: The names of the comparison operators, in documentation order.
OPERATORS: Final = tuple(_OPERATORS)


def _literal_test(operator: str, operand: Any) -> _Unary:
    """The comparison with a fixed operand, specialised where that saves work per request."""
    if operator in ("equals", "not-equals") and isinstance(operand, str):
        if operator == "equals":
            return lambda a: isinstance(a, str) and a == operand
        return lambda a: isinstance(a, str) and a != operand
    if operator in ("array_subset", "array_superset", "array_intersect"):
        # The operand's keys are worked out once, not on every request.
        keys = frozenset(_key(v) for v in operand)

        def subset(a: Any) -> bool:
            return _is_array(a) and all(_key(x) in keys for x in a)

        def superset(a: Any) -> bool:
            return _is_array(a) and keys <= {_key(x) for x in a}

        def intersect(a: Any) -> bool:
            return _is_array(a) and any(_key(x) in keys for x in a)

        return {"array_subset": subset, "array_superset": superset}.get(operator, intersect)
    compare = _OPERATORS[operator].compare
    return lambda a: compare(a, operand)


# -- compiling ---------------------------------------------------------------------------------

_Getter: TypeAlias = Callable[[Subject], object]
_Node: TypeAlias = tuple[Callable[[Subject], bool], Callable[[Subject], Truth]]

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


def _a(kind: str) -> str:
    return f"an {kind}" if kind in ("array", "object") else f"a {kind}"


def _describe(value: object) -> str:
    kind = _kind(value)
    return _a(kind) if kind else type(value).__name__


def _kinds_phrase(kinds: Sequence[str]) -> str:
    articles = [_a(k) for k in kinds]
    if len(articles) == 1:
        return articles[0]
    return f"{', '.join(articles[:-1])} or {articles[-1]}"


def _attribute(
    path: object, location: str, problems: list[str], *, hint: str = ""
) -> tuple[_Getter, bool] | None:
    """A getter for ``user.<name>`` / ``resource.<name>``, and whether it reads the resource."""
    if isinstance(path, str):
        if path.startswith(_USER) and len(path) > len(_USER):
            name = path[len(_USER) :]
            if name == "key":
                return (lambda s: s.user_key), False
            return (lambda s: s.user_attributes.get(name, _MISSING)), False
        if path.startswith(_RESOURCE) and len(path) > len(_RESOURCE):
            name = path[len(_RESOURCE) :]
            if name == "key":
                return (lambda s: _MISSING if s.resource.key is None else s.resource.key), True
            if name == "type":
                return (lambda s: s.resource.type), True
            if name == "tenant":
                return (lambda s: s.resource.tenant), True
            return (lambda s: s.resource.attributes.get(name, _MISSING)), True
    problems.append(
        f"{location}: unknown attribute {path!r} (an attribute starts with 'user.' or "
        f"'resource.'{hint})"
    )
    return None


def _literal_leaf(get: _Getter, from_resource: bool, test: _Unary) -> _Node:
    absent: Truth = UNKNOWN if from_resource else False

    def holds(s: Subject) -> bool:
        value = get(s)
        if value is _MISSING:
            return False
        try:
            return test(value)
        except Exception:
            # Fail closed: a value that cannot be compared (nested too deeply,
            # a hostile __eq__...) does not match.
            return False

    def may_hold(s: Subject) -> Truth:
        value = get(s)
        if value is _MISSING:
            return absent
        try:
            return test(value)
        except Exception:
            return False  # fail closed, as in holds()

    return holds, may_hold


def _ref_leaf(
    get: _Getter, from_resource: bool, other: _Getter, other_from_resource: bool, compare: _Binary
) -> _Node:
    def holds(s: Subject) -> bool:
        a, b = get(s), other(s)
        if a is _MISSING or b is _MISSING:
            return False
        try:
            return compare(a, b)
        except Exception:
            return False  # fail closed, as for literal operands

    def may_hold(s: Subject) -> Truth:
        a, b = get(s), other(s)
        # A missing user attribute makes the comparison false whatever the
        # resource holds; only an absent resource attribute leaves it open.
        if (a is _MISSING and not from_resource) or (b is _MISSING and not other_from_resource):
            return False
        if a is _MISSING or b is _MISSING:
            return UNKNOWN
        try:
            return compare(a, b)
        except Exception:
            return False  # fail closed, as for literal operands

    return holds, may_hold


def _all(nodes: Sequence[_Node]) -> _Node:
    if len(nodes) == 1:
        return nodes[0]
    two = tuple(n[0] for n in nodes)
    three = tuple(n[1] for n in nodes)

    def holds(s: Subject) -> bool:
        return all(h(s) for h in two)

    def may_hold(s: Subject) -> Truth:
        result: Truth = True
        for h in three:
            value = h(s)
            if value is False:
                return False
            if value is UNKNOWN:
                result = UNKNOWN
        return result

    return holds, may_hold


def _any(nodes: Sequence[_Node]) -> _Node:
    if len(nodes) == 1:
        return nodes[0]
    two = tuple(n[0] for n in nodes)
    three = tuple(n[1] for n in nodes)

    def holds(s: Subject) -> bool:
        return any(h(s) for h in two)

    def may_hold(s: Subject) -> Truth:
        result: Truth = False
        for h in three:
            value = h(s)
            if value is True:
                return True
            if value is UNKNOWN:
                result = UNKNOWN
        return result

    return holds, may_hold


def _not(node: _Node) -> _Node:
    inner_holds, inner_may_hold = node

    def holds(s: Subject) -> bool:
        return not inner_holds(s)

    def may_hold(s: Subject) -> Truth:
        value = inner_may_hold(s)
        return UNKNOWN if value is UNKNOWN else not value

    return holds, may_hold


def _compile(raw: object, location: str, problems: list[str]) -> _Node | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{location}: a condition is a mapping, not {_describe(raw)}")
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
    nodes: list[_Node | None] = []
    for path, comparisons in raw.items():
        nodes.extend(_compile_attribute(path, comparisons, location, problems))
    if any(node is None for node in nodes):
        return None
    return _all([node for node in nodes if node is not None])


def _compile_logical(key: str, value: object, location: str, problems: list[str]) -> _Node | None:
    here = child_location(location, key)
    if key == "not":
        inner = _compile(value, here, problems)
        return None if inner is None else _not(inner)
    if not isinstance(value, list):
        problems.append(f"{here}: expected a list of conditions, not {_describe(value)}")
        return None
    children = [_compile(item, child_location(here, i), problems) for i, item in enumerate(value)]
    kept = [c for c in children if c is not None]
    if len(kept) < len(children):
        return None
    if not kept:
        # Vacuous truth: allOf [] holds, anyOf [] does not.
        constant = key == "allOf"
        return (lambda _s: constant), (lambda _s: constant)
    return _all(kept) if key == "allOf" else _any(kept)


def _compile_attribute(
    path: object, comparisons: object, location: str, problems: list[str]
) -> list[_Node | None]:
    here = child_location(location, path)
    logical = f"; the logical keys are {', '.join(LOGICAL_OPERATORS)}"
    attribute = _attribute(path, here, problems, hint=logical)
    if attribute is None:
        # What follows an unknown name is probably not a comparison at all.
        return [None]
    if not isinstance(comparisons, Mapping) or not comparisons:
        found = "an empty mapping" if isinstance(comparisons, Mapping) else _describe(comparisons)
        problems.append(f"{here}: expected a mapping {{operator: operand}}, not {found}")
        return [None]
    nodes: list[_Node | None] = []
    for operator, operand in comparisons.items():
        node = _compile_comparison(attribute, operator, operand, here, problems)
        nodes.append(node)
    return nodes


def _compile_comparison(
    attribute: tuple[_Getter, bool],
    operator: object,
    operand: object,
    location: str,
    problems: list[str],
) -> _Node | None:
    spec = _OPERATORS.get(operator) if isinstance(operator, str) else None
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
        return _ref_leaf(attribute[0], attribute[1], other[0], other[1], spec.compare)
    kind = _kind(operand)
    if kind not in spec.operand_kinds:
        problems.append(
            f"{here}: {operator!r} takes {_kinds_phrase(spec.operand_kinds)} "
            f"(or a {{ref: ...}}), not {_describe(operand)}"
        )
        return None
    if kind == "number" and isinstance(operand, float) and math.isnan(operand):
        problems.append(f"{here}: NaN equals and orders with nothing; use a number")
        return None
    return _literal_leaf(attribute[0], attribute[1], _literal_test(operator, operand))


def _never(_subject: Subject) -> bool:
    return False


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
        return Condition(holds=_never, may_hold=_never)
    return Condition(holds=node[0], may_hold=node[1])
