"""The cache directory and a way to run long steps with visible progress.

Everything fetched or built lives under one directory (default
`~/.cache/sdstream`, or `$SDSTREAM_CACHE`), keyed by version, so a second run
reuses it and `rm -rf` of that directory gives a truly cold start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from sdstream.devstack.errors import DevstackError

HEARTBEAT_S = 30.0


def cache_dir(override: Path | None = None) -> Path:
    if override is not None:
        return override
    env = os.environ.get("SDSTREAM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sdstream"


@contextlib.contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the cache for fetching and building (released at exit, even
    if the process is killed); a second builder says it waits, then waits."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another build in {root} to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def say(message: str, *, who: str = "devstack") -> None:
    """Progress for humans, on stderr so `devstack env` output stays clean."""
    print(f"{who}: {message}", file=sys.stderr, flush=True)


def run_logged(
    argv: Sequence[str | Path],
    *,
    log: Path,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a long step, appending its output to `log`, saying it is still alive.

    A failure raises DevstackError naming the step and the log file.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"{what} ... (log: {log})")
    done = threading.Event()

    def heartbeat() -> None:
        while not done.wait(HEARTBEAT_S):
            say(f"{what}: still running, {time.monotonic() - started:.0f}s")

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(map(str, argv))}\n".encode())
            out.flush()
            result = subprocess.run(
                [str(a) for a in argv],
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
    except FileNotFoundError as exc:
        raise DevstackError(f"{what} failed: {exc.filename} not found", log=log) from exc
    finally:
        done.set()
    if result.returncode != 0:
        tail = _last_line(log)
        raise DevstackError(f"{what} failed with exit {result.returncode}: {tail}", log=log)
    say(f"{what}: done in {time.monotonic() - started:.0f}s")


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"
