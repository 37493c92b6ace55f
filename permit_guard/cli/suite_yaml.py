"""A suite file's YAML, read as nodes that keep their lines, within the policy files' bounds.

The suite reader (:mod:`~permit_guard.cli.suite_read`) walks the nodes, so
every problem it finds names the line it stands on; values are built from the
nodes by the same bounded safe loader that reads policy files (a size cap, no
alias bombs, bounded nesting, no value containing itself), and a repeated key
is a problem rather than a silently replaced entry.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Final

import yaml

from permit_guard.cli.suite import Problem
from permit_guard.engines.local.bounds import BoundedLoader, read_capped, too_deep
from permit_guard.exceptions import PolicyFileError

__all__ = ["MAX_SUITE_BYTES", "Document", "Pair", "listing", "not_json", "relative", "type_of"]

#: The largest suite file read, in bytes.
MAX_SUITE_BYTES: Final = 2 * 1024 * 1024

#: A mapping entry: its key node (where the entry stands) and its value node.
Pair = tuple[yaml.Node, yaml.Node]

_MERGE: Final = "tag:yaml.org,2002:merge"


class _Loader(BoundedLoader):
    """The policy files' bounded safe loader, noting repeated keys in the values it builds."""

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream, source=source)
        self.duplicates: list[yaml.ScalarNode] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        # A repeated argument would silently replace the first: the case would test another call.
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                if ident in seen:
                    self.duplicates.append(key_node)
                seen.add(ident)
        return super().construct_mapping(node, deep=deep)


class Document:
    """One suite file: its root node, and the problems found while reading it.

    Args:
        file: The file, as given (problems name it so).
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._loader: _Loader | None = None

    def note(self, node: yaml.Node | None, message: str) -> None:
        """Record a problem at the line where ``node`` starts (the whole file: ``None``)."""
        line = node.start_mark.line + 1 if node is not None else None
        self.problems.append(Problem(file=self.file, line=line, message=message))

    def root(self) -> yaml.Node | None:
        """The document's root node; ``None`` (and a problem) when there is none to read."""
        text = self._text()
        if text is None:
            return None
        self._loader = loader = _Loader(text, source=self.file)
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            self.problems.append(_syntax_error(self.file, exc))
            return None
        except yaml.YAMLError as exc:
            self.note(None, f"invalid YAML: {exc}")
            return None
        except RecursionError:
            self.note(None, too_deep("YAML"))
            return None
        except PolicyFileError as exc:
            # A bound the loader found (aliases, nesting, size), as "line N: ...".
            for problem in exc.problems:
                head, _, rest = problem.partition(": ")
                number = head.removeprefix("line ").split(" ")[0]
                # The bounds are the policy files'; their words are too.
                message = (rest or problem).replace("a policy", "a suite")
                line = int(number) if number.isdigit() else None
                self.problems.append(Problem(file=self.file, line=line, message=message))
            return None
        finally:
            loader.dispose()
        if root is None:
            self.note(None, "the suite is empty; it needs server: and cases:")
        return root

    def _text(self) -> str | None:
        try:
            raw = read_capped(self.file, MAX_SUITE_BYTES, what="a suite file")
        except FileNotFoundError:
            self.note(None, "suite file not found")
            return None
        except OSError as exc:
            self.note(None, f"cannot read the suite file: {exc.strerror or exc}")
            return None
        except PolicyFileError as exc:
            for problem in exc.problems:
                self.note(None, problem)
            return None
        try:
            # utf-8-sig: editors on Windows like to start files with a byte-order mark.
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self.note(None, f"not UTF-8 text (byte {exc.start})")
            return None

    def pairs(self, node: yaml.MappingNode, where: str, known: Sequence[str]) -> dict[str, Pair]:
        """A mapping's entries by key; repeated, unknown and non-string keys are problems.

        ``<<: *defaults`` merges another mapping in; the mapping's own keys win.
        """
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE:
                if key_node.value in seen:
                    self.note(key_node, f"{where}: duplicate key {key_node.value!r}")
                seen.add(key_node.value)
        try:
            self._built().flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.note(node, f"{where}: {exc.problem}")
            return {}
        found: dict[str, Pair] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key_node.tag != "tag:yaml.org,2002:str":
                shown = self.value(key_node, where) if isinstance(key_node, yaml.ScalarNode) else []
                self.note(key_node, f"{where}: keys are names, not {type_of(shown)}")
            elif key not in known:
                self.note(key_node, f"{where}: unknown key {key!r}{_suggestion(key, known)}")
            else:
                found[key] = (key_node, value_node)
        return found

    def value(self, node: yaml.Node, where: str) -> Any:
        """The node as a Python value (``None``, and a problem, when YAML cannot make one).

        Args:
            node: The value's node.
            where: What holds it (``case 'x': args``), for the problems' messages.
        """
        loader = self._built()
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:  # e.g. a bad !!binary, an unknown tag
            self.note(node, f"{where}: value cannot be read: {exc.problem}")
            return None
        except (yaml.YAMLError, ValueError) as exc:  # e.g. an integer of thousands of digits
            self.note(node, f"{where}: value cannot be read: {exc}")
            return None
        for key_node in loader.duplicates:
            self.note(key_node, f"{where}: duplicate key {key_node.value!r}")
        loader.duplicates.clear()
        return value

    def _built(self) -> _Loader:
        if self._loader is None:
            raise RuntimeError("Document.root() must be read first")
        return self._loader


def _syntax_error(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    """The problem of a file YAML cannot parse, at the line YAML names."""
    mark, start = exc.problem_mark, exc.context_mark
    message = f"invalid YAML: {exc.problem}"
    if exc.context and start is not None and (mark is None or start.line != mark.line):
        message += f" ({exc.context} at line {start.line + 1}, column {start.column + 1})"
    elif exc.context:
        message += f" ({exc.context})"
    mark = mark or start
    return Problem(file=file, line=mark.line + 1 if mark is not None else None, message=message)


def relative(folder: str, name: str) -> str:
    """``name`` as a path relative to the current folder, given relative to ``folder``."""
    return os.path.normpath(os.path.join(folder, os.path.expanduser(name)))


def not_json(value: object, where: str) -> str | None:
    """Why ``value`` is not what a client could send as JSON, else ``None``.

    The loader bounds nesting and refuses values containing themselves, so the walk ends.
    """
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: {value} is not a JSON number"
    if isinstance(value, list):
        items: Iterable[tuple[object, object]] = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
    else:
        return f"{where}: {type_of(value)} is not a JSON value (quote it)"
    for key, item in items:
        if isinstance(value, dict) and not isinstance(key, str):
            return f"{where}: keys are names, not {type_of(key)}"
        found = not_json(item, f"{where}[{key}]" if isinstance(value, list) else f"{where}.{key}")
        if found is not None:
            return found
    return None


def type_of(value: object) -> str:
    """What a YAML value is, in words, for a problem's message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def listing(names: Iterable[object]) -> str:
    """Names, comma separated."""
    return ", ".join(str(n) for n in names)


def _suggestion(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if key in ("claims", "token"):
        hint = "; a suite names the caller with user, tenant and attributes"
    return f" (known: {listing(known)}){hint}"
