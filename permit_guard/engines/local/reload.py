"""Hot reload of the embedded policy: a watched file, checked whole, swapped in at once.

``LocalPolicyEngine.from_file(path, reload=True)`` (or
``PERMIT_MCP_POLICY_RELOAD=true``) starts a :class:`PolicyWatcher`. It polls
the policy file, and the data file if there is one, every
:data:`POLL_INTERVAL` seconds (a ``stat``: size, modification time and
inode, so an editor's save-by-rename is seen too). When they change it reads
them, checks them exactly as at start, and publishes the new model with its
facts in one assignment, so every decision sees one whole policy. An edit
with problems, or a file that is gone, keeps the last good policy and logs
every problem with its location. Each reload, loaded or refused, is one audit
event on ``permit_guard.audit``.

Facts changed at run time (through ``engine.api``) and a reload:

- the files' facts (users, resource instances, relationships) unchanged: the
  runtime facts are kept, checked against the new model; if they no longer
  fit it (a role that was removed, say), the reload is refused;
- the files' facts changed: the files win, and the runtime changes are
  discarded (a WARNING says so). Keep runtime facts in a data file
  (``engine.save``) if they must survive an edit of the facts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from permit_guard.engines.local.facts import Facts
from permit_guard.engines.local.loading import LoadedPolicy, load_policy
from permit_guard.engines.local.reading import data_document, policy_document, with_facts
from permit_guard.exceptions import PolicyFileError

if TYPE_CHECKING:
    from permit_guard.engines.local.engine import LocalPolicyEngine

__all__ = ["POLL_INTERVAL", "PolicyWatcher"]

#: Seconds between two looks at the watched files; a change is in effect within about this.
POLL_INTERVAL: Final = 0.25

logger = logging.getLogger("permit_guard")
audit = logging.getLogger("permit_guard.audit")

#: What identifies a file's version without reading it (``None``: the file is gone).
Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _digest(paths: list[Path]) -> str | None:
    """The watched files' contents, hashed; ``None`` when one cannot be read."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(path.read_bytes())
        except OSError:
            return None
        digest.update(b"\0")
    return digest.hexdigest()


class PolicyWatcher:
    """Watches an engine's policy (and data) file and reloads it on change.

    Args:
        engine: The engine to swap new policies into.
        path: The policy file.
        data: The data file, if the engine was loaded with one.
        interval: Seconds between polls.
    """

    __slots__ = (
        "_data",
        "_digest",
        "_engine",
        "_file_facts",
        "_lock",
        "_path",
        "_paths",
        "_signatures",
        "_stop",
        "_thread",
        "generation",
    )

    def __init__(
        self,
        engine: LocalPolicyEngine,
        path: str | os.PathLike[str],
        data: str | os.PathLike[str] | None,
        *,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self._engine = engine
        self._path, self._data = os.fspath(path), None if data is None else os.fspath(data)
        self._paths = [Path(self._path)] + ([] if self._data is None else [Path(self._data)])
        # Taken before anything more is read: a change from here on is seen.
        self._signatures = [_signature(p) for p in self._paths]
        self._digest = _digest(self._paths)
        #: The facts the files stated at the last load, to tell runtime changes apart.
        self._file_facts = engine.policy.facts
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: How many policies were loaded: 1 at start, one more per reload.
        self.generation = 1
        self._thread = threading.Thread(
            target=self._watch, args=(interval,), name="permit-guard-policy-reload", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the engine keeps its current policy)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _watch(self, interval: float) -> None:
        while not self._stop.wait(interval):
            signatures = [_signature(p) for p in self._paths]
            if signatures == self._signatures:
                continue
            self._signatures = signatures
            try:
                self.reload()
            except Exception:
                # Never let a surprise end the watcher: the last good policy stays.
                logger.exception(
                    "reloading the policy %s failed; keeping the last good one", self._path
                )

    def reload(self) -> bool:
        """Read the files now; swap in their policy if it is valid and new.

        Returns:
            Whether a new policy was swapped in.
        """
        with self._lock:
            digest = _digest(self._paths)
            if digest is not None and digest == self._digest:
                return False  # touched, or saved unchanged: nothing to do
            try:
                document, source = policy_document(self._path, data=self._data)
                fresh = load_policy(document, source=source)
            except PolicyFileError as exc:
                self._refused(exc.problems)
                return False
            outcome = self._swap(fresh, document)
            if outcome is None:
                return False
            self._digest = digest
            self.generation += 1
            audit.info(
                json.dumps(
                    {
                        "event": "policy-reload",
                        "outcome": "loaded",
                        "source": fresh.source,
                        "generation": self.generation,
                        "facts": outcome,
                    }
                )
            )
            logger.info("policy %s reloaded (generation %d)", fresh.source, self.generation)
            return True

    def _swap(
        self, fresh: LoadedPolicy, document: object
    ) -> Literal["from the files", "kept", "replaced"] | None:
        """Publish ``fresh`` with the right facts; ``None`` when refused."""
        store_lock = self._engine.api.lock
        with store_lock:  # no directory change between the check of the facts and the swap
            runtime = self._engine.facts
            if runtime == self._file_facts:
                outcome: Literal["from the files", "kept", "replaced"] = "from the files"
                chosen = fresh
            elif fresh.facts == self._file_facts:
                kept = self._with_runtime(fresh, document, runtime)
                if kept is None:
                    return None
                outcome, chosen = "kept", kept
            else:
                logger.warning(
                    "policy %s: its facts changed, so they replace the facts changed at run time",
                    fresh.source,
                )
                outcome, chosen = "replaced", fresh
            self._engine.swap(chosen, chosen.facts)
            self._file_facts = fresh.facts
        return outcome

    def _with_runtime(
        self, fresh: LoadedPolicy, document: object, runtime: Facts
    ) -> LoadedPolicy | None:
        """``fresh``'s model with the runtime facts, checked like a data file; or refused."""
        if not isinstance(document, Mapping):  # it loaded, so it is one
            return None
        try:
            return load_policy(
                with_facts(document, data_document(runtime)),
                source=f"{fresh.source} (with the facts changed at run time)",
            )
        except PolicyFileError as exc:
            self._refused(exc.problems, what="the facts changed at run time do not fit it")
            return None

    def _refused(self, problems: Sequence[str], *, what: str = "") -> None:
        shown = f" ({what})" if what else ""
        logger.warning(
            "policy %s not reloaded%s; keeping the last good policy:\n  %s",
            self._path,
            shown,
            "\n  ".join(problems),
        )
        audit.warning(
            json.dumps(
                {
                    "event": "policy-reload",
                    "outcome": "refused",
                    "source": self._path,
                    "generation": self.generation,
                    "problems": list(problems),
                    **({"why": what} if what else {}),
                }
            )
        )
