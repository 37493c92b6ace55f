"""A small Chrome DevTools Protocol client: one page of a real headless chromium, for tests.

No browser package: chromium is started as a process with
``--remote-debugging-port=0``, its port read from the ``DevToolsActivePort``
file it writes, and the page driven over the websocket it offers (the
``websockets`` package FastMCP already depends on). Every wait is bounded, and
the browser is killed when the page is closed, whatever happened.

Example::

    async with open_page(Path("matrix.html").resolve().as_uri()) as page:
        title = await page.evaluate("document.title")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect

__all__ = ["CHROMIUM", "BrowserError", "Page", "open_page"]

CHROMIUM: Final = Path("/usr/bin/chromium")

#: Seconds for chromium to start and for the page to load.
STARTUP_TIMEOUT: Final = 30.0
#: Seconds for one protocol command to be answered.
COMMAND_TIMEOUT: Final = 15.0

_FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # tests run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


class BrowserError(Exception):
    """Chromium did not start, a command failed, or a script raised in the page."""


class Page:
    """One page of a running chromium, spoken to through its DevTools websocket."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one protocol command and return its result (events in between are skipped).

        Raises:
            BrowserError: On a protocol error, or no answer within ``COMMAND_TIMEOUT``.
        """
        number = next(self._ids)
        await self._socket.send(
            json.dumps({"id": number, "method": method, "params": params or {}})
        )
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:
                message = json.loads(await self._socket.recv())
                if message.get("id") != number:
                    continue  # an event, or an answer to nobody still waiting
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a script run in the page (a promise is awaited).

        Raises:
            BrowserError: When the script throws.
        """
        answer = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"the page's script raised: {text}")
        return answer.get("result", {}).get("value")

    async def wait_loaded(self) -> None:
        """Wait, bounded by ``STARTUP_TIMEOUT``, until the document has loaded."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while await self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise BrowserError("the page did not finish loading")
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> None:
        """Save the page, all of it, as a PNG file."""
        size = await self.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        width, height = (max(int(v), 1) for v in size)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False},
        )
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@contextlib.asynccontextmanager
async def open_page(url: str) -> AsyncIterator[Page]:
    """Start a headless chromium, open ``url`` and give its page; the browser is killed after.

    Raises:
        BrowserError: When chromium does not start or offers no page in time.
    """
    profile = Path(tempfile.mkdtemp(prefix="permit-guard-chromium-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        process = _start(profile)
        socket_url = await asyncio.to_thread(_page_socket, profile, process)
        async with connect(socket_url, max_size=64 * 2**20, open_timeout=COMMAND_TIMEOUT) as ws:
            page = Page(ws)
            # Navigated to here, not on the command line: once Page.navigate answers, the
            # document is the new one, so its readyState is the page's and not about:blank's.
            answer = await page.send("Page.navigate", {"url": url})
            if "errorText" in answer:
                raise BrowserError(f"chromium could not open {url}: {answer['errorText']}")
            await page.wait_loaded()
            yield page
    finally:
        _stop(process, profile)


def _start(profile: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CHROMIUM), *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: its helpers are killed with it
    )


def _stop(process: subprocess.Popen[bytes] | None, profile: Path) -> None:
    """Stop chromium and its helpers (bounded), and remove its profile."""
    if process is not None:
        process.terminate()  # chromium then stops its helper processes itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever of its group is left
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    shutil.rmtree(profile, ignore_errors=True)


def _page_socket(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """The websocket of the browser's page, once chromium listens (bounded wait).

    Chromium writes its port to ``DevToolsActivePort`` in the profile; ``GET
    /json`` on that port lists its targets.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT
    announced = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with code {process.returncode} on start")
        port = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            lines = announced.read_text().splitlines()
            if len(lines) >= 2:  # the file is complete once both lines are there
                port = int(lines[0])
        if port is not None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as answer:
                targets = json.loads(answer.read())
            pages = [t for t in targets if t.get("type") == "page" and "webSocketDebuggerUrl" in t]
            if pages:
                found: str = pages[0]["webSocketDebuggerUrl"]
                return found
        time.sleep(0.05)
    raise BrowserError(f"chromium offered no page within {STARTUP_TIMEOUT}s")
