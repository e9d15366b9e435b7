"""The fold: object events in, target-group changes out, recomputing only what changed.

`Fold.apply` stores an object (or removes it) and marks the groups it can affect: the
group built from the object itself, for every job view whose role builds from that
resource, and every group whose last build read the object (see `dependencies`).
`Fold.rebuild` builds just those groups and returns the ones that really changed, as
upserts or tombstones. Replaying a log, or any interleaving that keeps per-key order,
ends in the same `groups`.

A new view, or `mark_all`, marks the whole view (one entry, not one per object); a rebuild
walks each object once, parsing it once for all the views that need it, and
`Fold.rebuilding` does so in steps so that its caller can yield in between. A view with a
`prefilter` (monitor jobs) first runs its leading selector rules on a cheap partial label
set (`prefilter`): an object they drop gets no group built and holds nothing.

Pure: no Kafka, no logging; builder failures are returned, not raised.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from consumers.compactor import dependencies, packed, prefilter, state
from consumers.compactor.jobs import JobView, namespace_of
from consumers.compactor.tally import Tally
from consumers.relabel import engine, group_relabeling
from consumers.roles import lookups, table
from schemas.objects import KubeObject
from schemas.targets import LabelSet, TargetGroup
from schemas.topics import ObjectKey, Resource, Source, TargetKey, quote_job, target_key

V = TypeVar("V")
D = TypeVar("D")
Owner = tuple[int, str, ObjectKey]  # (view position, cluster, key of the role's object)
STEP_OWNERS: Final = 64  # groups rebuilt between two steps of `Fold.rebuilding`


@dataclass(frozen=True, slots=True)
class Change:
    key: TargetKey
    held: packed.Packed | None  # None: tombstone

    @property
    def group(self) -> TargetGroup | None:
        return None if self.held is None else self.held.group()

    def value(self) -> bytes | None:
        """The record to write (None: a tombstone)."""
        return None if self.held is None else self.held.value()


@dataclass(frozen=True, slots=True)
class BuildError:
    job: str
    cluster: str
    key: ObjectKey
    reason: str


@dataclass(frozen=True, slots=True)
class VisibleLookup:
    """A cluster's state as one job view's informer caches would hold it."""

    objects: state.ClusterState
    view: JobView
    from_namespace: str

    def get(self, resource: Resource, key: ObjectKey, /) -> KubeObject | None:
        obj = self.objects.get(resource, key)
        if obj is None:
            return None
        visible = self.view.sees_join(resource, obj, from_namespace=self.from_namespace)
        return obj if visible else None


def group_key(view: JobView, cluster: str, source: Source) -> TargetKey:
    """`<job>/<cluster>/<source>`; a job's second and later sd configs get `#<index>`,
    since their sources can coincide with the first's (Prometheus keeps them apart by
    provider)."""
    return target_key(key_job(view), cluster, source)


def key_job(view: JobView) -> str:
    return view.job if view.index == 0 else f"{view.job}#{view.index}"


def attach_of(view: JobView) -> lookups.Attach:
    """A view's attach_metadata in the form the role builders take."""
    a = view.attach
    return lookups.Attach(
        node=a.node, namespace=a.namespace, deployment=a.deployment, job=a.job, cronjob=a.cronjob
    )


