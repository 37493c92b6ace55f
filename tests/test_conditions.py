"""The condition evaluator: operators, logic, references, three-valued lists, load errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from permit_guard.engines.conditions import (
    OPERATORS,
    UNKNOWN,
    Condition,
    Subject,
    Truth,
    child_location,
    compile_condition,
    json_equal,
)
from permit_guard.model import Resource


def subject(
    resource: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    *,
    user_key: str = "bob",
    key: str | None = None,
) -> Subject:
    """A subject with the given resource and user attributes."""
    return Subject(
        user_key=user_key,
        user_attributes=user or {},
        resource=Resource(type="mcp_server", key=key, tenant="default", attributes=resource or {}),
    )


def compiled(raw: object) -> Condition:
    """``raw`` compiled, asserting it has no problems."""
    problems: list[str] = []
    condition = compile_condition(raw, location="condition", problems=problems)
    assert problems == []
    return condition


def problems_of(raw: object) -> list[str]:
    """The problems compiling ``raw`` reports."""
    problems: list[str] = []
    compile_condition(raw, location="condition", problems=problems)
    return problems


# -- operators ---------------------------------------------------------------------------------

# operator, operand, a value it holds for, one it does not, one of the wrong kind
OPERATOR_CASES: list[tuple[str, Any, Any, Any, Any]] = [
    ("equals", "finance", "finance", "sales", 1),
    ("equals", 1, 1.0, 2, "1"),
    ("equals", 1, 1, 0, True),
    ("equals", True, True, False, 1),
    ("equals", [1, "a"], [1.0, "a"], ["a", 1], "1,a"),
    ("not-equals", "finance", "sales", "finance", 1),
    ("not-equals", 1, 2, 1.0, True),
    ("not-equals", [1], [2], [1], 1),
    ("greater-than", 10, 10.5, 10, "11"),
    ("greater-than-equals", 10, 10, 9.99, True),
    ("less-than", 10, -3, 10, [1]),
    ("less-than-equals", 100, 100.0, 100.01, "50"),
    ("contains", "ell", "hello", "help", ["ell"]),
    ("array_contains", "a", ["b", "a"], ["b"], "a"),
    ("array_contains", 1, [2, 1.0], [True], {"1": 1}),
    ("array_contains", True, [True], [1], True),
    ("array_subset", ["a", "b"], ["a"], ["a", "c"], "a"),
    ("array_subset", ["a", "b"], [], [["a"]], {"a": 1}),
    ("array_superset", ["a", "b"], ["b", "a", "c"], ["a"], "ab"),
    ("array_intersect", ["a", 2], ["z", 2.0], ["z", "2"], 2),
]


def case_id(case: tuple[str, Any, Any, Any, Any]) -> str:
    return f"{case[0]}-{case[1]!r}"


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_id)
def test_operator_true_case(case: tuple[str, Any, Any, Any, Any]) -> None:
    """Each operator holds for a matching value."""
    operator, operand, yes, _, _ = case
    condition = compiled({"resource.x": {operator: operand}})
    assert condition.holds(subject({"x": yes})) is True


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_id)
def test_operator_false_case(case: tuple[str, Any, Any, Any, Any]) -> None:
    """Each operator fails for a non-matching value of the right kind."""
    operator, operand, _, no, _ = case
    condition = compiled({"resource.x": {operator: operand}})
    assert condition.holds(subject({"x": no})) is False


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_id)
def test_operator_on_wrong_kind_is_false(case: tuple[str, Any, Any, Any, Any]) -> None:
    """Each operator is false (never an error) on a value of the wrong kind, even not-equals."""
    operator, operand, _, _, wrong = case
    condition = compiled({"resource.x": {operator: operand}})
    assert condition.holds(subject({"x": wrong})) is False
    assert condition.holds(subject({"x": None})) is False


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_id)
def test_operator_on_missing_attribute_is_false(case: tuple[str, Any, Any, Any, Any]) -> None:
    """Each operator is false on a missing attribute, even not-equals."""
    operator, operand, _, _, _ = case
    condition = compiled({"resource.x": {operator: operand}})
    assert condition.holds(subject({"y": operand})) is False
    assert compiled({"user.x": {operator: operand}}).holds(subject()) is False


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_id)
def test_operator_on_missing_resource_attribute_may_hold(
    case: tuple[str, Any, Any, Any, Any],
) -> None:
    """Three-valued, a comparison on an absent resource attribute is unknown; a user one false."""
    operator, operand, _, _, _ = case
    assert compiled({"resource.x": {operator: operand}}).may_hold(subject()) is UNKNOWN
    assert compiled({"user.x": {operator: operand}}).may_hold(subject()) is False


def cells_of(cell: str) -> list[str]:
    """The `code` items of a table cell, and "missing" if the cell says so."""
    return re.findall(r"`([^`]*)`", cell) + (["missing"] if cell.endswith("missing") else [])


def documented_operators() -> list[tuple[str, str, list[str], list[str]]]:
    """(operator, example, true-for values, false-for values) from docs/policy-file.md."""
    text = (Path(__file__).parent.parent / "docs" / "policy-file.md").read_text()
    section = text[text.index("### Operators") : text.index("Values compare as JSON values")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if len(cells) == 6 and cells[0].startswith("`"):
            operator, _, _, example, yes, no = cells
            rows.append((operator.strip("`"), example.strip("`"), cells_of(yes), cells_of(no)))
    return rows


@pytest.mark.parametrize("row", documented_operators(), ids=lambda row: row[0])
def test_documented_operator_examples(row: tuple[str, str, list[str], list[str]]) -> None:
    """Each example of the operator table in docs/policy-file.md behaves as documented."""
    _, example, yes, no = row
    raw = yaml.safe_load(example)
    condition = compiled(raw)
    (attribute,) = raw
    scope, name = attribute.split(".", 1)

    def with_value(cell: str) -> Subject:
        values = {} if cell == "missing" else {name: yaml.safe_load(cell)}
        return subject(values) if scope == "resource" else subject(user=values)

    assert all(condition.holds(with_value(cell)) for cell in yes)
    assert not any(condition.holds(with_value(cell)) for cell in no)


def test_every_operator_is_documented() -> None:
    """The operator table of docs/policy-file.md lists every operator, in order."""
    assert tuple(row[0] for row in documented_operators()) == OPERATORS


def test_every_operator_has_a_case() -> None:
    """The table above covers every operator."""
    assert {case[0] for case in OPERATOR_CASES} == set(OPERATORS)


def test_user_attributes_are_compared_like_resource_ones() -> None:
    """user.<name> reads the user's attributes."""
    finance = compiled({"user.department": {"equals": "finance"}})
    assert finance.holds(subject(user={"department": "finance"}))
    assert not finance.holds(subject(user={"department": "sales"}))


