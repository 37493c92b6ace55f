"""Reading a suite file: its keys and its cases checked, every problem at once, with its line.

:func:`read_suite` checks everything a suite can get wrong without its server:
syntax, unknown keys, values of the wrong type, cases naming no component or
two, keys that do not go together, repeated case names, files that do not
exist. What needs the server (a tool it does not have) is checked by the
runner (:mod:`~permit_guard.cli.suite_run`) before any case runs.

Example::

    from permit_guard.cli.suite import SuiteError
    from permit_guard.cli.suite_read import read_suite

    try:
        suite = read_suite("examples/quickstart.suite.yaml")
    except SuiteError as exc:
        print(*exc.problems, sep="\\n")
    else:
        print(len(suite.cases), "cases for", suite.server)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from permit_guard.cli.suite import (
    CASE_KEYS,
    LIST_KINDS,
    SUITE_KEYS,
    CallCase,
    Caller,
    Case,
    ListCase,
    Suite,
    SuiteError,
)
from permit_guard.cli.suite_yaml import Document, Pair, listing, not_json, relative, type_of

__all__ = ["read_suite"]

_TARGETS: Final = ("tool", "resource", "prompt", "list")


def read_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and check a suite file; the paths in it are relative to its folder.

    Args:
        path: The suite file.

    Returns:
        The suite.

    Raises:
        SuiteError: With every problem found, in line order.
    """
    document = Document(os.fspath(path))
    suite = _suite(document)
    if document.problems or suite is None:
        raise SuiteError(sorted(document.problems, key=lambda p: p.line or 0))
    return suite


def _suite(document: Document) -> Suite | None:
    root = document.root()
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        document.note(root, f"a suite is a mapping of {listing(SUITE_KEYS)}")
        return None
    folder = os.path.dirname(document.file)
    pairs = document.pairs(root, "the suite", SUITE_KEYS)
    server = _server(document, folder, pairs.get("server"), root)
    policy = _file(document, folder, pairs.get("policy"), "policy")
    data = _file(document, folder, pairs.get("data"), "data")
    if "data" in pairs and "policy" not in pairs:
        document.note(pairs["data"][0], "data: goes with policy: (it holds that policy's facts)")
    cases = _cases(document, pairs.get("cases"), root)
    if server is None or cases is None:
        return None
    return Suite(
        file=document.file,
        server=server,
        server_line=_line(pairs["server"][0]),
        policy=policy,
        data=data,
        policy_line=_line(pairs["policy"][0]) if "policy" in pairs else None,
        cases=cases,
    )


def _server(document: Document, folder: str, pair: Pair | None, root: yaml.Node) -> str | None:
    if pair is None:
        document.note(root, "the suite needs server: path/to/file.py[:var] or package.module[:var]")
        return None
    key_node, node = pair
    target = document.value(node, key_node.value)
    if not isinstance(target, str) or not target.strip():
        document.note(key_node, f"server: must be path/to/file.py[:var], not {type_of(target)}")
        return None
    # Split as the command splits SERVER: a variable is an identifier after the last colon.
    location, colon, variable = target.rpartition(":")
    if not colon or not variable.isidentifier() or not location:
        location, variable = target, ""
    if not (location.endswith(".py") or "/" in location or os.sep in location):
        return target  # a module, imported as the command imports one
    resolved = relative(folder, location)
    if not os.path.isfile(resolved):
        document.note(key_node, f"server file {resolved!r} not found ({_relative_to(folder)})")
        return None
    return f"{resolved}:{variable}" if variable else resolved


def _file(document: Document, folder: str, pair: Pair | None, key: str) -> Path | None:
    if pair is None:
        return None
    key_node, node = pair
    name = document.value(node, key_node.value)
    if not isinstance(name, str) or not name.strip():
        document.note(key_node, f"{key}: must be a file name, not {type_of(name)}")
        return None
    resolved = relative(folder, name)
    if not os.path.isfile(resolved):
        document.note(key_node, f"{key} file {resolved!r} not found ({_relative_to(folder)})")
        return None
    return Path(resolved)


def _relative_to(folder: str) -> str:
    return f"paths are relative to the suite's folder, {folder or '.'!r}"


def _cases(document: Document, pair: Pair | None, root: yaml.Node) -> tuple[Case, ...] | None:
    if pair is None:
        document.note(root, "the suite needs cases: a list of cases")
        return None
    key_node, node = pair
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        document.note(key_node, "cases: must be a non-empty list of cases")
        return None
    cases: list[Case] = []
    first: dict[str, int] = {}
    for index, case_node in enumerate(node.value, start=1):
        case = _CaseReader(document, case_node, index).case()
        if case is None:
            continue
        if case.name in first:
            document.note(
                case_node,
                f"case {case.name!r}: the name is already used at line {first[case.name]}; "
                "names must be unique",
            )
        first.setdefault(case.name, case.line)
        cases.append(case)
    return tuple(cases)


