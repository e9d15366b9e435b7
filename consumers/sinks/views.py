"""The sinks' in-memory copy of `<prefix>.targets`: `{TargetKey: Held}`, per job.

Every sink replica reads the whole compacted topic and folds it here, so the view is
pure: records in, "which jobs changed" out. Nothing here knows Kafka or HTTP, so replay
properties (order within a key is all that matters; a repeated record changes nothing)
are tested without a broker.

Bad records are not exceptions to the caller of `apply_records`: they come back as
`Skip`s with a reason, for the edge to count and log, and the other records still apply.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pydantic

from consumers import skips
from consumers.sinks import deflated, sd_json
from schemas import targets
from schemas.events import SCHEMA_VERSION
from schemas.targets import Group, TargetGroup
from schemas.topics import Source, TargetKey, target_key

# Job names prometheus-operator gives monitor endpoints (`consumers.monitors.jobs`).
MONITOR_JOB_PREFIXES = ("serviceMonitor/", "podMonitor/")


@dataclass(frozen=True, slots=True)
class RawRecord:
    """What the view needs of a Kafka record, plus where it came from (for skips)."""

    key: bytes | None
    value: bytes | None
    topic: str = ""
    partition: int = 0
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Skip:
    record: RawRecord
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one batch: jobs whose served answer may differ, and skips."""

    changed: frozenset[str] = frozenset()
    applied: int = 0
    skipped: tuple[Skip, ...] = ()


def decode(key: bytes | None, value: bytes | None) -> tuple[TargetKey, TargetGroup | None]:
    """(key, group) of a record; group None for a tombstone. Raises BadRecord.

    The reference: `take` gives the same outcome (the same skip reason, or the same
    fields) without the model when it can."""
    text = _key_text(key)
    if value is None:
        return TargetKey(text), None
    group = _validated(_parsed(value))
    _check_key(text, group.job, group.cluster, group.source)
    return TargetKey(text), group


@dataclass(frozen=True, slots=True)
class Taken:
    """What the view needs of a record's group, checked as `TargetGroup` checks it."""

    job: str
    cluster: str
    group: Group  # source, labels and targets, to render


def take(key: bytes | None, value: bytes | None) -> tuple[TargetKey, Taken | None]:
    """`decode`, cheaper: a value that is exactly a `TargetGroup`'s JSON with nothing for
    the model to coerce or refuse (`_exact`: most records, those the fold writes) is
    taken as parsed; any other goes through the model, which refuses or coerces it as
    `decode` does. Validating every record was ~20 % of taking it (bench/README.md,
    session 7 start to serving). Raises BadRecord."""
    text = _key_text(key)
    if value is None:
        return TargetKey(text), None
    raw = _parsed(value)
    if _exact(raw):
        job, cluster, source = raw["job"], raw["cluster"], raw["source"]
        group = Group(Source(source), raw["labels"], raw["targets"])
    else:
        model = _validated(raw)
        job, cluster, source = model.job, model.cluster, model.source
        group = Group(Source(source), model.labels, model.targets)
    _check_key(text, job, cluster, source)
    return TargetKey(text), Taken(job, cluster, group)


def _key_text(key: bytes | None) -> str:
    if key is None:
        raise skips.BadRecord(skips.NO_KEY, "record without a key")
    try:
        return key.decode()
    except UnicodeDecodeError as exc:
        raise skips.BadRecord(skips.BAD_KEY, f"key is not UTF-8: {exc}") from exc


def _check_key(text: str, job: str, cluster: str, source: str) -> None:
    expected = target_key(job, cluster, Source(source))
    if expected != text:
        raise skips.BadRecord(skips.KEY_MISMATCH, f"key {text!r} but value says {expected!r}")


def _parsed(value: bytes) -> Any:
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise skips.BadRecord(skips.INVALID_JSON, str(exc)) from exc
    version = raw.get("schema_version", SCHEMA_VERSION) if isinstance(raw, dict) else None
    # A newer writer may add fields this model forbids: name the version, not the field.
    if isinstance(version, int) and not 1 <= version <= SCHEMA_VERSION:
        raise skips.BadRecord(
            skips.UNKNOWN_SCHEMA_VERSION, f"schema_version {version}, not 1..{SCHEMA_VERSION}"
        )
    return raw


def _validated(raw: Any) -> TargetGroup:
    try:
        return TargetGroup.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise skips.BadRecord(skips.INVALID_GROUP, _first_error(exc)) from exc


_FIELDS = frozenset(TargetGroup.model_fields)
_REQUIRED = frozenset(n for n, f in TargetGroup.model_fields.items() if f.is_required())