def test_several_attributes_in_one_leaf_must_all_hold() -> None:
    """A leaf mapping with several attributes means all of them."""
    both = compiled({"resource.a": {"equals": 1}, "resource.b": {"equals": 2}})
    assert both.holds(subject({"a": 1, "b": 2}))
    assert not both.holds(subject({"a": 1, "b": 3}))
    assert not both.holds(subject({"a": 1}))


def test_several_operators_on_one_attribute_must_all_hold() -> None:
    """Several operators on one attribute express a range."""
    between = compiled({"resource.a": {"greater-than": 1, "less-than": 5}})
    assert between.holds(subject({"a": 3}))
    assert not between.holds(subject({"a": 5}))
    assert not between.holds(subject({"a": 0}))


def test_hostile_values_are_false_not_errors() -> None:
    """A value whose comparison raises, or one nested too deeply, is a non-match."""

    class Evil(str):
        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            raise RuntimeError("boom")

        __hash__ = str.__hash__

    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    assert compiled({"resource.x": {"equals": "a"}}).holds(subject({"x": Evil("a")})) is False
    assert compiled({"resource.x": {"equals": [1]}}).holds(subject({"x": deep})) is False
    assert compiled({"resource.x": {"array_subset": [1]}}).holds(subject({"x": deep})) is False


# -- logic -------------------------------------------------------------------------------------


def test_not_inverts() -> None:
    """not inverts a condition, including one false for a missing attribute."""
    small = {"resource.amount": {"less-than-equals": 100}}
    not_small = compiled({"not": small})
    assert not_small.holds(subject({"amount": 500}))
    assert not not_small.holds(subject({"amount": 5}))
    assert not_small.holds(subject())


