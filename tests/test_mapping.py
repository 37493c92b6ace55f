"""The pure mapping from MCP requests to engine requests."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from permit_guard import Principal, require_permission
from permit_guard.components.binding import binder_for_function, binder_for_schema
from permit_guard.exceptions import InvalidArguments
from permit_guard.mapping import (
    MappingConfig,
    component_request,
    gate_request,
    normalize_action,
)
from permit_guard.spec import spec_of

ALICE = Principal(key="alice", tenant="acme")


@pytest.mark.parametrize(
    ("name", "action"),
    [("greet", "greet"), ("greet_jwt", "greet-jwt"), ("a.b/c_d", "a-b-c-d"), ("ns_sub", "ns-sub")],
)
def test_tool_names_become_actions(name: str, action: str) -> None:
    """Tool names map to actions with `_`, `.` and `/` turned into `-`."""
    assert normalize_action(name) == action


@pytest.mark.parametrize(
    ("method", "resource_type"),
    [
        ("tools/list", "mcp_server_tools"),
        ("resources/list", "mcp_server_resources"),
        ("resources/templates/list", "mcp_server_resources"),
        ("prompts/list", "mcp_server_prompts"),
    ],
)
def test_list_gates(method: str, resource_type: str) -> None:
    """List gates are `list` on {server}_tools / _resources / _prompts in the caller's tenant."""
    request = gate_request(method, ALICE, MappingConfig())
    assert (request.resource.type, request.action, request.resource.tenant) == (
        resource_type,
        "list",
        "acme",
    )


def test_builtin_attributes_cannot_be_overwritten() -> None:
    """An argument named like a built-in attribute cannot replace it, even with no prefix."""
    request = component_request(
        kind="tool",
        name="t",
        method="tools/call",
        principal=ALICE,
        spec=None,
        config=MappingConfig(argument_prefix=""),
        arguments={"tool_name": "other", "mcp_method": "tools/list"},
    )
    assert request.resource.attributes["tool_name"] == "t"
    assert request.resource.attributes["mcp_method"] == "tools/call"


def test_tenant_precedence() -> None:
    """Tenant: the decorator's (argument or fixed), else the caller's, else 'default'."""

    @require_permission(tenant="org")
    def by_arg(org: str) -> None: ...

    spec = spec_of(by_arg)
    common = {"kind": "tool", "name": "t", "method": "tools/call", "config": MappingConfig()}
    with_arg = component_request(principal=ALICE, spec=spec, arguments={"org": "x"}, **common)  # type: ignore[arg-type]
    caller_only = component_request(principal=ALICE, spec=None, **common)  # type: ignore[arg-type]
    nobody = component_request(principal=Principal(key="b"), spec=None, **common)  # type: ignore[arg-type]
    assert [r.resource.tenant for r in (with_arg, caller_only, nobody)] == ["x", "acme", "default"]


@pytest.mark.parametrize("bad", [None, "", 5, ["acme"]])
def test_bad_tenant_argument_is_refused(bad: object) -> None:
    """A tenant argument that is missing, empty or not a string refuses the call."""

    @require_permission(tenant="org")
    def fn(org: str) -> None: ...

    arguments = {} if bad is None else {"org": bad}
    with pytest.raises(InvalidArguments, match="tenant argument 'org'"):
        component_request(
            kind="tool",
            name="t",
            method="tools/call",
            principal=ALICE,
            spec=spec_of(fn),
            config=MappingConfig(),
            arguments=arguments,
        )


def test_integer_keys_become_strings() -> None:
    """An integer key argument becomes the string instance key Permit expects."""

    @require_permission(resource="invoice", key="invoice_id")
    def fn(invoice_id: int) -> None: ...

    request = component_request(
        kind="tool",
        name="t",
        method="tools/call",
        principal=ALICE,
        spec=spec_of(fn),
        config=MappingConfig(),
        arguments={"invoice_id": 42},
    )
    assert request.resource.key == "42"


JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["150", "1e6", " 42 ", "0x10", "nan", "inf", "-0"]),
)


@given(value=JSON_VALUES)
def test_schema_binder_accepts_only_declared_json_types(value: object) -> None:
    """For a component without a function, only finite values of the declared JSON type pass."""
    binder = binder_for_schema({"properties": {"amount": {"anyOf": [{"type": "number"}]}}})
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    is_number = is_number and math.isfinite(value)  # type: ignore[arg-type]
    request = {
        "kind": "tool",
        "name": "t",
        "method": "tools/call",
        "principal": ALICE,
        "spec": None,
        "config": MappingConfig(),
        "arguments": {"amount": value},
        "binder": binder,
    }
    if is_number:
        built = component_request(**request)  # type: ignore[arg-type]
        assert built.resource.attributes["arg_amount"] == value
    else:
        with pytest.raises(InvalidArguments):
            component_request(**request)  # type: ignore[arg-type]


