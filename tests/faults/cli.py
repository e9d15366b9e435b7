"""The real `sdstream` command as a subprocess, and loopback HTTP probes of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SDSTREAM = Path(sys.executable).with_name("sdstream")
ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Finished:
    code: int
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without SDSTREAM_* variables, plus `extra`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("SDSTREAM_")}
    return kept | dict(extra)


async def run(*args: str, env: Mapping[str, str], timeout_s: float = 60) -> Finished:
    process = await asyncio.create_subprocess_exec(
        SDSTREAM, *args, env=environment(env), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return Finished(process.returncode or 0, stderr.decode(errors="replace"))


async def status_of(port: int, path: str) -> int | None:
    """The HTTP status of GET `path`, None while nothing listens."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readline()
        return int(head.split()[1]) if head else None
    except (OSError, IndexError, ValueError):
        return None
    finally:
        writer.close()


@dataclass(eq=False)
class Running:
    """A long-running `sdstream` process; its stderr lines are collected as they come."""

    process: asyncio.subprocess.Process
    lines: list[str]
    reader: asyncio.Task[None]

    async def ready(self, port: int, *, timeout_s: float = 90) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while await status_of(port, "/readyz") != 200:
                    assert self.process.returncode is None, "\n".join(self.lines[-20:])
                    await asyncio.sleep(0.2)
        except TimeoutError:
            said = "\n".join(self.lines[-25:])
            raise AssertionError(f"not ready within {timeout_s} s; last lines:\n{said}") from None


async def _collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    async for raw in stream:
        lines.append(raw.decode(errors="replace").rstrip("\n"))  # noqa: PERF401 - live


@contextlib.asynccontextmanager
async def running(*args: str, env: Mapping[str, str]) -> AsyncIterator[Running]:
    """Run `sdstream *args`; on exit SIGTERM it and wait (kill after 30 s)."""
    process = await asyncio.create_subprocess_exec(
        SDSTREAM, *args, env=environment(env), cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    lines: list[str] = []
    reader = asyncio.create_task(_collect(process.stderr, lines))
    try:
        yield Running(process, lines, reader)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        await reader


async def body_of(port: int, path: str) -> bytes:
    """The body of GET `path` (empty while nothing listens)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return b""
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        return (await reader.read()).partition(b"\r\n\r\n")[2]
    except OSError:
        return b""
    finally:
        writer.close()