def test_nesting_all_any_not() -> None:
    """allOf, anyOf and not nest freely."""
    condition = compiled(
        {
            "allOf": [
                {"anyOf": [{"user.role": {"equals": "lead"}}, {"user.level": {"greater-than": 3}}]},
                {"not": {"resource.tags": {"array_contains": "frozen"}}},
            ]
        }
    )
    assert condition.holds(subject({"tags": ["x"]}, {"role": "lead"}))
    assert condition.holds(subject({"tags": []}, {"level": 4}))
    assert not condition.holds(subject({"tags": ["frozen"]}, {"level": 4}))
    assert not condition.holds(subject({"tags": []}, {"level": 3}))


def test_empty_all_of_holds_and_empty_any_of_does_not() -> None:
    """allOf [] is vacuously true, anyOf [] false, as Python's all() and any()."""
    assert compiled({"allOf": []}).holds(subject()) is True
    assert compiled({"anyOf": []}).holds(subject()) is False
    assert compiled({"allOf": []}).may_hold(subject()) is True
    assert compiled({"anyOf": []}).may_hold(subject()) is False


def test_kleene_connectives() -> None:
    """allOf is false on any false, anyOf true on any true; not keeps unknown unknown."""
    unknown = {"resource.absent": {"equals": 1}}
    true = {"resource.one": {"equals": 1}}
    false = {"resource.one": {"equals": 2}}
    s = subject({"one": 1})
    assert compiled({"allOf": [unknown, false]}).may_hold(s) is False
    assert compiled({"allOf": [unknown, true]}).may_hold(s) is UNKNOWN
    assert compiled({"anyOf": [unknown, true]}).may_hold(s) is True
    assert compiled({"anyOf": [unknown, false]}).may_hold(s) is UNKNOWN
    assert compiled({"not": unknown}).may_hold(s) is UNKNOWN
    assert compiled({"not": false}).may_hold(s) is True


# -- references --------------------------------------------------------------------------------


def test_ref_compares_resource_with_user_key() -> None:
    """{ref: user.key} compares an attribute with the caller's key."""
    own = compiled({"resource.arg_owner": {"equals": {"ref": "user.key"}}})
    assert own.holds(subject({"arg_owner": "bob"}, user_key="bob"))
    assert not own.holds(subject({"arg_owner": "eve"}, user_key="bob"))
    assert not own.holds(subject({}, user_key="bob"))


def test_ref_to_user_attribute_and_resource_fields() -> None:
    """References reach user attributes and resource.key / type / tenant."""
    limit = compiled({"resource.arg_amount": {"less-than-equals": {"ref": "user.limit"}}})
    assert limit.holds(subject({"arg_amount": 50}, {"limit": 100}))
    assert not limit.holds(subject({"arg_amount": 500}, {"limit": 100}))
    assert not limit.holds(subject({"arg_amount": 50}))
    assert not limit.holds(subject({"arg_amount": 50}, {"limit": "100"}))
    same_key = compiled({"user.invoice": {"equals": {"ref": "resource.key"}}})
    assert same_key.holds(subject(user={"invoice": "42"}, key="42"))
    assert not same_key.holds(subject(user={"invoice": "42"}))
    typed = compiled({"resource.type": {"equals": {"ref": "resource.arg_type"}}})
    assert typed.holds(subject({"arg_type": "mcp_server"}))
    tenant = compiled({"resource.tenant": {"not-equals": "acme"}})
    assert tenant.holds(subject())


def test_ref_missing_attributes_three_valued() -> None:
    """Three-valued refs: an absent resource side is unknown, an absent user side false."""
    own = compiled({"resource.arg_owner": {"equals": {"ref": "user.key"}}})
    assert own.may_hold(subject()) is UNKNOWN
    by_attribute = compiled({"resource.arg_region": {"equals": {"ref": "user.region"}}})
    assert by_attribute.may_hold(subject()) is False
    assert by_attribute.may_hold(subject(user={"region": "eu"})) is UNKNOWN
    by_key = compiled({"user.invoice": {"equals": {"ref": "resource.key"}}})
    assert by_key.may_hold(subject(user={"invoice": "42"})) is UNKNOWN


