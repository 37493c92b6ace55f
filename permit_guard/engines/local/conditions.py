"""Compiled conditions: what they see of a request, and how they evaluate.

A compiled condition is a tree of nodes, each a pair of evaluators: two-valued
(``holds``), where a comparison on a missing attribute is false, and
three-valued (Kleene) ``may_hold``, where a *resource* attribute absent from
the request is :data:`UNKNOWN` rather than false. The local engine uses the
second when it answers for lists. A third function, ``explain``, runs the same
two evaluators of every node and reports what each saw
(:class:`~permit_guard.explanation.ConditionTrace`), so an explanation can
never disagree with the decision. Nodes are built by
:func:`~permit_guard.engines.local.compiler.compile_condition`.

Example:
    >>> from permit_guard.model import Resource
    >>> small = literal_leaf(
    ...     lambda s: s.resource.attributes.get("arg_amount", MISSING),
    ...     True,
    ...     lambda amount: isinstance(amount, int) and amount <= 100,
    ...     label=("resource.arg_amount", "less-than-equals 100"),
    ... )
    >>> condition = Condition(holds=small[0], may_hold=small[1], explain=small[2])
    >>> listing = Resource(type="mcp_server", attributes={"mcp_method": "tools/list"})
    >>> condition.holds(Subject(user_key="bob", user_attributes={}, resource=listing))
    False
    >>> condition.may_hold(Subject(user_key="bob", user_attributes={}, resource=listing)) is UNKNOWN
    True
    >>> call = Resource(type="mcp_server", attributes={"arg_amount": 500})
    >>> condition.explain(Subject(user_key="bob", user_attributes={}, resource=call), False).lines()
    ['resource.arg_amount = 500 less-than-equals 100 -> false']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from permit_guard.engines.local.operators import Comparison, Test
from permit_guard.explanation import ConditionTrace, show_value
from permit_guard.model import Principal, Resource

__all__ = [
    "MISSING",
    "UNKNOWN",
    "Condition",
    "Explain",
    "Getter",
    "Node",
    "Subject",
    "Truth",
    "all_of",
    "any_of",
    "constant",
    "literal_leaf",
    "negation",
    "ref_leaf",
]

#: A three-valued truth value: ``True``, ``False`` or :data:`UNKNOWN`.
Truth: TypeAlias = bool | None

#: The third truth value of :meth:`Condition.may_hold`.
UNKNOWN: Final = None


class _Missing:
    """The value of an attribute the request does not carry."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