def _text_node(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _CaseReader:
    """One case: its keys checked alone and together; ``None`` when any is wrong."""

    def __init__(self, document: Document, node: yaml.Node, index: int) -> None:
        self.document = document
        self.node = node
        self.label = f"case {index}"
        self.pairs: dict[str, Pair] = {}
        self.values: dict[str, Any] = {}

    def note(self, node: yaml.Node, message: str) -> None:
        self.document.note(node, f"{self.label}: {message}")

    def case(self) -> Case | None:
        if not isinstance(self.node, yaml.MappingNode):
            self.note(self.node, "a case is a mapping: name, user, and tool/resource/prompt/list")
            return None
        named = [v.value for k, v in self.node.value if k.value == "name" and _text_node(v)]
        if named:
            self.label = f"case {named[-1]!r}"  # problems name the case, as far as it has a name
        before = len(self.document.problems)
        self.pairs = self.document.pairs(self.node, self.label, CASE_KEYS)
        self.values = {
            k: self.document.value(v, f"{self.label}: {k}") for k, (_, v) in self.pairs.items()
        }
        name = self._text("name")
        user = self._text("user")
        tenant = self._text("tenant", required=False)
        attributes = self._object("attributes")
        targets = [k for k in _TARGETS if k in self.pairs]
        if len(targets) != 1:
            found = f"found {listing(targets)}" if targets else "found none"
            self.note(self.node, f"give exactly one of tool, resource, prompt, list ({found})")
            return None
        # With a name or user missing, the rest is still checked: every problem at once.
        caller = Caller(user=user or "", tenant=tenant, attributes=attributes or {})
        kind = targets[0]
        case = (
            self._list(name or "", caller)
            if kind == "list"
            else self._call(kind, name or "", caller)
        )
        return case if len(self.document.problems) == before else None

    def _call(self, kind: str, name: str, caller: Caller) -> CallCase | None:
        self._refuse(("visible", "hidden"), f"goes with list:, not with {kind}:")
        if kind == "resource":
            self._refuse(
                ("args", "key"),
                "applies to tool and prompt cases; a resource's parameters are in its URI",
            )
        target = self._text(kind)
        arguments = self._object("args")
        key = self.values.get("key")
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)  # `key: 42`, as --key 42 gives it
        if "key" in self.pairs and (not isinstance(key, str) or not key.strip()):
            self.note(self.pairs["key"][0], f"key: must be a string, not {type_of(key)}")
        expect = self.values.get("expect")
        if "expect" not in self.pairs:
            self.note(self.node, "expect: is missing (allow or deny)")
        elif expect not in ("allow", "deny"):
            self.note(
                self.pairs["expect"][0], f"expect: must be allow or deny, not {type_of(expect)}"
            )
        if target is None or expect not in ("allow", "deny"):
            return None
        return CallCase(
            name=name,
            line=_line(self.node),
            caller=caller,
            kind="tool" if kind == "tool" else "resource" if kind == "resource" else "prompt",
            target=target,
            arguments=arguments or {},
            key=key if isinstance(key, str) else None,
            allow=expect == "allow",
        )

    def _list(self, name: str, caller: Caller) -> ListCase | None:
        self._refuse(("expect", "args", "key"), "goes with tool, resource or prompt, not list:")
        listed = self.values["list"]
        if listed not in LIST_KINDS:
            self.note(
                self.pairs["list"][0],
                f"list: must be one of {listing(LIST_KINDS)}, not {type_of(listed)}",
            )
        visible = self._names("visible")
        hidden = self._names("hidden")
        if "visible" not in self.pairs and "hidden" not in self.pairs:
            self.note(self.node, "a list case needs visible: [...] or hidden: [...]")
        both = sorted(set(visible) & set(hidden))
        if both:
            self.note(self.pairs["hidden"][0], f"both visible and hidden: {listing(both)}")
        if listed not in LIST_KINDS:
            return None
        return ListCase(
            name=name,
            line=_line(self.node),
            caller=caller,
            kind=LIST_KINDS[listed],
            visible=visible,
            hidden=hidden,
        )

    # -- values --------------------------------------------------------------------------------

    def _refuse(self, keys: tuple[str, ...], why: str) -> None:
        for key in keys:
            if key in self.pairs:
                self.note(self.pairs[key][0], f"{key}: {why}")

    def _text(self, key: str, *, required: bool = True) -> str | None:
        if key not in self.pairs:
            if required:
                self.note(self.node, f"{key}: is missing")
            return None
        value = self.values[key]
        if not isinstance(value, str) or not value.strip():
            hint = " (quote it)" if isinstance(value, int | float) else ""
            self.note(
                self.pairs[key][0], f"{key}: must be a non-empty string, not {type_of(value)}{hint}"
            )
            return None
        return value

    def _object(self, key: str) -> Mapping[str, Any] | None:
        if key not in self.pairs:
            return None
        value = self.values[key]
        if not isinstance(value, dict):
            self.note(self.pairs[key][0], f"{key}: must be a mapping, not {type_of(value)}")
            return None
        bad = not_json(value, key)
        if bad is not None:
            self.note(self.pairs[key][0], bad)
            return None
        return value

    def _names(self, key: str) -> tuple[str, ...]:
        if key not in self.pairs:
            return ()
        value = self.values[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.note(self.pairs[key][0], f"{key}: must be a list of names, not {type_of(value)}")
            return ()
        return tuple(value)