def refund(amount: float | None = 5000.0, note: str = "") -> None: ...


@given(value=JSON_VALUES)
def test_engine_judges_the_value_the_function_receives(value: object) -> None:
    """The attribute sent is exactly what pydantic hands the function, or the call is refused."""
    binder = binder_for_function(refund)
    runs_with: object
    try:
        runs_with = TypeAdapter(float | None).validate_python(value)
    except ValidationError:
        runs_with = None
        refused = True
    else:
        # NaN and infinity cannot be judged (nor sent as JSON): refused too.
        refused = isinstance(runs_with, float) and not math.isfinite(runs_with)
    if refused:
        with pytest.raises(InvalidArguments):
            binder.bind({"amount": value}, ["amount"], "refund")
        return
    assert binder.bind({"amount": value}, ["amount"], "refund") == {"amount": runs_with}


def test_defaults_are_sent_and_extras_are_not() -> None:
    """An omitted argument is sent with its default; an argument the function lacks is not sent."""
    request = component_request(
        kind="tool",
        name="refund",
        method="tools/call",
        principal=ALICE,
        spec=None,
        config=MappingConfig(),
        arguments={"invented": 1},
        binder=binder_for_function(refund),
    )
    attributes = dict(request.resource.attributes)
    assert attributes["arg_amount"] == 5000.0
    assert attributes["arg_note"] == ""
    assert "arg_invented" not in attributes


def test_pdp_json_shape() -> None:
    """to_pdp_json() produces the PDP's /allowed body."""
    request = component_request(
        kind="resource",
        name="data://x",
        method="resources/read",
        principal=ALICE,
        spec=None,
        config=MappingConfig(),
    )
    assert request.to_pdp_json() == {
        "user": {"key": "alice", "attributes": {}},
        "action": "read",
        "resource": {
            "type": "mcp_server_resources",
            "key": "data://x",
            "tenant": "acme",
            "attributes": {"mcp_method": "resources/read", "resource_uri": "data://x"},
            "context": {},
        },
        "context": {},
    }


def _call(arguments: dict[str, object], config: MappingConfig | None = None) -> dict[str, object]:
    request = component_request(
        kind="tool",
        name="t",
        method="tools/call",
        principal=ALICE,
        spec=None,
        config=config or MappingConfig(),
        arguments=arguments,
    )
    return dict(request.resource.attributes)


def test_nested_objects_are_flattened_with_underscores() -> None:
    """Nested objects become arg_<a>_<b>; lists stay arrays; depth is bounded."""
    attributes = _call(
        {
            "address": {"city": "Oslo", "geo": {"lat": 1.5}},
            "tags": ["a", "b"],
            "deep": {"a": {"b": {"c": {"d": 1}}}},
        }
    )
    assert attributes["arg_address_city"] == "Oslo"
    assert attributes["arg_address_geo_lat"] == 1.5
    assert attributes["arg_tags"] == ["a", "b"]
    assert attributes["arg_deep_a_b_c"] == {"d": 1}  # beyond three levels: a JSON object


def test_flattening_collisions_are_refused() -> None:
    """Two arguments that flatten to the same attribute are refused, not merged."""
    with pytest.raises(InvalidArguments, match="twice"):
        _call({"a_b": 1, "a": {"b": 2}})


def test_unflattened_arguments_are_one_attribute() -> None:
    """With flattening off, the arguments travel as one `arguments` object."""
    attributes = _call({"x": {"y": 1}}, MappingConfig(flatten_arguments=False))
    assert attributes["arguments"] == {"x": {"y": 1}}


@pytest.mark.parametrize(
    "arguments",
    [
        {f"a{i}": i for i in range(300)},
        {"blob": "x" * 70_000},
        {"nested": {"text": "y" * 70_000}},
    ],
    ids=["too-many", "too-large", "too-large-nested"],
)
def test_size_is_bounded(arguments: dict[str, object]) -> None:
    """Too many or too large argument attributes refuse the call, naming @abac_from_args."""
    with pytest.raises(InvalidArguments, match="abac_from_args"):
        _call(arguments)
