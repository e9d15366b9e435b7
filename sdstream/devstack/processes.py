"""Start, probe and stop the devstack's server processes.

Servers run detached in their own session (so `devstack up` can return), with
output in a log file in the run directory; they are stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sdstream.devstack.errors import DevstackError

_PORTS = range(20000, 32000)  # below Linux's ephemeral range (32768-60999), where the
# kernel picks ports for outgoing connections: a port found free there can be taken by a
# client socket before the server binds it.


def free_port() -> int:
    """A port nobody listens on now, on 127.0.0.1, outside the ephemeral range."""
    for _ in range(200):
        port = random.choice(_PORTS)  # noqa: S311 - not security
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise DevstackError(f"no free port on 127.0.0.1 in {_PORTS.start}-{_PORTS.stop - 1}")


def check_port_free(port: int, *, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DevstackError(f"port 127.0.0.1:{port} for {what} is in use") from exc


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(argv: Sequence[str | Path], *, log: Path, env: dict[str, str] | None = None) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return proc.pid


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        waited = 0  # not our child: fall back to a signal probe
    if waited == pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_until(
    ready: Callable[[], bool], *, pid: int, what: str, log: Path, timeout_s: float = 90.0
) -> None:
    """Poll `ready` until it holds; fail early, naming the log, if the process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            raise DevstackError(f"{what} exited during start-up", log=log)
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.25)
    raise DevstackError(f"{what} not ready after {timeout_s:.0f}s", log=log)


def stop(pid: int, *, grace_s: float = 30.0) -> None:
    """SIGTERM the process group, then SIGKILL it after `grace_s`."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