# -- load-time problems ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["resource.a"], "condition: a condition is a mapping, not an array"),
        ({}, "condition: empty condition"),
        ({"allOf": [{"resource.a": {"equals": 1}}], "anyOf": []}, "must be the only key"),
        ({"allOf": "x"}, "condition.allOf: expected a list of conditions, not a string"),
        ({"not": [{"resource.a": {"equals": 1}}]}, "condition.not: a condition is a mapping"),
        ({"resource.a": 1}, "expected a mapping {operator: operand}, not a number"),
        ({"resource.a": {}}, "expected a mapping {operator: operand}, not an empty mapping"),
        ({"resource.a": {"eq": 1}}, "condition['resource.a']: unknown operator 'eq'"),
        ({"resource.a": {1: 1}}, "unknown operator 1"),
        ({"resource.": {"equals": 1}}, "unknown attribute 'resource.'"),
        ({"a": {"equals": 1}}, "condition.a: unknown attribute 'a'"),
        ({"resource.a": {"equals": None}}, "'equals' takes a string, a number, a boolean or an"),
        ({"resource.a": {"equals": {"value": 1}}}, "a mapping operand must be {ref:"),
        ({"resource.a": {"equals": {"ref": "x"}}}, "equals.ref: unknown attribute 'x'"),
        ({"resource.a": {"less-than": "10"}}, "'less-than' takes a number"),
        ({"resource.a": {"less-than": True}}, "'less-than' takes a number (or a {ref: ...})"),
        ({"resource.a": {"less-than": float("nan")}}, "NaN equals and orders with nothing"),
        ({"resource.a": {"array_subset": "a"}}, "'array_subset' takes an array"),
        ({"resource.a": {"array_contains": ["a"]}}, "'array_contains' takes a string"),
        ({"allOf": [{"anyOf": [{"user.a": {"contains": 3}}]}]}, "allOf[0].anyOf[0]['user.a']"),
    ],
)
def test_malformed_conditions_are_problems_with_location(raw: object, expected: str) -> None:
    """A malformed condition is reported with its location, never raised."""
    problems = problems_of(raw)
    assert any(expected in p for p in problems), problems


def test_all_problems_of_a_condition_are_collected() -> None:
    """Every bad leaf of a condition is reported, not just the first."""
    raw = {"anyOf": [{"resource.a": {"eq": 1}}, {"resource.b": {"less-than": "x"}}]}
    assert len(problems_of(raw)) == 2


def test_condition_with_problems_never_holds() -> None:
    """A condition that failed to compile never holds, in either logic."""
    problems: list[str] = []
    broken = compile_condition({"not": {"resource.a": {"eq": 1}}}, location="c", problems=problems)
    assert problems
    assert broken.holds(subject()) is False
    assert broken.may_hold(subject()) is False


def test_deeply_nested_condition_is_a_problem() -> None:
    """A condition nested beyond the recursion limit is a problem, not a RecursionError."""
    raw: dict[str, Any] = {"resource.a": {"equals": 1}}
    for _ in range(5000):
        raw = {"not": raw}
    assert problems_of(raw) == ["condition: the condition is nested too deeply"]


@pytest.mark.parametrize(
    ("parent", "key", "expected"),
    [
        ("", "roles", "roles"),
        ("roles", "admin", "roles.admin"),
        ("grants", "conditional-greet", "grants.conditional-greet"),
        ("allOf", 0, "allOf[0]"),
        ("users", "alice.smith", "users['alice.smith']"),
        ("condition", "resource.x", "condition['resource.x']"),
    ],
)
def test_child_location(parent: str, key: object, expected: str) -> None:
    """Locations read as dotted paths, with indexes and odd keys in brackets."""
    assert child_location(parent, key) == expected


# -- properties --------------------------------------------------------------------------------

RESOURCE_NAMES = ("a", "b")
USER_NAMES = ("u", "v")
ATTRIBUTES = (
    *(f"resource.{n}" for n in RESOURCE_NAMES),
    *(f"user.{n}" for n in USER_NAMES),
    "resource.key",
    "user.key",
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.0, 0.5, 1.0, -2.5, 1e300])
    | st.text("ab", max_size=2)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text("ab", max_size=1), children)
    ),
    max_leaves=6,
)
numbers = st.integers(-3, 3) | st.sampled_from([0.5, -2.5, 2.0])
strings = st.text("ab", max_size=2)
arrays = st.lists(scalars, max_size=3)

OPERAND_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "equals": strings | numbers | st.booleans() | arrays,
    "not-equals": strings | numbers | st.booleans() | arrays,
    "greater-than": numbers,
    "greater-than-equals": numbers,
    "less-than": numbers,
    "less-than-equals": numbers,
    "contains": strings,
    "array_contains": strings | numbers | st.booleans(),
    "array_subset": arrays,
    "array_superset": arrays,
    "array_intersect": arrays,
}


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    """A comparison leaf on one of a few attributes, with a literal or a ref operand."""
    operator = draw(st.sampled_from(OPERATORS))
    operand = draw(
        OPERAND_STRATEGIES[operator] | st.sampled_from(ATTRIBUTES).map(lambda a: {"ref": a})
    )
    return {draw(st.sampled_from(ATTRIBUTES)): {operator: operand}}


