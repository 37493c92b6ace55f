"""Loading a local policy: reading the file, then checking everything at once.

Loading checks the shape (pydantic, :mod:`permit_guard.engines.local.policy`)
and then every cross-reference and condition, and reports all problems of a
stage at once in one :class:`~permit_guard.exceptions.PolicyFileError`, each
with its location. YAML and JSON are read strictly: a repeated key is an error
rather than a silently replaced entry. See ``docs/policy-file.md`` for the
format.

Example:
    >>> policy = load_policy(
    ...     {"resources": {"invoice": {"actions": ["read"]}},
    ...      "roles": {"reader": {"grants": {"invoice": ["raed"]}}}},
    ...     source="<dict>",
    ... )
    Traceback (most recent call last):
    ...
    permit_guard.exceptions.PolicyFileError: invalid policy <dict>:
      - roles.reader.grants.invoice: unknown action 'raed' (did you mean 'read'? known: read)
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from permit_guard.engines.local.bounds import BoundedLoader, check_data, read_capped, too_deep
from permit_guard.engines.local.compiler import child_location, compile_condition
from permit_guard.engines.local.conditions import Condition
from permit_guard.engines.local.policy import (
    WILDCARD,
    Policy,
    PolicyResourceSet,
    PolicyResourceType,
    PolicyRole,
    PolicyUser,
    PolicyUserSet,
)
from permit_guard.exceptions import PolicyFileError

__all__ = ["SUFFIXES", "LoadedPolicy", "load_policy", "read_policy_file"]

#: The file extensions :func:`read_policy_file` accepts.
SUFFIXES: Final = (".yaml", ".yml", ".json")


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadedPolicy:
    """A policy that passed every check, with its conditions compiled.

    Attributes:
        source: Where it came from (a file path, or ``"<dict>"``).
        policy: The validated policy.
        resource_set_conditions: Resource set name -> compiled condition.
        user_set_conditions: User set name -> compiled condition.
    """

    source: str
    policy: Policy
    resource_set_conditions: Mapping[str, Condition]
    user_set_conditions: Mapping[str, Condition]


# -- loading -----------------------------------------------------------------------------------


def load_policy(data: object, *, source: str = "<dict>") -> LoadedPolicy:
    """Validate a parsed policy: its shape, then its references and conditions.

    Args:
        data: The policy as parsed from YAML or JSON (a mapping).
        source: Where it came from, for error messages.

    Returns:
        The checked policy with its conditions compiled.

    Raises:
        PolicyFileError: With one line per problem. Shape problems are reported
            first; references are checked once the shape is right. A policy
            that contains itself or is beyond the bounds of
            :mod:`~permit_guard.engines.local.bounds` is refused before either.
    """
    if not isinstance(data, Mapping):
        raise PolicyFileError(
            source,
            [
                f"top level: expected a mapping with the sections {_names(Policy.model_fields)}, "
                f"not {_describe(data)}"
            ],
        )
    check_data(data, source=source)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(source, [_shape_problem(e) for e in exc.errors()]) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, ["top level: the policy is nested too deeply"]) from exc
    checker = _Checker(policy)
    problems = checker.check()
    if problems:
        raise PolicyFileError(source, problems)
    return LoadedPolicy(
        source=source,
        policy=policy,
        resource_set_conditions=checker.resource_set_conditions,
        user_set_conditions=checker.user_set_conditions,
    )


def read_policy_file(path: str | os.PathLike[str]) -> LoadedPolicy:
    """Read, parse and validate a policy file (``.yaml``, ``.yml`` or ``.json``).

    Args:
        path: The file.

    Returns:
        The checked policy; its ``source`` is the path.

    Raises:
        PolicyFileError: Naming the file, for an unsupported extension, a file
            that cannot be read, a syntax error, a file beyond the bounds of
            :mod:`~permit_guard.engines.local.bounds`, a top level that is not
            a mapping, or any problem :func:`load_policy` finds.
    """
    source = os.fspath(path)
    suffix = Path(source).suffix.lower()
    if suffix not in SUFFIXES:
        raise PolicyFileError(
            source,
            [f"unsupported file extension {suffix or '(none)'!r}: use {', '.join(SUFFIXES)}"],
        )
    try:
        raw = read_capped(source)
    except OSError as exc:
        raise PolicyFileError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    try:
        # utf-8-sig: editors on Windows like to start files with a byte-order mark.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PolicyFileError(source, [f"not UTF-8 text (byte {exc.start})"]) from exc
    data = _parse_json(text, source) if suffix == ".json" else _parse_yaml(text, source)
    if data is None:
        raise PolicyFileError(
            source, [f"the file is empty; expected the sections {_names(Policy.model_fields)}"]
        )
    return load_policy(data, source=source)


class _StrictLoader(BoundedLoader):
    """A bounded safe YAML loader that notes duplicate keys instead of keeping the last one."""

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream, source=source)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        # A repeated `users:` or `bob:` would silently replace the first one,
        # and with it somebody's permissions.
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    self.duplicates.append(
                        f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value!r}"
                    )
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> object:
    loader = _StrictLoader(text, source=source)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyFileError(source, [f"YAML syntax error{where}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError(source, [f"YAML syntax error: {exc}"]) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, [too_deep("YAML")]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise PolicyFileError(source, loader.duplicates)
    return data


def _parse_json(text: str, source: str) -> object:
    duplicates: list[str] = []

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of repeated keys; a policy must not lose the first silently.
        obj: dict[str, Any] = {}
        for key, value in pairs:
            if key in obj:
                duplicates.append(f"duplicate key {key!r}")
            obj[key] = value
        return obj

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise PolicyFileError(
            source, [f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
        ) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, [too_deep("JSON")]) from exc
    if duplicates:
        raise PolicyFileError(source, duplicates)
    return data


# -- problems ----------------------------------------------------------------------------------

#: The model found at each depth of a location, for "unknown key" messages.
_SECTION_ENTRIES: Final[Mapping[str, type[BaseModel]]] = {
    "resources": PolicyResourceType,
    "resource_sets": PolicyResourceSet,
    "user_sets": PolicyUserSet,
    "roles": PolicyRole,
    "users": PolicyUser,
}


def _location(loc: Iterable[int | str]) -> str:
    where = ""
    for part in loc:
        where = child_location(where, part)
    return where or "top level"


def _shape_problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden" and loc:
        parent = loc[:-1]
        model: type[BaseModel] | None = None
        if not parent:
            model = Policy
        elif len(parent) == 2 and isinstance(parent[0], str):
            model = _SECTION_ENTRIES.get(parent[0])
        known = f" (known: {_names(model.model_fields)})" if model else ""
        return f"{_location(parent)}: unknown key {loc[-1]!r}{known}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{_location(loc)}: {message}"


def _names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _unknown(what: str, name: str, known: list[str], *, of: str = "") -> str:
    """``unknown role 'admn' (did you mean 'admin'? known: admin, viewer)``."""
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    # A policy with a hundred roles would drown the message in names.
    listing = f"known: {_names(known)}" if len(known) <= 12 else f"{len(known)} known"
    return f"unknown {what} {name!r}{of} ({hint}{listing})"


class _Checker:
    """Cross-references and conditions of a policy whose shape is valid."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.problems: list[str] = []
        self.resource_set_conditions: dict[str, Condition] = {}
        self.user_set_conditions: dict[str, Condition] = {}

    def check(self) -> list[str]:
        p = self.policy
        for type_name, resource in p.resources.items():
            where = child_location("resources", type_name)
            if WILDCARD in resource.actions:
                self.problems.append(
                    f"{child_location(where, 'actions')}: {WILDCARD!r} is not an action name; "
                    "in grants it means every action"
                )
            for role_name, actions in resource.roles.items():
                self._actions(
                    actions, type_name, child_location(child_location(where, "roles"), role_name)
                )
        for set_name, resource_set in p.resource_sets.items():
            where = child_location("resource_sets", set_name)
            if set_name in p.resources:
                self.problems.append(
                    f"{where}: a resource set cannot share its name with a resource type "
                    "(grants would not know which is meant)"
                )
            if resource_set.resource not in p.resources:
                self.problems.append(
                    f"{child_location(where, 'resource')}: "
                    + _unknown("resource type", resource_set.resource, list(p.resources))
                )
            self.resource_set_conditions[set_name] = compile_condition(
                resource_set.condition,
                location=child_location(where, "condition"),
                problems=self.problems,
            )
        for set_name, user_set in p.user_sets.items():
            where = child_location("user_sets", set_name)
            self.user_set_conditions[set_name] = compile_condition(
                user_set.condition,
                location=child_location(where, "condition"),
                problems=self.problems,
            )
            self._grants(user_set.grants, child_location(where, "grants"))
        for role_name, role in p.roles.items():
            self._grants(role.grants, child_location(child_location("roles", role_name), "grants"))
        for user_key, user in p.users.items():
            self._user(user_key, user)
        for instance in p.resource_instances:
            self._instance_key(instance, child_location("resource_instances", instance))
        return self.problems

    def _instance_key(self, instance: str, here: str) -> str | None:
        """The resource type of ``"<type>:<key>"``, or ``None`` (the problem recorded)."""
        type_name, colon, key = instance.partition(":")
        if not colon or not type_name or not key:
            self.problems.append(
                f"{here}: expected '<resource type>:<instance key>', e.g. 'invoice:42'"
            )
            return None
        if type_name not in self.policy.resources:
            known = list(self.policy.resources)
            self.problems.append(f"{here}: " + _unknown("resource type", type_name, known))
            return None
        return type_name

    def _grants(self, grants: Mapping[str, list[str]], where: str) -> None:
        p = self.policy
        for target, actions in grants.items():
            if target in p.resources:
                self._actions(actions, target, child_location(where, target))
            elif target in p.resource_sets:
                type_name = p.resource_sets[target].resource
                # An unknown type of the set is reported at the set itself.
                if type_name in p.resources:
                    self._actions(actions, type_name, child_location(where, target))
            else:
                known = [*p.resources, *p.resource_sets]
                self.problems.append(
                    f"{where}: " + _unknown("resource type or resource set", target, known)
                )

    def _actions(self, actions: list[str], type_name: str, where: str) -> None:
        known = self.policy.resources[type_name].actions
        for action in actions:
            if action != WILDCARD and action not in known:
                self.problems.append(f"{where}: " + _unknown("action", action, known))

    def _user(self, user_key: str, user: PolicyUser) -> None:
        p = self.policy
        where = child_location("users", user_key)
        roles_where = child_location(where, "roles")
        for tenant, role_names in user.roles_by_tenant().items():
            here = (
                roles_where if isinstance(user.roles, list) else child_location(roles_where, tenant)
            )
            for role_name in role_names:
                if role_name not in p.roles:
                    self.problems.append(f"{here}: " + _unknown("role", role_name, list(p.roles)))
        for instance, role_names in user.resource_roles.items():
            here = child_location(child_location(where, "resource_roles"), instance)
            type_name = self._instance_key(instance, here)
            if type_name is None:
                continue
            resource = p.resources[type_name]
            for role_name in role_names:
                if role_name not in resource.roles:
                    self.problems.append(
                        f"{here}: "
                        + _unknown(
                            "resource role",
                            role_name,
                            list(resource.roles),
                            of=f" on resource type {type_name!r}",
                        )
                    )
