"""Run every Python example of the docs against the built wheel, in a fresh virtual environment.

The docs promise that their examples run after a plain ``pip install
permit-guard``. This script keeps that promise honest: it builds the wheel of
this checkout, installs it with pip into a new virtual environment (nothing
else: no dev dependencies, no source tree on the path), and runs each
```python block of README.md and docs/**/*.md there, each in its own process
with a timeout, reporting the file and line of every failure.

The convention, for whoever writes docs:

- Every ```python block runs, as a script on its own.
- A block that is not meant to run as it stands (an excerpt, a fragment
  that continues the example above it, a server that needs Redis or a real
  identity provider) says so on the line before its fence, with a reason::

      <!-- not run: an excerpt; needs your own `db` -->
      ```python

  A marker without a reason, or with no ```python block right after it (blank
  lines aside), is an error. The marker is an HTML comment, so readers do not
  see it: the text around such a block should say what it needs; the reason
  is for whoever edits the page next (``--list`` shows them all).
- A block runs in a fresh temporary folder holding a copy of ``examples/``
  twice over: as ``examples/`` (so ``examples/policy.yaml`` works as from the
  repository root) and at the top (so ``policy.yaml`` is the quickstart's
  policy, and ``quickstart.py`` is there to import).
- A block may only use the network on localhost. Where the machine allows it
  (Linux, as root, with ``unshare`` and ``ip``), each block runs in a network
  namespace of its own with only the loopback interface, so one that reaches
  further fails instead of passing by luck.

Usage::

    python3 scripts/run_doc_snippets.py              # build, install, run them all
    python3 scripts/run_doc_snippets.py docs/testing.md --timeout 30
    python3 scripts/run_doc_snippets.py --list       # what would run, and what would not
    python3 scripts/run_doc_snippets.py --venv /tmp/docs-venv   # keep the venv: faster re-runs

Exit status: 0 when every block that runs passed, 1 when one failed, 2 on a
marker error or when the wheel cannot be built or installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: ``<!-- not run: REASON -->``, alone on its line.
_MARKER = re.compile(r"^<!--\s*not run\s*:?(?P<reason>.*?)-->\s*$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


class SnippetError(ValueError):
    """A document whose snippets cannot be read: a bad marker, or a fence never closed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Snippet:
    """One ```python block of a document.

    Attributes:
        path: The document, as named to the runner (``docs/testing.md``).
        line: The line of the block's first line of code, counting from 1.
        code: The block's code.
        skip: Why it is not run, from its ``<!-- not run: ... -->`` marker;
            ``None`` when it runs.
    """

    path: str
    line: int
    code: str
    skip: str | None = None

    @property
    def where(self) -> str:
        """``docs/testing.md:123``: the block's first line of code."""
        return f"{self.path}:{self.line}"


def extract(text: str, path: str) -> list[Snippet]:
    """Every ```python block of a Markdown document, with its marker if it has one.

    Args:
        text: The document.
        path: Its name, for the snippets' ``where`` and for errors.

    Returns:
        The blocks in document order.

    Raises:
        SnippetError: On a marker without a reason, a marker not followed by a
            ```python block, or a fence that is never closed.
    """
    snippets: list[Snippet] = []
    lines = text.splitlines()
    pending: tuple[int, str] | None = None  # (line, reason) of a marker awaiting its block
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line.strip())
        fence = _FENCE.match(line)
        if marker:
            reason = marker.group("reason").strip()
            if not reason:
                raise SnippetError(
                    f"{path}:{index + 1}: a not-run marker needs a reason: "
                    "<!-- not run: why it does not run as it stands -->"
                )
            pending = (index + 1, reason)
            index += 1
            continue
        if fence is None:
            if line.strip() and pending is not None:
                raise _orphan(path, pending[0])
            index += 1
            continue
        opening = fence.group("fence")
        language = (fence.group("info").strip().split() or [""])[0].lower()
        start = index + 1
        end = start
        while end < len(lines) and not (
            lines[end].startswith(opening[0] * len(opening))
            and not lines[end].strip(opening[0]).strip()
        ):
            end += 1
        if end == len(lines):
            raise SnippetError(f"{path}:{index + 1}: this {opening} fence is never closed")
        if language == "python":
            code = "\n".join(lines[start:end]) + "\n"
            skip = pending[1] if pending else None
            snippets.append(Snippet(path=path, line=start + 1, code=code, skip=skip))
        elif pending is not None:
            raise _orphan(path, pending[0])
        pending = None
        index = end + 1
    if pending is not None:
        raise _orphan(path, pending[0])
    return snippets


def _orphan(path: str, line: int) -> SnippetError:
    return SnippetError(
        f"{path}:{line}: a not-run marker must stand right before a ```python block"
    )