conditions = st.recursive(
    leaves(),
    lambda children: (
        st.lists(children, max_size=3).map(lambda c: {"allOf": c})
        | st.lists(children, max_size=3).map(lambda c: {"anyOf": c})
        | children.map(lambda c: {"not": c})
    ),
    max_leaves=8,
)


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    """A subject with every resource attribute present and some user attributes."""
    resource = {n: draw(json_values) for n in RESOURCE_NAMES}
    user = draw(st.dictionaries(st.sampled_from(USER_NAMES), json_values))
    return subject(resource, user, user_key=draw(strings), key=draw(strings))


def without(s: Subject, names: set[str], drop_key: bool) -> Subject:
    """``s`` with some resource attributes (and maybe the resource key) absent."""
    kept = {k: v for k, v in s.resource.attributes.items() if k not in names}
    return subject(
        kept, dict(s.user_attributes), user_key=s.user_key, key=None if drop_key else s.resource.key
    )


LEVEL: dict[Truth, int] = {False: 0, UNKNOWN: 1, True: 2}


@given(conditions)
def test_generated_conditions_compile(raw: dict[str, Any]) -> None:
    """Every well-formed condition compiles without problems."""
    assert problems_of(raw) == []


@given(conditions, subjects())
def test_evaluation_never_raises_and_is_boolean(raw: dict[str, Any], s: Subject) -> None:
    """holds() answers a bool and may_hold() a truth value for any values, never raising."""
    condition = compiled(raw)
    assert isinstance(condition.holds(s), bool)
    assert condition.may_hold(s) in (True, False, UNKNOWN)


@given(conditions, subjects())
def test_double_negation(raw: dict[str, Any], s: Subject) -> None:
    """not not c is c, two-valued and three-valued."""
    condition, twice = compiled(raw), compiled({"not": {"not": raw}})
    partial = without(s, {"a"}, drop_key=True)
    assert twice.holds(s) == condition.holds(s)
    assert twice.may_hold(partial) is condition.may_hold(partial)


@given(st.lists(conditions, max_size=4), subjects(), st.sets(st.sampled_from(RESOURCE_NAMES)))
def test_all_of_any_of_agree_with_all_any(
    raws: list[dict[str, Any]], s: Subject, dropped: set[str]
) -> None:
    """allOf/anyOf are Python's all/any two-valued, and min/max over F < U < T three-valued."""
    parts = [compiled(r) for r in raws]
    all_of, any_of = compiled({"allOf": raws}), compiled({"anyOf": raws})
    assert all_of.holds(s) == all(p.holds(s) for p in parts)
    assert any_of.holds(s) == any(p.holds(s) for p in parts)
    partial = without(s, dropped, drop_key=False)
    levels = [LEVEL[p.may_hold(partial)] for p in parts]
    assert LEVEL[all_of.may_hold(partial)] == min(levels, default=2)
    assert LEVEL[any_of.may_hold(partial)] == max(levels, default=0)


@given(conditions, conditions, subjects())
def test_de_morgan(first: dict[str, Any], second: dict[str, Any], s: Subject) -> None:
    """not(allOf[x, y]) is anyOf[not x, not y], in both logics."""
    left = compiled({"not": {"allOf": [first, second]}})
    right = compiled({"anyOf": [{"not": first}, {"not": second}]})
    partial = without(s, {"b"}, drop_key=True)
    assert left.holds(s) == right.holds(s)
    assert left.may_hold(partial) is right.may_hold(partial)


@given(conditions, subjects())
def test_three_valued_equals_two_valued_when_nothing_is_absent(
    raw: dict[str, Any], s: Subject
) -> None:
    """With every resource attribute present, may_hold() is exactly holds()."""
    condition = compiled(raw)
    assert condition.may_hold(s) is condition.holds(s)


