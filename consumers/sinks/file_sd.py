"""File SD: one `<job>.json` per job for Prometheus `file_sd_configs`, same body as HTTP SD.

Prometheus watches the files with inotify and re-reads one as soon as it changes, so:

- a file is replaced atomically (temp file in the same directory, fsync, chmod to the
  configured mode, 0644 by default, `os.replace`, fsync of the directory): a reader sees
  the old or the new list, never a torn one;
- a file is written only when its bytes change (compared with what is on disk, also
  after a restart), so an unchanged job never wakes Prometheus up;
- a job whose groups all vanish gets `[]`, not a deleted file: Prometheus reads `[]` as
  "no targets" and the file stays where its `files:` glob expects it. Files of jobs this
  process never knew are left alone (the directory may hold other files); list retired
  jobs in the view's `configured` jobs to have them emptied, or delete them by hand.

Nothing is written before the reader caught up with the topic: the caller only calls
`update` from then on. `plan` is the pure part; `FileSd` does the I/O.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from consumers.sinks import deflated, sink_metrics, views

logger = logging.getLogger(__name__)

SUFFIX = ".json"
MODE = 0o644  # mkstemp makes 0600; Prometheus often runs as another user


def filename(job: str) -> str:
    """`<job>.json`, percent-encoding anything but letters, digits and `._-~`.

    A leading dot is encoded too, so no job name becomes a hidden file, `.` or `..`.
    """
    name = quote(job, safe="")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name + SUFFIX


def digest(content: bytes) -> bytes:
    """What is remembered of a file's content: a copy of every job's document would take
    as much memory as the view's compressed groups several times over."""
    return hashlib.blake2b(content, digest_size=16).digest()


def plan(
    view: views.TargetView, jobs: Iterable[str], *, on_disk: Mapping[str, bytes | None]
) -> Iterator[tuple[str, bytes]]:
    """(file name, content) for each of `jobs` whose file must change, by file name, one
    at a time (a big job's document is hundreds of MiB: never two at once).

    `on_disk` holds the `digest` of each file's current content (None: no file).
    """
    for name, body, _ in _changes(held_now(view, jobs), on_disk=on_disk):
        yield name, body


def held_now(view: views.TargetView, jobs: Iterable[str]) -> dict[str, list[views.Held]]:
    """Each job's groups as the view holds them now: taken on the event loop, so the
    files are made in a worker thread from lists the reader no longer changes."""
    return {job: view.held(job) for job in jobs}


def _changes(
    held: Mapping[str, list[views.Held]], *, on_disk: Mapping[str, bytes | None]
) -> Iterator[tuple[str, bytes, bytes]]:
    """`plan` of these groups, with each new content's digest."""
    for job in sorted(held, key=filename):
        name = filename(job)
        body = b"".join(deflated.Inflating(views.packed_document(held[job]).segments))
        hashed = digest(body)
        if on_disk.get(name) != hashed:
            yield name, body, hashed


def write_atomic(directory: Path, name: str, data: bytes, *, mode: int = MODE) -> None:
    """Replace `directory/name` by `data`, with permission bits `mode`, so a concurrent
    reader never sees a partial file (nor one with the temporary file's 0600)."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, directory / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes | None:
    """The `digest` of the file's content; None if there is no file."""
    try:
        return digest(path.read_bytes())
    except FileNotFoundError:
        return None


class FileSd:
    """Keeps `directory` in step with the view; `update` after each applied batch."""

    def __init__(
        self,
        directory: Path,
        *,
        view: views.TargetView,
        metrics: sink_metrics.SinkMetrics | None = None,
        mode: int = MODE,
    ) -> None:
        self.directory = directory
        self._mode = mode
        self._view = view
        self._metrics = metrics
        self._on_disk: dict[str, bytes | None] = {}  # file name: digest of its content

    def jobs_on_disk(self, prefixes: tuple[str, ...]) -> frozenset[str]:
        """Jobs whose names start with one of `prefixes` and have a file here (monitor
        jobs a replica may have written before a restart and no longer serves)."""
        heads = tuple(quote(p, safe="") for p in prefixes)
        try:
            names = [p.name for p in self.directory.iterdir()]
        except FileNotFoundError:
            return frozenset()
        return frozenset(unquote(n.removesuffix(SUFFIX)) for n in names
                         if n.startswith(heads) and n.endswith(SUFFIX))  # fmt: skip

    async def update(self, jobs: frozenset[str]) -> None:
        """Rewrite the files of `jobs` that changed (file I/O in a worker thread)."""
        if jobs:
            await asyncio.to_thread(self._write, held_now(self._view, jobs))

    def sync(self, jobs: Iterable[str]) -> list[str]:
        """Blocking `update`; the names of the files written."""
        return self._write(held_now(self._view, jobs))

    def _write(self, held: Mapping[str, list[views.Held]]) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in map(filename, held):
            if name not in self._on_disk:
                self._on_disk[name] = _read(self.directory / name)
        changes = []
        for name, body, hashed in _changes(held, on_disk=self._on_disk):
            write_atomic(self.directory, name, body, mode=self._mode)
            self._on_disk[name] = hashed
            changes.append(name)
            if self._metrics is not None:
                self._metrics.file_writes.inc()
        if changes:
            logger.info(
                "Wrote %d file SD files in %s.",
                len(changes),
                self.directory,
                extra={"directory": str(self.directory), "files": sorted(changes)},
            )
        return sorted(changes)