def _exact(raw: Any) -> bool:
    """Whether `raw` (as orjson parsed it) is a `TargetGroup` exactly: a dict of the
    model's fields only, every required one, `schema_version` an int (not a bool), the
    strings strings, labels and each target a dict of strings (keys of JSON objects always
    are). The model takes such a value as it is; anything else is left to it."""
    if type(raw) is not dict or not _REQUIRED <= raw.keys() <= _FIELDS:
        return False
    if type(raw.get("schema_version", 0)) is not int:
        return False
    if not type(raw["job"]) is type(raw["cluster"]) is type(raw["source"]) is str:
        return False
    labels, targets_ = raw["labels"], raw["targets"]
    if type(labels) is not dict or type(targets_) is not list:
        return False
    try:  # `str.join` takes only strs, `dict.values` only dicts: one C loop per record
        "".join(itertools.chain(labels.values(), *map(dict.values, targets_)))
    except TypeError:
        return False
    return True


def _first_error(exc: pydantic.ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{where}: {first['msg']} ({exc.error_count()} errors)"


@dataclass(frozen=True, slots=True)
class Held:
    """A group as the sinks keep it: only what they serve, its HTTP SD entries rendered
    once and kept compressed (`packed`, a `deflated.segment`, b"" without targets; `size`
    bytes and CRC-32 `crc` once inflated), and a digest of its record for equality and
    ETags. Parsed label dicts (or
    the record itself) would take several times the memory, and every request would
    render them again; the rendered fragment itself is ~1.9 KiB a target, its member
    ~0.2 KiB for a pod's few targets, less for bigger groups (bench/README.md, session 7).
    """

    job: str
    cluster: str
    targets: int
    packed: bytes
    size: int
    crc: int
    digest: bytes

    @classmethod
    def of(cls, group: TargetGroup, digest: bytes | None = None) -> Held:
        """`digest` is that of the group's record (`targets.digest`), when known."""
        digest = targets.digest(targets.encode(group)) if digest is None else digest
        return cls.taken(Taken(group.job, group.cluster, _group_of(group)), digest)

    @classmethod
    def taken(cls, taken: Taken, digest: bytes) -> Held:
        """`of` a record's group as `take` gave it; `digest` is the record's."""
        packed, size, crc = deflated.piece(sd_json.http_sd_fragment(taken.group))
        return cls(
            sys.intern(taken.job),  # one str per job and cluster, not one per group
            sys.intern(taken.cluster),
            len(taken.group.targets),
            packed if size else b"",
            size,
            crc,
            digest,
        )

    @property
    def fragment(self) -> bytes:
        """The group's HTTP SD fragment (`sd_json.http_sd_fragment`), inflated."""
        return deflated.inflate(self.packed) if self.packed else b""


def _key(record: RawRecord) -> TargetKey | None:
    """The record's key, None when it has none or it is not UTF-8 (`take` says which)."""
    if record.key is None:
        return None
    try:
        return TargetKey(record.key.decode())
    except UnicodeDecodeError:
        return None


def mark(value: bytes | None) -> bytes:
    """A record value's digest, b"" for a tombstone."""
    return b"" if value is None else targets.digest(value)


@dataclass
class TargetView:
    """Latest group per key, indexed by job. Jobs stay known once seen.

    A job whose last group is tombstoned stays in `jobs()` (with no groups) for the life
    of the view, so its sinks serve `[]` rather than "unknown job". `configured` jobs are
    known from the start, even before (or without) any group, and are the only ones
    served: `apply_records` skips a record of any other job (`skips.UNCONFIGURED_JOB`), so a
    writer of the targets topic cannot make the sinks serve, or write files for, jobs
    nobody configured. None (tools, tests): every job found is taken.
    """

    configured: frozenset[str] | None = None
    # The live monitor jobs this replica serves (`consumers.monitors.live`), or None when
    # it has no `monitors:` section. Records of monitor-named jobs are held even while not
    # live (the monitor topics and the targets topic are read apart, in no common order),
    # but only live ones are served; a job whose monitor vanished is unknown again (404).
    monitor_jobs: Callable[[], Collection[str]] | None = None
    _by_job: dict[str, dict[TargetKey, Held]] = field(default_factory=dict, init=False)
    _job_of: dict[TargetKey, str] = field(default_factory=dict, init=False)
    _targets: dict[str, int] = field(default_factory=dict, init=False)  # kept per apply
    _clusters: dict[str, dict[str, int]] = field(default_factory=dict, init=False)  # groups
    # Per key, the digests of this process's fold's writes (`expect`) the reader has not
    # read back yet, oldest first (b"" for a tombstone): see `_older_own`.
    _expected: dict[TargetKey, list[bytes]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for job in self.configured or ():
            self._by_job[job] = {}

    def apply(self, key: TargetKey, group: TargetGroup | None) -> frozenset[str]:
        """Upsert or delete one key; the jobs whose groups changed (none, or one)."""
        return self._put(key, None if group is None else Held.of(group))

    def _put(self, key: TargetKey, held: Held | None) -> frozenset[str]:
        previous = self._job_of.get(key)
        if held is None:
            if previous is None:
                return frozenset()
            self._forget(previous, key)
            return frozenset({previous})
        groups = self._by_job.setdefault(held.job, {})
        current = groups.get(key)
        if current is not None and current.digest == held.digest:
            return frozenset()
        if previous is not None:
            self._forget(previous, key)
        groups[key] = held
        self._job_of[key] = held.job
        self._targets[held.job] = self._targets.get(held.job, 0) + held.targets
        clusters = self._clusters.setdefault(held.job, {})
        clusters[held.cluster] = clusters.get(held.cluster, 0) + 1
        if previous is not None and previous != held.job:  # "a/b"+"c" vs "a"+"b/c": keep one
            return frozenset({previous, held.job})
        return frozenset({held.job})

    def _forget(self, job: str, key: TargetKey) -> None:
        old = self._by_job[job].pop(key)
        del self._job_of[key]
        self._targets[job] -= old.targets
        clusters = self._clusters[job]
        clusters[old.cluster] -= 1
        if not clusters[old.cluster]:
            del clusters[old.cluster]

    def fresh(self) -> TargetView:
        """An empty view with the same configured and monitor jobs, to rebuild the topic
        into."""
        return TargetView(configured=self.configured, monitor_jobs=self.monitor_jobs)

    def take(self, rebuilt: TargetView) -> frozenset[str]:
        """Become `rebuilt` (the topic read again from offset 0 into `fresh()`), keeping
        every job known so far (they serve `[]`); the jobs whose groups differ. Rebuilding
        rather than folding the topic again into this view drops groups whose tombstones
        were compacted away meanwhile: a view never sees their deletion otherwise."""
        changed = frozenset(
            job for job in self._by_job.keys() | rebuilt._by_job.keys()
            if _digests(self._by_job.get(job, {})) != _digests(rebuilt._by_job.get(job, {}))
        )  # fmt: skip
        kept: dict[str, dict[TargetKey, Held]] = {job: {} for job in self._by_job}
        self._by_job = {**kept, **rebuilt._by_job}
        self._job_of, self._targets = rebuilt._job_of, rebuilt._targets
        self._clusters = rebuilt._clusters
        return changed

    def apply_records(self, records: Iterable[RawRecord]) -> Applied:
        changed: set[str] = set()
        skipped: list[Skip] = []
        applied = 0
        for record in records:
            key, read = _key(record), mark(record.value)  # one digest per record, for all
            if (self._expected and self._older_own(key, read)) or self._holds(key, read):
                applied += 1
                continue
            try:
                key, taken = take(record.key, record.value)
            except skips.BadRecord as exc:
                skipped.append(Skip(record, exc.reason, exc.detail))
                continue
            if taken is not None and not self._configured(taken.job):
                skipped.append(Skip(record, skips.UNCONFIGURED_JOB, taken.job))
                continue
            applied += 1
            held = None if taken is None or record.value is None else Held.taken(taken, read)
            changed |= self._put(key, held)
        return Applied(frozenset(changed), applied, tuple(skipped))

    def _holds(self, key: TargetKey | None, read: bytes) -> bool:
        """Whether the view holds this very record value (`read`, its `mark`) under its
        key already (the fold of this process gave it first, or a republish): its digest
        says so without parsing it. Such a record was checked when it came first."""
        if key is None or not read:  # no key, or a tombstone
            return False
        job = self._job_of.get(key)
        if job is None:
            return False
        return self._by_job[job][key].digest == read

    def expect(self, key: TargetKey, value: bytes | None) -> None:
        """This process's fold wrote `value` (None: a tombstone) for `key` and the view
        holds it already (`put`): the reader will read it back later."""
        self._expected.setdefault(key, []).append(mark(value))

    def unread(self, key: TargetKey) -> tuple[bytes, ...]:
        """The marks of our writes to `key` the reader has not read back yet."""
        return tuple(self._expected.get(key, ()))

    def unexpect(self, key: TargetKey) -> None:
        """The writes expected for `key` may never come (a failed send, put back)."""
        self._expected.pop(key, None)

    def _older_own(self, key: TargetKey | None, read: bytes) -> bool:
        """Whether the record (its key, and its value's `mark`) is one of this fold's own
        writes to `key` older than the last, which the view holds already: applying it
        would serve the group as it was, until the newer write is read back too (new ->
        old -> new while a key changes round after round). Records that are not our own
        pending writes are applied as usual: they are the topic's word (another member's,
        or the tombstone of a group Kafka refused)."""
        pending = None if key is None else self._expected.get(key)
        if key is None or pending is None:
            return False
        # Our writes come back in the order written; a fed value the fold merged away
        # (a newer one went in its place) never comes, and is passed over.
        try:
            del pending[: pending.index(read) + 1]
        except ValueError:
            pending.clear()  # not ours: the topic's word
        if pending:
            return True
        del self._expected[key]  # caught up with our writes (held already) or overtaken
        return False

    def held_at(self, key: TargetKey) -> Held | None:
        job = self._job_of.get(key)
        return None if job is None else self._by_job[job][key]

    def restore(self, key: TargetKey, held: Held | None) -> frozenset[str]:
        """Hold `held` (from `held_at`) for `key` again; the jobs that changed."""
        return self._put(key, held)

    def put(self, key: TargetKey, group: TargetGroup | None, value: bytes | None) -> frozenset[str]:
        """Upsert (`value` is `group`'s record) or delete (None) one key, from the fold of
        this process rather than a record; the jobs whose groups changed. Jobs not
        configured here are ignored, as their records are."""
        if group is None or value is None:
            return self._put(key, None)
        if not self._configured(group.job):
            return frozenset()
        digest = targets.digest(value)  # once: whether it is held, and what to hold
        held = self.held_at(key)
        if held is not None and held.digest == digest:
            return frozenset()
        return self._put(key, Held.of(group, digest))

    def _configured(self, job: str) -> bool:
        if self.configured is None or job in self.configured:
            return True
        return self.monitor_jobs is not None and job.startswith(MONITOR_JOB_PREFIXES)

    def jobs(self) -> list[str]:
        """The jobs served: every job held (configured ones from the start), monitor jobs
        only while live."""
        held = (job for job in self._by_job if not self._monitor_job(job))
        live = self.monitor_jobs() if self.monitor_jobs is not None else ()
        return sorted({*held, *live})

    def known(self, job: str) -> bool:
        if self._monitor_job(job):
            return self.monitor_jobs is not None and job in self.monitor_jobs()
        return job in self._by_job

    def _monitor_job(self, job: str) -> bool:
        return self.monitor_jobs is not None and job.startswith(MONITOR_JOB_PREFIXES)

    def has_cluster(self, job: str, cluster: str) -> bool:
        """Whether `job` has a group of `cluster` now (a dict lookup, for request checks)."""
        return cluster in self._clusters.get(job, {})

    def held(self, job: str, *, clusters: Iterable[str] = ()) -> list[Held]:
        """A job's groups sorted by key; only those of `clusters` when given."""
        wanted = frozenset(clusters)
        groups = self._by_job.get(job, {}) if self.known(job) else {}
        return [
            groups[key] for key in sorted(groups) if not wanted or groups[key].cluster in wanted
        ]

    def groups(self, job: str) -> dict[TargetKey, Held]:
        """A copy of a job's groups by key, unsorted (for work off the event loop)."""
        return dict(self._by_job.get(job, {})) if self.known(job) else {}

    def document(self, job: str, *, clusters: Iterable[str] = ()) -> bytes:
        """The job's HTTP SD / file SD document: entries by group key, then by target."""
        return b"".join(deflated.Inflating(self.packed(job, clusters=clusters).segments))

    def packed(self, job: str, *, clusters: Iterable[str] = ()) -> deflated.Deflated:
        """`document` as segments: the held ones and shared brackets and commas."""
        return packed_document(self.held(job, clusters=clusters))

    def snapshot(self) -> Mapping[TargetKey, Held]:
        """Every live group by key (a copy), e.g. to compare two views."""
        return {key: held for groups in self._by_job.values() for key, held in groups.items()}

    def counts(self, job: str) -> tuple[int, int]:
        """(groups, targets) of a job."""
        return len(self._by_job.get(job, {})), self._targets.get(job, 0)

    def __len__(self) -> int:
        return len(self._job_of)

    def __iter__(self) -> Iterator[TargetKey]:
        return iter(sorted(self._job_of))


def _group_of(group: TargetGroup) -> Group:
    return Group(Source(group.source), group.labels, group.targets)


def _digests(groups: Mapping[TargetKey, Held]) -> dict[TargetKey, bytes]:
    return {key: held.digest for key, held in groups.items()}


def packed_document(held: Iterable[Held]) -> deflated.Deflated:
    """The HTTP SD document of `held` groups, in their order, as segments."""
    return deflated.json_array((h.packed, h.size, h.crc) for h in held)
