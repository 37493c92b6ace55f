"""The comparison operators of Permit conditions, and the JSON values they compare.

Values compare as JSON values: numbers across ``int``/``float``, a boolean only
with a boolean (``true`` is not the number 1), arrays and objects element by
element. A comparison on values of different kinds is false, never an error.

Example:
    >>> json_equal(1, 1.0), json_equal(True, 1), json_equal([1, "a"], (1.0, "a"))
    (True, False, True)
    >>> literal_test("less-than-equals", 100)(50)
    True
    >>> literal_test("less-than-equals", 100)("50")
    False
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

__all__ = [
    "OPERATORS",
    "OPERATORS_BY_NAME",
    "Comparison",
    "Operator",
    "Test",
    "describe",
    "json_equal",
    "json_kind",
    "kinds_phrase",
    "literal_test",
]

#: A comparison of an attribute's value (left) with an operand (right).
Comparison: TypeAlias = Callable[[object, object], bool]
#: A comparison whose operand is fixed.
Test: TypeAlias = Callable[[object], bool]


# -- values -----------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    # bool is an int subclass, but a JSON true is not the number 1.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_array(value: object) -> bool:
    return isinstance(value, list | tuple)


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float)


def json_kind(value: object) -> str | None:
    """The JSON kind of a value, or None for something JSON has no word for.

    Args:
        value: Any value.

    Returns:
        ``"boolean"``, ``"number"``, ``"string"``, ``"array"``, ``"object"``,
        ``"null"``, or ``None``.
    """
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


def _a(kind: str) -> str:
    return f"an {kind}" if kind in ("array", "object") else f"a {kind}"


def describe(value: object) -> str:
    """A value's kind for messages: ``a string``, ``an array``, or its Python type name."""
    kind = json_kind(value)
    return _a(kind) if kind else type(value).__name__


def kinds_phrase(kinds: Sequence[str]) -> str:
    """JSON kinds for messages: ``a string, a number or an array``."""
    articles = [_a(k) for k in kinds]
    if len(articles) == 1:
        return articles[0]
    return f"{', '.join(articles[:-1])} or {articles[-1]}"


# -- operators ---------------------------------------------------------------------------------


def _equals(a: object, b: object) -> bool:
    return json_equal(a, b)


def _not_equals(a: object, b: object) -> bool:
    # Values of different kinds are not comparable, so not "not equal" either.
    kind = json_kind(a)
    return kind is not None and kind == json_kind(b) and not json_equal(a, b)


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Operator:
    """One comparison operator.

    Attributes:
        compare: The comparison, false for values of kinds it does not compare.
        operand_kinds: The JSON kinds of literal operand it takes.
    """

    compare: Comparison
    operand_kinds: tuple[str, ...]


_SCALAR_OR_ARRAY = ("string", "number", "boolean", "array")

#: Every comparison operator, with the kinds of literal operand it takes.
OPERATORS_BY_NAME: Final[Mapping[str, Operator]] = {
    "equals": Operator(compare=_equals, operand_kinds=_SCALAR_OR_ARRAY),
    "not-equals": Operator(compare=_not_equals, operand_kinds=_SCALAR_OR_ARRAY),
    "greater-than": Operator(compare=_greater_than, operand_kinds=("number",)),
    "greater-than-equals": Operator(compare=_greater_than_equals, operand_kinds=("number",)),
    "less-than": Operator(compare=_less_than, operand_kinds=("number",)),
    "less-than-equals": Operator(compare=_less_than_equals, operand_kinds=("number",)),
    "contains": Operator(compare=_contains, operand_kinds=("string",)),
    "array_contains": Operator(
        compare=_array_contains, operand_kinds=("string", "number", "boolean")
    ),
    "array_subset": Operator(compare=_array_subset, operand_kinds=("array",)),
    "array_superset": Operator(compare=_array_superset, operand_kinds=("array",)),
    "array_intersect": Operator(compare=_array_intersect, operand_kinds=("array",)),
}

#: The names of the comparison operators, in documentation order.
OPERATORS: Final = tuple(OPERATORS_BY_NAME)


def literal_test(operator: str, operand: Any) -> Test:
    """The comparison with a fixed operand, specialised where that saves work per request.

    Args:
        operator: One of :data:`OPERATORS`.
        operand: A literal of a kind the operator takes.

    Returns:
        A test of an attribute's value against ``operand``.
    """
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
    compare = OPERATORS_BY_NAME[operator].compare
    return lambda a: compare(a, operand)
