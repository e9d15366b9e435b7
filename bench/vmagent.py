"""vmagent (VictoriaMetrics) as a discovery peer: the same kubernetes_sd_configs jobs as
the bench's promtool and sdstream runs, against the same API server, with nothing scraped.

Not a benchmark itself; `bench/consume.py` imports it. vmagent must never connect to a
target (the IPs in bench objects are data): every job drops every target by relabeling,
so its Kubernetes discovery (list, watch, building each target's labels, relabeling)
still runs in full; remote write points at a loopback port that is bound but never
listened on. "All targets discovered" is read from vmagent's own count of targets
dropped by relabeling: with `-promscrape.maxDroppedTargets=1` its /service-discovery page
keeps one dropped target and prints how many were registered ("... at least <b>N</b>"),
counted once per distinct label set (lib/promscrape/targetstatus.go, droppedTargets). A
bigger limit would keep every dropped target's labels for that page, memory a real
vmagent (which keeps its targets) would spend on scrapers instead; so vmagent's figure is
a lower bound of what it holds when it keeps these targets.

The guard, checked after discovery and two scrape intervals (1 s): vmagent's own
counters say it made no scrape request and runs no scraper, and no socket of the process
was ever seen (polled every 20 ms from /proc) with a peer outside 127.0.0.0/8.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kit  # bench/kit.py; it puts the repository root on sys.path
import yaml

from sdstream.devstack import build, cache, versions

VERSION = versions.VICTORIAMETRICS

DISCOVERED_RE = re.compile(rb"at least\s*<b>(\d+)</b>")
GUARD_METRICS = (
    "vm_promscrape_scrape_requests_total",
    'vm_promscrape_active_scrapers{type="kubernetes_sd_configs"}',
    'vm_promscrape_targets{type="kubernetes_sd_configs", status="up"}',
    'vm_promscrape_targets{type="kubernetes_sd_configs", status="down"}',
)
SCRAPE_INTERVAL_S = 1


def binary() -> Path:
    """The cached vmagent, built from the Go module proxy the first time (~1 min)."""
    return build.ensure_vmagent(cache.cache_dir())


def config(kubeconfig: str, jobs: Mapping[str, str]) -> dict[str, Any]:
    """The bench's jobs, each dropping every target it discovers."""
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s"},
        "scrape_configs": [
            {"job_name": name,
             "kubernetes_sd_configs": [{"role": role, "kubeconfig_file": kubeconfig}],
             "relabel_configs": [{"action": "drop", "source_labels": ["__address__"],
                                  "regex": ".*"}]}
            for name, role in jobs.items()],
    }  # fmt: skip


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port bound (so nobody else takes it) but not listening: refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(port: int, path: str) -> bytes:
    url = f"http://127.0.0.1:{port}{path}"  # loopback only
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
        return body


def discovered(port: int) -> int:
    """Targets vmagent discovered and dropped so far (0 or 1 below the page's limit)."""
    try:
        page = fetch(port, "/service-discovery")
    except OSError:
        return -1  # not listening yet
    found = DISCOVERED_RE.search(page)
    return int(found.group(1)) if found else int(b"discoveredLabels" in page)


def metric(text: bytes, name: str) -> float:
    found = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else float("nan")


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    return inodes


def _peer(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_addr.split(":")[0])
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return address.ipv4_mapped or address


def foreign_peers(pid: int) -> set[str]:
    """Peers outside loopback of the process's TCP/UDP sockets (unconnected ones excluded)."""
    inodes, seen = _socket_inodes(pid), set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cells = line.split()
                peer = _peer(cells[2])
                if cells[9] in inodes and not (peer.is_loopback or peer.is_unspecified):
                    seen.add(f"{table} {peer}")
    return seen


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(kubeconfig: str, jobs: Mapping[str, str], *, expected: int, work: Path,
        timeout_s: float) -> dict[str, Any]:  # fmt: skip
    """Start vmagent, wait until it discovered `expected` targets, check the guard; its
    seconds from start, peak RSS (VmHWM, read before stopping it) and CPU."""
    exe = binary()
    work.mkdir(parents=True, exist_ok=True)
    (work / "vmagent.yml").write_text(yaml.safe_dump(config(kubeconfig, jobs)))
    port = free_port()
    with closed_port() as sink, (work / "vmagent.log").open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(exe), f"-promscrape.config={work / 'vmagent.yml'}",
             f"-httpListenAddr=127.0.0.1:{port}", "-promscrape.maxDroppedTargets=1",
             f"-remoteWrite.url=http://127.0.0.1:{sink}/api/v1/write",
             f"-remoteWrite.tmpDataPath={work / 'data'}"],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            return _watch(proc, port, expected=expected, started=started, timeout_s=timeout_s)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _watch(proc: subprocess.Popen[bytes], port: int, *, expected: int, started: float,
           timeout_s: float) -> dict[str, Any]:  # fmt: skip
    foreign: set[str] = set()
    count, seconds, deadline = -1, float("nan"), started + timeout_s
    guard_until = float("inf")
    while time.perf_counter() < min(deadline, guard_until):
        if proc.poll() is not None:
            raise RuntimeError(f"vmagent exited {proc.returncode}; see its log")
        foreign |= foreign_peers(proc.pid)
        if math.isnan(seconds):  # still discovering
            count = discovered(port)
            if count >= expected:
                seconds = time.perf_counter() - started
                guard_until = time.perf_counter() + 2 * SCRAPE_INTERVAL_S + 0.5
        time.sleep(0.02)
    metrics = fetch(port, "/metrics")
    peak, cpu = kit.hwm_mb(proc.pid), cpu_s(proc.pid)
    return {"seconds": seconds, "targets": max(count, discovered(port)), "max_rss_mb": peak,
            "cpu_s": cpu, "foreign_peers": sorted(foreign),
            "guard": {name: metric(metrics, name) for name in GUARD_METRICS}}  # fmt: skip
