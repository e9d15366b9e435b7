"""Prometheus's relabeling as the judge: promtool's final labels for a job.

`promtool check service-discovery` prints, per target, the labels Prometheus holds after
relabel_configs (scrape defaults, `instance` and all, `{}` for a dropped or failed
target). Both sides of a comparison go through it: the original job (kubernetes_sd or
file_sd of our role output, with the rules) and our final targets (http_sd or file_sd,
no rules), so Prometheus adds the same defaults to both and only the relabeling differs.
Targets are compared as sets: Prometheus keeps one target per distinct label set.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

Final = frozenset[tuple[str, str]]
# Not relabeling's doing: where the targets came from, and sdstream's own cluster label.
SOURCE_LABELS = frozenset({"cluster"})


def config(tmp_path: Path, job: Mapping[str, Any]) -> Path:
    path = tmp_path / f"prometheus-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({"scrape_configs": [{**job, "job_name": "oracle"}]}))
    return path


def command(promtool: Path, path: Path, timeout: str) -> list[str | Path]:
    return [promtool, "check", "service-discovery", path, "oracle", f"--timeout={timeout}"]


def finals(output: str, *, ignore: Iterable[str] = SOURCE_LABELS) -> set[Final]:
    """The kept targets' final labels in promtool's output."""
    skip = frozenset(ignore)
    return {
        frozenset((k, v) for k, v in t["labels"].items() if k not in skip)
        for t in json.loads(output)
        if t["labels"]
    }


def run_all(
    promtool: Path, jobs: Sequence[Mapping[str, Any]], tmp_path: Path, *, timeout: str = "500ms"
) -> list[set[Final]]:
    """promtool's final targets for each job, the runs side by side."""
    runs = [
        subprocess.Popen(command(promtool, config(tmp_path, job), timeout),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for job in jobs
    ]  # fmt: skip
    found = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=60)
        assert run.returncode == 0, stderr
        found.append(finals(stdout))
    return found


def file_sd(tmp_path: Path, entries: Any, rules: Sequence[Any] = ()) -> dict[str, Any]:
    """A job reading `entries` (HTTP SD / file SD format) from a file, with `rules`."""
    path = tmp_path / f"targets-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(entries))
    return {"file_sd_configs": [{"files": [str(path)]}], "relabel_configs": list(rules)}


def describe(ours: set[Final], theirs: set[Final]) -> str:
    lines = [f"prometheus only: {sorted(t)}" for t in theirs - ours]
    lines += [f"sdstream only:   {sorted(t)}" for t in ours - theirs]
    return "\n".join(lines[:10])


async def run_all_async(
    promtool: Path, jobs: Sequence[Mapping[str, Any]], tmp_path: Path, *, wait: str = "5s"
) -> list[set[Final]]:
    """`run_all` for tests whose event loop serves what promtool reads (http_sd); `wait`
    is promtool's --timeout."""
    pipe = asyncio.subprocess.PIPE
    runs = [
        await asyncio.create_subprocess_exec(
            *command(promtool, config(tmp_path, job), wait), stdout=pipe, stderr=pipe
        )
        for job in jobs
    ]
    found = []
    async with asyncio.timeout(120):
        for run in runs:
            stdout, stderr = await run.communicate()
            assert run.returncode == 0, stderr.decode()
            found.append(finals(stdout.decode()))
    return found