def documents(root: Path) -> list[Path]:
    """README.md and every Markdown file under docs/, in a stable order."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def collect(paths: Iterable[Path], root: Path) -> list[Snippet]:
    """The snippets of ``paths``, named relative to ``root``."""
    found: list[Snippet] = []
    for path in paths:
        name = path.resolve().relative_to(root).as_posix()
        found.extend(extract(path.read_text(encoding="utf-8"), name))
    return found


def failure_line(snippet: Snippet, script: Path, stderr: str) -> int:
    """The document line a traceback points at: its last frame in the snippet, else the block."""
    frames = re.findall(rf'File "{re.escape(str(script))}", line (\d+)', stderr)
    return snippet.line + int(frames[-1]) - 1 if frames else snippet.line


# -- building and installing ----------------------------------------------------------------------


def build_wheel(root: Path, into: Path) -> Path:
    """The wheel of the checkout at ``root``, built with pip into ``into``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into), str(root)],
        check=True,
    )
    wheels = sorted(into.glob("permit_guard-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one permit_guard wheel in {into}, found {wheels}")
    return wheels[0]


def install(where: Path, wheel: Path) -> Path:
    """``wheel`` pip-installed in the virtual environment at ``where``; its python.

    A new environment when there is none at ``where``; in one kept from an
    earlier run (``--venv``), the wheel replaces the one installed before.
    """
    python = where / ("Scripts" if os.name == "nt" else "bin") / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if python.exists():
        subprocess.run([*pip, "--force-reinstall", "--no-deps", str(wheel)], check=True)
        subprocess.run([*pip, str(wheel)], check=True)  # a dependency added since
    else:
        subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
        subprocess.run([*pip, str(wheel)], check=True)
    return python


def loopback_only() -> list[str]:
    """A command prefix that runs a program with only the loopback network, or ``[]``."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    prefix = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else []


# -- running --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """What running one snippet did."""

    snippet: Snippet
    passed: bool
    where: str
    detail: str = ""


def lay_out(folder: Path, examples: Path) -> None:
    """``examples/`` copied into ``folder`` as ``examples/``, and its files at the top."""
    shutil.copytree(examples, folder / "examples")
    for item in examples.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)


def run_one(
    snippet: Snippet, python: Path, examples: Path, timeout: float, prefix: Sequence[str]
) -> Outcome:
    """Run one snippet as a script, in its own folder and process group."""
    with tempfile.TemporaryDirectory(prefix="doc-snippet-") as folder:
        work = Path(folder)
        lay_out(work, examples)
        script = work / "snippet.py"
        script.write_text(snippet.code, encoding="utf-8")
        # Only what a user's shell would have: no PERMIT_MCP_* of this machine's,
        # no source tree on the path.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PERMIT_MCP_", "PYTHON", "VIRTUAL_ENV"))
        }
        env["PYTHONIOENCODING"] = "utf-8"
        process = subprocess.Popen(
            [*prefix, str(python), str(script)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The whole group: a snippet may have started servers or children.
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            return Outcome(
                snippet=snippet,
                passed=False,
                where=snippet.where,
                detail=f"did not finish within {timeout:g}s\n{_tail(out + err)}",
            )
    if process.returncode == 0:
        return Outcome(snippet=snippet, passed=True, where=snippet.where)
    line = failure_line(snippet, script, err)
    return Outcome(
        snippet=snippet,
        passed=False,
        where=f"{snippet.path}:{line}",
        detail=f"exit {process.returncode}\n{_tail(err or out)}",
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(f"    {line}" for line in text.rstrip().splitlines()[-lines:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the docs' Python examples against the built wheel in a fresh venv."
    )
    parser.add_argument("files", nargs="*", type=Path, help="documents (default: all)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per snippet")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="snippets at once")
    parser.add_argument("--list", action="store_true", help="list the snippets, run nothing")
    parser.add_argument(
        "--venv",
        type=Path,
        help="keep the virtual environment here between runs (default: a fresh one each run)",
    )
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.files] or documents(ROOT)
    try:
        snippets = collect(paths, ROOT)
    except (SnippetError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runnable = [s for s in snippets if s.skip is None]
    skipped = [s for s in snippets if s.skip is not None]
    if args.list:
        for snippet in snippets:
            print(
                f"{snippet.where}: {'runs' if snippet.skip is None else 'not run: ' + snippet.skip}"
            )
        return 0
    with tempfile.TemporaryDirectory(prefix="doc-snippets-") as scratch:
        try:
            wheel = build_wheel(ROOT, Path(scratch) / "dist")
            python = install(args.venv.resolve() if args.venv else Path(scratch) / "venv", wheel)
        except (subprocess.CalledProcessError, RuntimeError) as exc:
            print(f"error: could not build and install the wheel: {exc}", file=sys.stderr)
            return 2
        prefix = loopback_only()
        network = "loopback only" if prefix else "the machine's (no namespace available)"
        print(f"{wheel.name} installed in {python.parent.parent}; network: {network}", flush=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(
                    lambda s: run_one(s, python, ROOT / "examples", args.timeout, prefix),
                    runnable,
                )
            )
    for outcome in outcomes:
        print(f"{outcome.where}: {'ok' if outcome.passed else 'FAILED'}")
        if not outcome.passed:
            print(outcome.detail)
    failed = sum(not outcome.passed for outcome in outcomes)
    print(f"snippets: {len(outcomes) - failed} passed, {failed} failed, {len(skipped)} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
