"""Which names a server's own components have, known in O(1).

FastMCP answers a lookup of a name it does not hold by falling back through
every version of every component (milliseconds on a large server), while a
name it holds is found at once: an unknown name would be told from a hidden
one by the time the answer takes. The guard answers such names from this
index instead.

The index is rebuilt only when the local provider's component table changes.
FastMCP keeps no change counter, so the guard gives the table one: it swaps
the provider's dict for a :class:`_CountingDict` (a ``dict`` that counts its
own writes) when it takes over the server. Where that swap did not happen, or
FastMCP replaced the table since, the index is not used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["count_changes", "names_of"]


class _CountingDict(dict[str, Any]):
    """A dict that counts every write, so whoever indexes it knows when to rebuild."""

    changes = 0
    #: The index of names, and the count of writes it was built at.
    names: frozenset[str] = frozenset()
    indexed_at = -1

    def __setitem__(self, key: str, value: Any) -> None:
        self.changes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.changes += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self.changes += 1
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self.changes += 1
        return super().popitem()

    def clear(self) -> None:
        self.changes += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.changes += 1
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.changes += 1
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> _CountingDict:  # type: ignore[override,misc]
        self.changes += 1
        super().__ior__(other)
        return self


def count_changes(provider: Any) -> bool:
    """Give ``provider``'s component table a change counter; whether it has one now."""
    table = getattr(provider, "_components", None)
    if isinstance(table, _CountingDict):
        return True
    if type(table) is not dict:
        return False
    provider._components = _CountingDict(table)
    return True


def names_of(provider: Any) -> frozenset[str] | None:
    """The ``kind:name`` of every component in ``provider``'s table, or ``None`` if unknown.

    ``None`` when the table has no change counter (see :func:`count_changes`).
    """
    table = getattr(provider, "_components", None)
    if not isinstance(table, _CountingDict):
        return None
    if table.indexed_at != table.changes:
        # Keys are `kind:name@version`; a name may hold `@`, a version does not.
        table.names = frozenset(key.rpartition("@")[0] for key in list(table))
        table.indexed_at = table.changes
    return table.names