@given(
    conditions,
    subjects(),
    st.sets(st.sampled_from(RESOURCE_NAMES)),
    st.booleans(),
)
def test_listing_mode_is_sound(
    raw: dict[str, Any], s: Subject, dropped: set[str], drop_key: bool
) -> None:
    """Dropping resource attributes never makes a true condition FALSE, nor a false one TRUE.

    ``s`` is one way of filling in the dropped attributes: if the condition holds
    for it, the three-valued answer without them must not exclude it.
    """
    condition = compiled(raw)
    partial = without(s, dropped, drop_key)
    verdict = condition.may_hold(partial)
    if condition.holds(s):
        assert verdict is not False
    else:
        assert verdict is not True


KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
}
NEEDS = {
    "greater-than": "number",
    "greater-than-equals": "number",
    "less-than": "number",
    "less-than-equals": "number",
    "contains": "string",
    "array_contains": "array",
    "array_subset": "array",
    "array_superset": "array",
    "array_intersect": "array",
}


@given(
    st.sampled_from(OPERATORS).flatmap(
        lambda o: st.tuples(st.just(o), OPERAND_STRATEGIES[o], json_values)
    )
)
def test_wrong_kind_values_are_false(case: tuple[str, Any, Any]) -> None:
    """A value of a kind the operator cannot take is false, for every such value."""
    operator, operand, value = case
    needs = NEEDS.get(operator)
    if needs is not None:
        wrong = not KIND_CHECKS[needs](value)
    else:
        both_numbers = KIND_CHECKS["number"](value) and KIND_CHECKS["number"](operand)
        wrong = type(value) is not type(operand) and not both_numbers
    if wrong:
        condition = compiled({"resource.x": {operator: operand}})
        assert condition.holds(subject({"x": value})) is False


@given(json_values, json_values)
def test_comparisons_agree_with_python(value: Any, operand: Any) -> None:
    """Operators with a ref operand agree with a direct Python reading of their meaning."""
    s = subject({"x": value, "y": operand})

    def holds(operator: str) -> bool:
        return compiled({"resource.x": {operator: {"ref": "resource.y"}}}).holds(s)

    is_number = KIND_CHECKS["number"]
    both_numbers = is_number(value) and is_number(operand)
    assert holds("equals") == json_equal(value, operand)
    assert holds("greater-than") == (both_numbers and value > operand)
    assert holds("less-than-equals") == (both_numbers and value <= operand)
    both_strings = isinstance(value, str) and isinstance(operand, str)
    assert holds("contains") == (both_strings and operand in value)
    arrays_ = isinstance(value, list) and isinstance(operand, list)

    def member(item: Any, items: list[Any]) -> bool:
        return any(json_equal(item, other) for other in items)

    assert holds("array_subset") == (arrays_ and all(member(v, operand) for v in value))
    assert holds("array_superset") == (arrays_ and all(member(o, value) for o in operand))
    assert holds("array_intersect") == (arrays_ and any(member(v, operand) for v in value))
    scalar = isinstance(operand, str | int | float)
    assert holds("array_contains") == (
        isinstance(value, list) and scalar and member(operand, value)
    )


@given(json_values, json_values)
def test_literal_and_ref_operands_agree(value: Any, operand: Any) -> None:
    """A literal operand and the same value through a ref give the same answer."""
    s = subject({"x": value, "y": operand})
    for operator in OPERATORS:
        if problems_of({"resource.x": {operator: operand}}):
            continue  # not a valid literal operand for this operator
        literal = compiled({"resource.x": {operator: operand}})
        by_ref = compiled({"resource.x": {operator: {"ref": "resource.y"}}})
        assert literal.holds(s) == by_ref.holds(s), operator


@given(json_values, json_values)
def test_json_equal_is_symmetric_and_not_equals_is_its_typed_complement(a: Any, b: Any) -> None:
    """json_equal is symmetric; not-equals holds exactly for unequal values of one kind."""
    assert json_equal(a, b) == json_equal(b, a)
    s = subject({"x": a, "y": b})
    not_equals = compiled({"resource.x": {"not-equals": {"ref": "resource.y"}}}).holds(s)
    same_kind = (
        (a is None and b is None)
        or (isinstance(a, bool) and isinstance(b, bool))
        or (KIND_CHECKS["number"](a) and KIND_CHECKS["number"](b))
        or (isinstance(a, str) and isinstance(b, str))
        or (isinstance(a, list) and isinstance(b, list))
        or (isinstance(a, dict) and isinstance(b, dict))
    )
    assert not_equals == (same_kind and not json_equal(a, b))