#: What a :data:`Getter` returns for an attribute the request does not carry.
MISSING: Final = _Missing()


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

    @classmethod
    def of(cls, user: Principal, known: Mapping[str, Any] | None, resource: Resource) -> Subject:
        """What conditions see of ``user`` on ``resource``: its ``known`` attributes and its own.

        The user's own attributes (the request's) win over the known ones.
        """
        given = user.attributes
        if not known:
            attributes = given
        elif not given:
            attributes = known
        else:
            attributes = {**known, **given}
        return cls(user_key=user.key, user_attributes=attributes, resource=resource)


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
        explain: ``explain(subject, three_valued)``: the evaluation of
            :attr:`may_hold` (or :attr:`holds`) as a tree, with the values seen.
    """

    holds: Callable[[Subject], bool]
    may_hold: Callable[[Subject], Truth]
    explain: Explain


#: Reads one attribute of a subject, or :data:`MISSING`.
Getter: TypeAlias = Callable[[Subject], object]
#: Evaluates a node on a subject, two- or three-valued, and says what it saw.
Explain: TypeAlias = Callable[[Subject, bool], ConditionTrace]
#: A compiled node: its two-valued and three-valued evaluators, and its explainer.
Node: TypeAlias = tuple[Callable[[Subject], bool], Callable[[Subject], Truth], Explain]


def _seen(get: Getter, s: Subject) -> str:
    value = get(s)
    return repr(value) if value is MISSING else show_value(value)


def literal_leaf(get: Getter, from_resource: bool, test: Test, *, label: tuple[str, str]) -> Node:
    """A comparison of one attribute with a literal operand.

    Args:
        get: Reads the attribute.
        from_resource: Whether it is a ``resource.*`` attribute (absent: unknown).
        test: The comparison with the operand.
        label: The attribute's name, and the operator with its operand, for explanations.
    """
    absent: Truth = UNKNOWN if from_resource else False
    name, comparison = label

    def holds(s: Subject) -> bool:
        value = get(s)
        if value is MISSING:
            return False
        try:
            return test(value)
        except Exception:
            # Fail closed: a value that cannot be compared (nested too deeply,
            # a hostile __eq__...) does not match.
            return False

    def may_hold(s: Subject) -> Truth:
        value = get(s)
        if value is MISSING:
            return absent
        try:
            return test(value)
        except Exception:
            return False  # fail closed, as in holds()

    def explain(s: Subject, three_valued: bool) -> ConditionTrace:
        value = may_hold(s) if three_valued else holds(s)
        return ConditionTrace(text=f"{name} = {_seen(get, s)} {comparison}", value=value)

    return holds, may_hold, explain


def ref_leaf(
    get: Getter,
    from_resource: bool,
    other: Getter,
    other_from_resource: bool,
    compare: Comparison,
    *,
    label: tuple[str, str, str],
) -> Node:
    """A comparison of one attribute with another (a ``{ref: ...}`` operand).

    Args:
        get: Reads the left attribute.
        from_resource: Whether the left one is a ``resource.*`` attribute.
        other: Reads the right attribute.
        other_from_resource: Whether the right one is a ``resource.*`` attribute.
        compare: The comparison.
        label: The left attribute's name, the operator, the right one's name.
    """
    left, operator, right = label

    def holds(s: Subject) -> bool:
        a, b = get(s), other(s)
        if a is MISSING or b is MISSING:
            return False
        try:
            return compare(a, b)
        except Exception:
            return False  # fail closed, as for literal operands

    def may_hold(s: Subject) -> Truth:
        a, b = get(s), other(s)
        # A missing user attribute makes the comparison false whatever the
        # resource holds; only an absent resource attribute leaves it open.
        if (a is MISSING and not from_resource) or (b is MISSING and not other_from_resource):
            return False
        if a is MISSING or b is MISSING:
            return UNKNOWN
        try:
            return compare(a, b)
        except Exception:
            return False  # fail closed, as for literal operands

    def explain(s: Subject, three_valued: bool) -> ConditionTrace:
        value = may_hold(s) if three_valued else holds(s)
        text = f"{left} = {_seen(get, s)} {operator} {right} = {_seen(other, s)}"
        return ConditionTrace(text=text, value=value)

    return holds, may_hold, explain


def _logical(
    text: str,
    holds: Callable[[Subject], bool],
    may_hold: Callable[[Subject], Truth],
    children: Sequence[Explain],
) -> Explain:
    def explain(s: Subject, three_valued: bool) -> ConditionTrace:
        value = may_hold(s) if three_valued else holds(s)
        return ConditionTrace(
            text=text, value=value, children=tuple(c(s, three_valued) for c in children)
        )

    return explain


def all_of(nodes: Sequence[Node]) -> Node:
    """The conjunction of one or more nodes."""
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

    return holds, may_hold, _logical("allOf", holds, may_hold, [n[2] for n in nodes])


def any_of(nodes: Sequence[Node]) -> Node:
    """The disjunction of one or more nodes."""
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

    return holds, may_hold, _logical("anyOf", holds, may_hold, [n[2] for n in nodes])


def negation(node: Node) -> Node:
    """The negation of a node (unknown stays unknown)."""
    inner_holds, inner_may_hold, inner_explain = node

    def holds(s: Subject) -> bool:
        return not inner_holds(s)

    def may_hold(s: Subject) -> Truth:
        value = inner_may_hold(s)
        return UNKNOWN if value is UNKNOWN else not value

    return holds, may_hold, _logical("not", holds, may_hold, [inner_explain])


def constant(value: bool) -> Node:
    """A node that is always ``value`` (an empty ``allOf`` or ``anyOf``)."""
    text = "allOf []" if value else "anyOf []"
    return (
        (lambda _s: value),
        (lambda _s: value),
        (lambda _s, _three: ConditionTrace(text=text, value=value)),
    )
