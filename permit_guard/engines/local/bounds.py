"""Bounds on a policy: its file size, its nesting, its aliases and what they expand to.

A policy file comes from whoever can write to it, and a few hundred bytes of
YAML anchors can stand for a billion values (an "alias bomb"): a list of ten
aliases to a list of ten aliases multiplies the policy by ten without making
the file longer. Loading refuses a policy beyond any of these bounds with a
:class:`~permit_guard.exceptions.PolicyFileError` naming the source and the
bound, before anything is expanded, so a hostile file costs milliseconds
rather than all the memory of the machine:

- :data:`MAX_FILE_BYTES`: the size of the file as read.
- :data:`MAX_ALIASES`: the YAML alias uses (``*name``) in a file.
- :data:`MAX_NODES`: the values of the policy (scalars, keys, lists and
  mappings), counting each use of an alias -- or of a list or mapping that a
  dict given to ``load_policy`` shares -- in full.
- :data:`MAX_DEPTH`: how many lists and mappings may enclose each other.

The size of an anchored value is measured once, when it is composed, and each
alias adds that size without expanding anything, so checking costs time in
proportion to the file, not to what it would expand to.

Example:
    >>> policy: dict[str, object] = {"roles": {"reader": {"grants": {}}}}
    >>> check_data(policy, source="<dict>")
    >>> policy["roles"] = {"self": policy}
    >>> check_data(policy, source="<dict>")
    Traceback (most recent call last):
    ...
    permit_guard.exceptions.PolicyFileError: invalid policy <dict>:
      - roles.self: contains itself; a policy cannot
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NoReturn

import yaml

from permit_guard.engines.local.compiler import child_location
from permit_guard.exceptions import PolicyFileError

__all__ = [
    "MAX_ALIASES",
    "MAX_DATA_FILE_BYTES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "BoundedLoader",
    "check_data",
    "read_capped",
    "too_deep",
]

#: The largest policy file read, in bytes (2 MiB): room for tens of thousands of
#: users, and a bound on the time the pure-Python YAML parser spends on a file.
MAX_FILE_BYTES: Final = 2 * 1024 * 1024

#: The most bytes a data file (facts only, see ``reading``) may have.
MAX_DATA_FILE_BYTES: Final = 32 * 1024 * 1024

#: The most YAML alias uses (``*name``) in one file. Hand-written policies use
#: a few, to share a list of actions or an operand; a bomb needs many.
MAX_ALIASES: Final = 500

#: The most values (scalars, keys, lists, mappings) a policy may hold with its
#: aliases expanded: about what the largest file holds written out, so aliases
#: save typing but cannot make a policy bigger than a file could be.
MAX_NODES: Final = 1_000_000

#: The most lists and mappings that may enclose each other. A real policy nests
#: about ten deep (an operand in a condition in ``allOf`` in a resource set);
#: the bound keeps every recursive step of loading far from Python's recursion limit.
MAX_DEPTH: Final = 64


def too_deep(where: str) -> str:
    """The problem line for a policy nested beyond :data:`MAX_DEPTH`.

    Args:
        where: The location, e.g. ``"line 70"`` or ``"roles.admin"``.

    Returns:
        ``"<where>: nested more than 64 lists and mappings deep; ..."``.
    """
    return (
        f"{where}: nested more than {MAX_DEPTH} lists and mappings deep; "
        f"a policy may nest at most {MAX_DEPTH}"
    )


def _too_many(where: str, *, counting: str) -> str:
    return (
        f"{where}: holds more than {MAX_NODES:,} values, counting each {counting} in full; "
        f"a policy may hold at most {MAX_NODES:,}"
    )


def too_large(limit: int, what: str) -> str:
    """The problem of a file over ``limit`` bytes."""
    mib = limit // (1024 * 1024)
    return f"the file is larger than {mib} MiB ({limit:,} bytes), the most {what} may be"


def read_capped(path: str, limit: int = MAX_FILE_BYTES, *, what: str = "a policy file") -> bytes:
    """Read a policy file, refusing one larger than ``limit`` (:data:`MAX_FILE_BYTES`).

    Args:
        path: The file.
        limit: The most bytes it may have.
        what: What the file is, for the error.

    Returns:
        Its bytes.

    Raises:
        OSError: When the file cannot be read.
        PolicyFileError: When the file is too large.
    """
    with open(path, "rb") as file:
        # One byte past the bound tells enough: a huge file (or /dev/zero) is never read whole.
        raw = file.read(limit + 1)
    if len(raw) > limit:
        raise PolicyFileError(path, [too_large(limit, what)])
    return raw


class BoundedLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a document beyond the bounds while composing it.

    Every composed node's expanded size and height are memoised, so an alias to
    a large value costs one lookup, and loading stops at the line of the first
    node past a bound -- before the composer recurses deeper or anything is
    constructed.
    """

    def __init__(self, stream: str, *, source: str) -> None:
        super().__init__(stream)
        self._source = source
        self._aliases = 0
        self._depth = 0
        # id(node) -> (values with aliases expanded, lists and mappings nested in it).
        self._measures: dict[int, tuple[int, int]] = {}

    def _refuse(self, line: str) -> NoReturn:
        raise PolicyFileError(self._source, [line])

    def _peek(self) -> tuple[str, str | None]:
        """The line of the next event, and its anchor (or the alias's name)."""
        # The stubs leave Parser.peek_event untyped.
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return f"line {event.start_mark.line + 1}", event.anchor

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            return self._compose_alias(parent, index)
        where, _ = self._peek()
        collection = not self.check_event(yaml.ScalarEvent)
        if collection:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                self._refuse(too_deep(where))
        node = super().compose_node(parent, index)
        if collection:
            self._depth -= 1
        if node is None:
            return None
        values, height = 1, 0
        if collection:
            children = (
                [part for pair in node.value for part in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            for child in children:
                child_values, child_height = self._measures[id(child)]
                values += child_values
                height = max(height, child_height)
            height += 1
            if values > MAX_NODES:
                self._refuse(_too_many(where, counting="use of an alias"))
        self._measures[id(node)] = (values, height)
        return node

    def _compose_alias(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        where, name = self._peek()
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            self._refuse(
                f"{where}: more than {MAX_ALIASES} YAML aliases (*name); "
                f"a policy file may use at most {MAX_ALIASES}"
            )
        node = super().compose_node(parent, index)
        measure = None if node is None else self._measures.get(id(node))
        if measure is None:
            # The anchored value is still being composed: the alias is inside it.
            self._refuse(
                f"{where}: alias *{name} is used inside the value it names; "
                "a policy cannot contain itself"
            )
        elif self._depth + measure[1] > MAX_DEPTH:
            self._refuse(too_deep(f"{where} (alias *{name})"))
        return node


def check_data(data: object, *, source: str) -> None:
    """Refuse parsed policy data that is cyclic or beyond :data:`MAX_NODES` or :data:`MAX_DEPTH`.

    A list or mapping reachable more than once is measured once, so this costs
    time in proportion to the distinct values, not to the expanded policy.

    Args:
        data: The policy as parsed, or as given to ``load_policy``.
        source: Where it came from, for the error.

    Raises:
        PolicyFileError: Naming the location of the first value past a bound.
    """
    _Measure(source).measure(data, 1)


class _Measure:
    """One walk of parsed data; ``path`` is the key or index of each enclosing value."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.path: list[object] = []
        # id(value) -> (values, height) of the lists and mappings measured so far.
        self.measures: dict[int, tuple[int, int]] = {}
        self.open: set[int] = set()

    def refuse(self, line: str) -> NoReturn:
        raise PolicyFileError(self.source, [line])

    def where(self) -> str:
        where = ""
        for part in self.path:
            where = child_location(where, part)
        return where or "top level"

    def measure(self, value: object, depth: int) -> tuple[int, int]:
        if isinstance(value, Mapping):
            items: list[tuple[object, object]] = list(value.items())
        elif isinstance(value, list | tuple | set | frozenset):
            items = list(enumerate(value))
        else:
            return 1, 0
        known = self.measures.get(id(value))
        if known is not None:
            if depth - 1 + known[1] > MAX_DEPTH:
                self.refuse(too_deep(self.where()))
            return known
        if id(value) in self.open:
            # Fail closed: validating a cycle would never end.
            self.refuse(f"{self.where()}: contains itself; a policy cannot")
        if depth > MAX_DEPTH:
            self.refuse(too_deep(self.where()))
        self.open.add(id(value))
        # A mapping's keys are values too, as in the YAML count.
        values = 1 + (len(items) if isinstance(value, Mapping) else 0)
        height = 0
        for key, child in items:
            self.path.append(key)
            child_values, child_height = self.measure(child, depth + 1)
            self.path.pop()
            values += child_values
            height = max(height, child_height)
            if values > MAX_NODES:
                self.refuse(_too_many(self.where(), counting="shared list or mapping"))
        self.open.discard(id(value))
        self.measures[id(value)] = (values, height + 1)
        return values, height + 1
