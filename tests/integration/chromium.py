"""Headless Chromium over the DevTools protocol, for testing pages as a browser sees them.

Debian's `chromium` (installed by scripts/install where apt allows), driven over its
DevTools websocket with aiohttp (already a dependency): no Playwright or Selenium, which
would download a browser of their own. `Browser.visit(url)` loads a page in a fresh
tab and returns what a test needs: every console message, uncaught exception and log
entry of level error (CSP violations, failed loads included), any dialog a script tried
to open (`alert`), the text and HTML of the DOM after load, and a PNG screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BINARIES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")
FLAGS = (
    "--headless=new", "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--metrics-recording-only", "--mute-audio", "--hide-scrollbars",
    "--window-size=1280,900", "--remote-debugging-port=0", "--remote-allow-origins=*",
)  # fmt: skip


def binary() -> str | None:
    """The browser's path, or None when none is installed."""
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


@dataclass
class Visit:
    url: str
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, log errors
    console: list[str] = field(default_factory=list)  # every console message
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages
    text: str = ""  # document.body.innerText
    html: str = ""  # document.documentElement.outerHTML
    status: int | None = None
    screenshot: bytes = b""
    values: dict[str, Any] = field(default_factory=dict)  # the `expressions` asked, by name

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.screenshot)
        return path


class Browser:
    """`async with Browser.launch() as browser: visit = await browser.visit(url)`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[asyncio.Queue[dict[str, Any]]] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, *, timeout_s: float = 60) -> AsyncIterator[Browser]:
        path = binary()
        if path is None:
            raise RuntimeError(f"no browser found (looked for {', '.join(BINARIES)})")
        with tempfile.TemporaryDirectory(prefix="sdstream-chromium-") as profile:
            process = await asyncio.create_subprocess_exec(
                path, *FLAGS, f"--user-data-dir={profile}", "about:blank",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
            assert process.stderr is not None  # piped above
            drain: asyncio.Future[None] | None = None
            try:
                async with asyncio.timeout(timeout_s):
                    url = await _devtools_url(process)
                drain = asyncio.ensure_future(_discard(process.stderr))  # a full pipe blocks it
                async with (
                    aiohttp.ClientSession() as http,
                    http.ws_connect(url, max_msg_size=0) as ws,
                ):
                    browser = cls(ws)
                    try:
                        yield browser
                    finally:
                        browser._reader.cancel()
            finally:
                await _stop(process)
                if drain is not None:
                    drain.cancel()

    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": dict(params or {})}
        if session is not None:
            message["sessionId"] = session
        reply = self._waiting[number] = asyncio.get_running_loop().create_future()
        await self._ws.send_json(message)
        async with asyncio.timeout(30):
            answer = await reply
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = message.json()
            waiting = self._waiting.pop(data.get("id", -1), None)
            if waiting is not None and not waiting.done():
                waiting.set_result(data)
            elif "method" in data:
                for queue in self._listeners:
                    queue.put_nowait(data)

    async def visit(
        self, url: str, *, expressions: Mapping[str, str] | None = None, timeout_s: float = 30
    ) -> Visit:
        """Load `url` in a new tab; wait for its load event; gather what it did, and the
        values of `expressions` (JavaScript, evaluated by DevTools: the page's CSP does
        not apply to it)."""
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._listeners.append(events)
        target = (await self.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
        try:
            attach = {"targetId": target, "flatten": True}
            session = (await self.call("Target.attachToTarget", attach))["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await self.call(f"{domain}.enable", session=session)
            visit = Visit(url)
            await self.call("Page.navigate", {"url": url}, session=session)
            async with asyncio.timeout(timeout_s):
                while True:
                    event = await events.get()
                    if event.get("sessionId") != session:
                        continue
                    await self._note(visit, event, session)
                    if event["method"] == "Page.loadEventFired":
                        break
            await self._drain(visit, events, session)
            visit.text = await self._evaluate("document.body.innerText", session)
            visit.html = await self._evaluate("document.documentElement.outerHTML", session)
            for name, expression in (expressions or {}).items():
                visit.values[name] = await self._evaluate(expression, session)
            shot = await self.call("Page.captureScreenshot", {"format": "png",
                                   "captureBeyondViewport": True}, session=session)  # fmt: skip
            visit.screenshot = base64.b64decode(shot["data"])
            return visit
        finally:
            self._listeners.remove(events)
            await self.call("Target.closeTarget", {"targetId": target})

    async def _drain(
        self, visit: Visit, events: asyncio.Queue[dict[str, Any]], session: str
    ) -> None:
        """Events already sent: a round trip to the browser orders them before its reply."""
        await self._evaluate("1", session)
        while not events.empty():
            event = events.get_nowait()
            if event.get("sessionId") == session:
                await self._note(visit, event, session)

    async def _evaluate(self, expression: str, session: str) -> Any:
        found = await self.call("Runtime.evaluate", {"expression": expression,
                                "returnByValue": True}, session=session)  # fmt: skip
        return found["result"].get("value")

    async def _note(self, visit: Visit, event: dict[str, Any], session: str) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            visit.console.append(f"{params['type']}: {text}")
            if params["type"] in ("error", "assert"):
                visit.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            visit.errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            visit.errors.append(f"log ({entry['source']}): {entry['text']} {entry.get('url', '')}")
        elif method == "Page.javascriptDialogOpening":
            visit.dialogs.append(params["message"])
            await self.call("Page.handleJavaScriptDialog", {"accept": False}, session=session)
        elif method == "Network.responseReceived" and params.get("type") == "Document":
            visit.status = visit.status or params["response"]["status"]


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen: list[bytes] = []
    while line := await process.stderr.readline():
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode()
        seen.append(line)
    raise RuntimeError(f"chromium exited: {b''.join(seen[-20:]).decode(errors='replace')}")


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(1 << 16):
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Chromium's own processes share its session: stop them all, by its group id."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