@dataclass
class Fold:
    views: Sequence[JobView]
    clusters: dict[str, state.ClusterState] = field(default_factory=dict)
    # Held packed (`packed.Groups`: each record deflated); reading one decodes it.
    groups: packed.Groups = field(default_factory=packed.Groups)
    deps: dependencies.DependencyIndex[Owner] = field(default_factory=dependencies.DependencyIndex)
    pending: set[Owner] = field(default_factory=set)
    totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # job: groups, targets
    # Each group as its role built it, before relabeling (the same object as in `groups`
    # when the job has no rules), kept for the discovery page: it shows discovered labels
    # and why a target is not served. A group whose targets were all dropped stays here.
    # For a job with relabel_configs this holds the discovered labels beside the final
    # ones, as Prometheus does for its own /service-discovery page. Off (`keep_discovered`
    # False): nothing is kept here, and relabeled jobs hold only their final groups.
    discovered: packed.Groups = field(default_factory=packed.Groups)
    keep_discovered: bool = True
    # Targets relabeling left out, per group and per job: (dropped by a rule, invalid).
    left_out: Tally = field(default_factory=Tally)
    # For jobs with keep_dropped_targets (`JobView.keep_dropped`): per group, the targets
    # relabeling left out that `discovered` holds (kept) and does not (not kept), and
    # per job their sums. A job holds at most its limit of them, admitted as groups are
    # built; room freed when a group goes is used by the next group built.
    dropped_held: Tally = field(default_factory=Tally)
    parsed: state.ParseCache = field(default_factory=state.ParseCache)  # shared by clusters
    # Every view now, by position: `views` at 0.., then those added at run time
    # (`add_view`, monitor jobs); a removed view's position is never reused, so owners
    # (position, cluster, key) in `pending` and `deps` never name another view.
    active: dict[int, JobView] = field(default_factory=dict, init=False)
    _attach: dict[int, lookups.Attach] = field(default_factory=dict, init=False)
    _next: int = field(default=0, init=False)
    # Groups of removed views, as they were: tombstoned by the next `rebuild` unless a
    # view added meanwhile built the same key again (then only a real change is written).
    _vanished: dict[TargetKey, packed.Packed] = field(default_factory=dict, init=False)
    # Each view's job as quoted in its target keys (`group_key`), by position.
    _quoted: dict[int, str] = field(default_factory=dict, init=False)
    # Views to rebuild whole (every object of their role they can see), by position.
    _whole: set[int] = field(default_factory=set, init=False)
    _building: bool = field(default=False, init=False)  # a `rebuilding` is under way

    def __post_init__(self) -> None:
        for view in self.views:
            self.active[self._next] = view
            self._attach[self._next] = attach_of(view)
            self._next += 1

    def add_view(self, view: JobView) -> int:
        """Start building `view`'s groups (at the next `rebuild`); its position."""
        position = self._next
        self._next += 1
        self.active[position] = view
        self._attach[position] = attach_of(view)
        self._whole.add(position)  # one entry; the rebuild walks the view's objects
        return position

    def remove_view(self, position: int) -> None:
        """Stop building a view: its groups are tombstoned by the next `rebuild`."""
        view = self.active.pop(position)
        del self._attach[position]
        self._whole.discard(position)
        self._quoted.pop(position, None)
        role = table.role(view.role)
        # Objects deleted since the last rebuild are pending but no longer stored: their
        # groups are tombstoned too, or they would stay published with no object to reach.
        deleted: dict[str, set[ObjectKey]] = {}
        for owner in self.pending:
            if owner[0] == position:
                deleted.setdefault(owner[1], set()).add(owner[2])
        self.pending = {owner for owner in self.pending if owner[0] != position}
        for name, objects in self.clusters.items():
            if not view.reads_cluster(name):
                continue
            stored = set(_in_namespaces(view, objects.keys(view.role_resource)))
            for key in sorted(stored | deleted.get(name, set())):
                self.deps.forget((position, name, key))
                tkey = group_key(view, name, role.source(key))
                self._undiscover(tkey)
                self._count_left_out(tkey, None)
                old = self.groups.held(tkey)
                if old is not None:
                    self._vanished.setdefault(tkey, old)
                    self._set(tkey, None)

    def cluster(self, name: str) -> state.ClusterState:
        found = self.clusters.get(name)
        if found is None:
            found = self.clusters[name] = state.ClusterState(cache=self.parsed)
        return found

    def apply(
        self, cluster: str, resource: Resource, key: ObjectKey, obj: state.Stored | None
    ) -> bool:
        """Store the object (None removes it); True when the state changed."""
        if not self.cluster(cluster).apply(resource, key, obj):
            return False
        namespace = None if resource.cluster_scoped else key.partition("/")[0]
        for position, view in self.active.items():
            if view.role_resource is not resource or not view.reads_cluster(cluster):
                continue
            if namespace is None or view.in_namespace(namespace):  # else it never had a group
                self.pending.add((position, cluster, key))
        readers = self.deps.dependents((resource, key))
        self.pending.update(owner for owner in readers if owner[1] == cluster)
        return True

    def load(
        self, cluster: str, resource: Resource, key: ObjectKey, obj: state.Stored | None
    ) -> None:
        """Store the object (None removes it) for a catch-up that ends with `mark_all`:
        without marking groups while none is built yet. Once groups exist this is `apply`,
        since `mark_all` only reaches objects still stored and a removed object's group
        must still be rebuilt away; so is it while a rebuild is under way (it may have
        passed the object already)."""
        if self.groups or self._building:
            self.apply(cluster, resource, key, obj)
        else:
            self.cluster(cluster).put(resource, key, obj)

    def mark_all(self) -> None:
        """Mark every group for a rebuild (after a catch-up or a rebalance)."""
        self._whole.update(self.active)

    def marked(self) -> set[Owner]:
        """Every group the next rebuild builds, one by one (for tests and debugging)."""
        return {
            (position, cluster, key)
            for cluster, _, key, positions in self._work(self.pending, self._whole)
            for position in positions
        }

    def rebuild(self) -> tuple[list[Change], list[BuildError]]:
        """Every marked group rebuilt at once; the groups that changed, and build errors."""
        steps = self.rebuilding()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: tuple[list[Change], list[BuildError]] = done.value
                return result

    def rebuilding(
        self, step: int = STEP_OWNERS
    ) -> Generator[None, None, tuple[list[Change], list[BuildError]]]:
        """`rebuild` in steps: yields after about `step` groups, returns what `rebuild`
        returns. Between steps the caller may `apply` more objects: what is marked then
        is left for the next rebuild (an object already passed is rebuilt again there),
        and changes are returned only at the end, so none is half a view swap."""
        singles, self.pending = self.pending, set()
        whole, self._whole = self._whole, set()
        changes: list[Change] = []
        errors: list[BuildError] = []
        self._building = True
        try:
            done = 0
            for cluster, resource, key, positions in self._work(singles, whole):
                self._rebuild_object(cluster, resource, key, positions, changes, errors)
                done += len(positions)
                if done >= step:
                    done = 0
                    yield
        finally:
            self._building = False
        if self._vanished:
            changes = self._settle_vanished(changes)
        return changes, errors

    def _work(
        self, singles: set[Owner], whole: set[int]
    ) -> Iterator[tuple[str, Resource, ObjectKey, list[int]]]:
        """Each object to rebuild, in (cluster, resource, key) order, with the positions
        of the views to rebuild it for, in order. Keys are listed up front, so objects
        applied meanwhile do not disturb the walk."""
        by_place: dict[tuple[str, Resource], dict[ObjectKey, set[int]]] = {}
        for position, cluster, key in singles:
            view = self.active.get(position)
            if view is not None:
                place = by_place.setdefault((cluster, view.role_resource), {})
                place.setdefault(key, set()).add(position)
        views = [(p, self.active[p]) for p in sorted(whole) if p in self.active]
        for cluster in sorted(self.clusters.keys() | {c for c, _ in by_place}):
            for resource in Resource:
                here = [(p, v) for p, v in views
                        if v.role_resource is resource and v.reads_cluster(cluster)]  # fmt: skip
                marked = by_place.get((cluster, resource), {})
                if not here and not marked:
                    continue
                yield from _walk(self.cluster(cluster), resource, cluster, here, marked)

    def _rebuild_object(
        self, cluster: str, resource: Resource, key: ObjectKey, positions: list[int],
        changes: list[Change], errors: list[BuildError],
    ) -> None:  # fmt: skip
        obj = self.cluster(cluster).get(resource, key, cached=False)  # parsed once for all
        memo: dict[str, LabelSet] = {}
        for position in positions:
            owner = (position, cluster, key)
            try:
                change = self._rebuild(owner, obj, memo)
            except Exception as exc:  # noqa: BLE001 - bad input must not stop the fold
                view = self.active[position]
                errors.append(BuildError(view.job, cluster, key, f"{exc!r}"))
                continue
            if change is not None:
                changes.append(change)

    def _settle_vanished(self, changes: list[Change]) -> list[Change]:
        """One change per key of a removed view: none if a new view built the same group
        again, else the new group or a tombstone."""
        by_key = {change.key: change for change in changes}
        for key, old in self._vanished.items():
            now = self.groups.held(key)
            if now == old:
                by_key.pop(key, None)
            elif now is None:
                by_key[key] = Change(key, None)
        self._vanished.clear()
        return list(by_key.values())

    def forget(self, cluster: str, resource: Resource, keys: Sequence[ObjectKey]) -> None:
        """Drop groups built from objects this member no longer owns, without tombstones:
        their new owner publishes them."""
        for position, view in self.active.items():
            if view.role_resource is not resource:
                continue
            role = table.role(view.role)
            for key in keys:
                self.deps.forget((position, cluster, key))
                tkey = group_key(view, cluster, role.source(key))
                self._undiscover(tkey)
                self._count(self.groups.drop(tkey), -1)
                self._count_left_out(tkey, None)

    def _rebuild(
        self, owner: Owner, obj: KubeObject | None, memo: dict[str, LabelSet]
    ) -> Change | None:
        position, cluster, key = owner
        view = self.active[position]
        role = table.role(view.role)
        quoted = self._quoted.get(position)
        if quoted is None:
            quoted = self._quoted[position] = quote_job(key_job(view))
        tkey = TargetKey(f"{quoted}/{cluster}/{role.source(key)}")  # group_key, faster
        objects = self.cluster(cluster)
        if obj is None or not view.sees(view.role_resource, obj):
            return self._drop(owner, tkey, set())
        visible = VisibleLookup(objects, view, namespace_of(obj))
        if view.prefilter is not None:
            read = self._prefiltered(view, view.prefilter, cluster, obj, visible, memo)
            if read is not None:
                return self._drop(owner, tkey, read)
        recording = dependencies.RecordingLookup(visible)
        built = role.build_group(obj, lookup=recording, attach=self._attach[position])
        self.deps.record(owner, recording.deps)
        if built is None:  # Prometheus sends nothing: the earlier group stays
            return None
        labels = (
            {**built.labels, view.cluster_label: cluster} if view.cluster_label else built.labels
        )
        # The cluster label is discovered: rules may read or drop it.
        if not view.rules:  # served as discovered: the same object in both
            held = self._hold_discovered(view, tkey, cluster, built.source, labels, built.targets)
            return self._set(tkey, held)
        outcomes = group_relabeling.outcomes(
            labels, built.targets, view.rules, keep_meta=view.keep_meta, defaults=view.defaults
        )
        self._count_left_out(tkey, (view.job, outcomes))
        if self.keep_discovered:
            kept = self._within_keep_dropped(view, tkey, built.targets, outcomes)
            self._hold_discovered(view, tkey, cluster, built.source, labels, kept)
        final = group_relabeling.regroup([o.final for o in outcomes if o.final is not None])
        if final is None:
            return self._set(tkey, None)
        return self._set(
            tkey, packed.Packed.build(view.job, cluster, built.source, final[0], final[1])
        )

    def _hold_discovered(
        self, view: JobView, tkey: TargetKey, cluster: str, source: Source,
        labels: LabelSet, targets: list[LabelSet],
    ) -> packed.Packed | None:  # fmt: skip
        """Hold the group as discovered (packed straight from str-only dicts: a model
        would only re-check what we made); None when it has no targets (its left-out
        targets stay counted in `dropped_held`)."""
        if not targets:
            self.discovered.drop(tkey)
            return None
        return self._discover(tkey, packed.Packed.build(view.job, cluster, source, labels, targets))

    def _within_keep_dropped(
        self, view: JobView, tkey: TargetKey, targets: list[LabelSet],
        outcomes: Sequence[engine.Outcome],
    ) -> list[LabelSet]:  # fmt: skip
        """The targets to hold as discovered: every served one, and those left out while
        the job holds fewer than its keep_dropped_targets (Prometheus's scrape pool keeps
        the first N dropped targets and counts them all)."""
        self.dropped_held.forget(tkey)
        if not view.keep_dropped:
            return targets
        room = view.keep_dropped - self.dropped_held.totals.get(view.job, (0, 0))[0]
        held: list[LabelSet] = []
        left_out = 0
        for target, outcome in zip(targets, outcomes, strict=True):
            if outcome.final is None:
                left_out += 1
                if left_out > room:
                    continue
            held.append(target)
        mine = min(left_out, max(room, 0))
        self.dropped_held.set(tkey, view.job, mine, left_out - mine)
        return held

    def _undiscover(self, tkey: TargetKey) -> None:
        """The group is no longer held as discovered: its kept dropped targets free room."""
        self.discovered.drop(tkey)
        self.dropped_held.forget(tkey)

    def not_kept(self) -> dict[str, int]:
        """Per job, targets relabeling left out that keep_dropped_targets kept off the
        discovery page (only counted)."""
        return {job: totals[1] for job, totals in self.dropped_held.totals.items() if totals[1]}

    def _drop(self, owner: Owner, tkey: TargetKey, read: set[dependencies.Dep]) -> Change | None:
        """No group for `owner`: it depends only on what was `read` to decide so."""
        if read or owner in self.deps.reads:  # most pre-filtered objects: neither
            self.deps.record(owner, read)
        self._count_left_out(tkey, None)
        self._undiscover(tkey)
        return self._set(tkey, None)

    def _prefiltered(
        self, view: JobView, program: engine.Prefilter, cluster: str, obj: KubeObject,
        visible: VisibleLookup, memo: dict[str, LabelSet],
    ) -> set[dependencies.Dep] | None:  # fmt: skip
        """What the pre-filter read when it drops every target of `obj`, else None. A
        partial set that read no other object is the same for every view of this object
        (`memo`, per cluster label)."""
        partial = memo.get(view.cluster_label)
        read: set[dependencies.Dep] = set()
        if partial is None:
            recording = dependencies.RecordingLookup(visible)
            partial = prefilter.partial_labels(
                view.role_resource, obj, recording,
                cluster_label=view.cluster_label, cluster=cluster,
            )  # fmt: skip
            read = recording.deps
            if not read:
                memo[view.cluster_label] = partial
        if engine.drops(partial, program, defaults=view.defaults):
            return read
        return None

    def _discover(self, key: TargetKey, group: packed.Packed) -> packed.Packed:
        """Hold `group` as discovered; the object held (the earlier one when equal, so
        that `discovered` and `groups` share it while a job has no rules)."""
        if not self.keep_discovered:
            return group
        held = self.discovered.held(key)
        if held is None or held != group:
            self.discovered.hold(key, group)
            held = group
        return held

    def _set(self, key: TargetKey, group: packed.Packed | None) -> Change | None:
        old = self.groups.held(key)
        if old == group:
            return None
        self._count(old, -1)
        self._count(group, 1)
        if group is None:
            self.groups.drop(key)
        else:
            self.groups.hold(key, group)
        return Change(key, group)

    def _count_left_out(
        self, key: TargetKey, relabeled: tuple[str, list[engine.Outcome]] | None
    ) -> None:
        """Keep `left_out` (for the per-job gauges): the group's counts now."""
        if relabeled is None:
            self.left_out.forget(key)
            return
        job, outcomes = relabeled
        dropped = sum(o.dropped_by is not None for o in outcomes)
        invalid = sum(o.error is not None for o in outcomes)
        self.left_out.set(key, job, dropped, invalid)

    def _count(self, group: packed.Packed | None, sign: int) -> None:
        """Keep `totals` (for the per-job gauges) without walking every group."""
        if group is not None:
            groups, targets = self.totals.get(group.job, (0, 0))
            self.totals[group.job] = groups + sign, targets + sign * group.count


def _walk(
    objects: state.ClusterState, resource: Resource, cluster: str,
    whole: Sequence[tuple[int, JobView]], marked: Mapping[ObjectKey, set[int]],
) -> Iterator[tuple[str, Resource, ObjectKey, list[int]]]:  # fmt: skip
    """The objects of one resource to rebuild: every key `whole` views see by namespace
    (stored now) and every `marked` one (maybe deleted since), each with its positions."""
    every = {p for p, v in whole if v.namespaces is None or resource.cluster_scoped}
    by_namespace: dict[str, list[int]] = {}
    for position, view in whole:
        if view.namespaces is not None and not resource.cluster_scoped:
            for namespace in view.namespaces:
                by_namespace.setdefault(namespace, []).append(position)
    keys: set[ObjectKey] = set(marked)
    if every:
        keys.update(objects.keys(resource))
    elif by_namespace:
        heads = tuple(f"{namespace}/" for namespace in by_namespace)
        keys.update(key for key in objects.keys(resource) if key.startswith(heads))
    for key in sorted(keys):
        namespace = "" if resource.cluster_scoped else key.partition("/")[0]
        positions = every.union(by_namespace.get(namespace, ()), marked.get(key, ()))
        if positions:
            yield cluster, resource, key, sorted(positions)


def _in_namespaces(view: JobView, keys: Iterable[ObjectKey]) -> Iterable[ObjectKey]:
    """The keys of objects the view can see by namespace (all, for every namespace or a
    cluster-scoped role): marking only those keeps a monitor job in one namespace from
    rebuilding every pod of the cluster."""
    if view.namespaces is None or view.role_resource.cluster_scoped:
        return keys
    heads = tuple(f"{namespace}/" for namespace in view.namespaces)
    return (key for key in keys if key.startswith(heads))


def diff(
    desired: Iterable[tuple[TargetKey, V]],
    published: Mapping[TargetKey, D],
    *,
    fingerprint: Callable[[V], D],
    owned: set[TargetKey] | None = None,
) -> Iterator[tuple[TargetKey, V | None]]:
    """What to write so the topic holds `desired`: upserts where the value's fingerprint
    differs from the published one, then tombstones (None) for published keys no longer
    desired. `owned` limits tombstones to this member's keys. Lazy, so a caller can encode
    each desired value only as it is written."""
    seen: set[TargetKey] = set()
    for key, value in desired:
        seen.add(key)
        old = published.get(key)
        if old is None or old != fingerprint(value):  # a new key needs no fingerprint
            yield key, value
    gone = published.keys() - seen
    if owned is not None:
        gone &= owned
    for key in sorted(gone):
        yield key, None
