"""The folded state of one cluster: the latest trimmed object per key, per resource.

A record's value replaces the object; a tombstone removes it. Whether a change is
real is judged by resourceVersion, so replays and duplicate deliveries (at-least-once
across producer restarts) change nothing.

The Kafka loop keeps each object as the record value it came in (`Encoded`), checked
but not kept parsed: parsed JSON takes about five times the memory of its text, and
allocating it was most of the fold's catch-up time. The value is held deflated (zlib-ng
level 1, the sinks' library): a record repeats its field names and, in an
EndpointSlice, the same shape per endpoint, so a slice of a hundred endpoints shrinks
~10x, and the state was the largest thing a fold held once serving (bench/README.md,
session 8 peers). A small record (a pod: ~1.5 KB) has little to repeat within itself
(~1.8x alone), so deflate starts from a preset dictionary (~2.9x with it; `VOCABULARY`:
the trimmed objects' field names and Kubernetes' usual words, built from
`schemas.trims`), held in memory only: never written, so it may change between
versions. Every read
parses anyway, and inflating is a small part of that. `get` parses on demand; a small
cache keeps the objects read most recently (nodes, namespaces and owners are read for
every pod). Objects handed over already parsed (tests, the render CLI) stay so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

import orjson
from zlib_ng import zlib_ng

from schemas import trims
from schemas.objects import KubeObject, meta
from schemas.topics import ObjectKey, Resource, partition_for

_RAW: Final = -15  # raw deflate: no zlib header or checksum (held here only)
PARSED_CACHE: Final = 4096  # parsed objects kept, for all clusters of a fold
# ... and at most this many bytes of their records (as read), ~1.2 MiB parsed: a slice
# job reads each endpoint's pod, and 4096 parsed pods took ~20 MiB. Measured on the peers
# set (bench/README.md, session 8): the fold's peak 84 -> 74 MiB, CPU within noise.
PARSED_BYTES: Final = 256 << 10
LEVEL: Final = 1  # zlib-ng's quickest: every record read is deflated once
_WORDS: Final = (  # values every cluster's records repeat (the envelope's, Kubernetes')
    b'"schema_version":1,"type":"MODIFIED","type":"ADDED","cluster":"","resource":"pods",'
    b'"resource":"endpointslices","resource":"services","resource_version":"","observed_at":'
    b'"kind":"ReplicaSet","kind":"Pod","kind":"Node","apiVersion":"apps/v1","controller":true'
    b',"app.kubernetes.io/name":"","app.kubernetes.io/instance":"","app.kubernetes.io/part-of"'
    b':"","app.kubernetes.io/component":"","app.kubernetes.io/managed-by":"","app":"",'
    b'"pod-template-hash":"","kubernetes.io/service-name":"","endpointslice.kubernetes.io/'
    b'managed-by":"endpointslice-controller.k8s.io","prometheus.io/scrape":"true",'
    b'"prometheus.io/port":"","prometheus.io/path":"/metrics","addressType":"IPv4",'
    b'"containerID":"containerd://","phase":"Running","status":"True","protocol":"TCP"},'
    b'{"type":"PodScheduled","status":"True"},{"type":"Initialized","status":"True"},'
    b'{"type":"ContainersReady","status":"True"},{"type":"Ready","status":"True"}],'
    b'"conditions":{"ready":true,"serving":true,"terminating":false},"targetRef":{"kind":'
    b'"Pod","name":"","namespace":""}},{"addresses":["10.'
)


def _field_names(spec: trims.Spec) -> bytes:
    return b"".join(
        b'"%s":' % name.encode() + (_field_names(inner) if isinstance(inner, dict) else b"")
        for name, inner in spec.items()
    )


# Deflate's preset dictionary for object records: field names first, the likeliest
# words last (matches nearer the end are cheaper). 32 KiB at most is used; ~2 KB here.
VOCABULARY: Final = (
    b"".join(_field_names(spec) for spec in (trims.NODE, trims.SERVICE, trims.POD))
    + _field_names(trims.META)
    + _field_names(trims.ENDPOINTSLICE)
    + _WORDS
)


@dataclass(frozen=True, slots=True)
class Encoded:
    """An object as its object-event record value, already validated by the reader,
    held deflated (`packed`)."""

    version: str | None  # metadata.resourceVersion
    packed: bytes

    @classmethod
    def of(cls, obj: KubeObject, value: bytes) -> Encoded:
        """`value` is the event whose `object` is `obj` (parsed once, to check it)."""
        deflate = zlib_ng.compressobj(LEVEL, zlib_ng.DEFLATED, _RAW, zdict=VOCABULARY)
        packed = deflate.compress(value) + deflate.flush()
        return cls(meta(obj).get("resourceVersion"), packed)

    @property
    def value(self) -> bytes:
        """The record value, as read."""
        inflate = zlib_ng.decompressobj(_RAW, zdict=VOCABULARY)
        return inflate.decompress(self.packed) + inflate.flush()

    def parse(self) -> KubeObject:
        obj: KubeObject = orjson.loads(self.value)["object"]
        return obj


Stored: TypeAlias = KubeObject | Encoded


@dataclass
class ParseCache:
    """The objects parsed last, first in first out: a build reads the same node, namespace
    or owner for many pods, and one parse then serves them all. Bounded in count and in
    the bytes of the records parsed (`max_bytes`; parsed JSON takes ~5x its text), so a
    job reading many big objects (slices' pods) does not keep thousands parsed."""

    size: int = PARSED_CACHE
    max_bytes: int = PARSED_BYTES
    _entries: dict[int, tuple[Encoded, KubeObject, int]] = field(default_factory=dict)
    _bytes: int = 0

    def parse(self, stored: Encoded) -> KubeObject:
        # Keyed by identity: an entry holds its Encoded, so the id cannot be reused while
        # it is cached, and a replaced object (a new Encoded) is never served stale.
        cached = self._entries.get(id(stored))
        if cached is not None:
            return cached[1]
        value = stored.value
        obj: KubeObject = orjson.loads(value)["object"]
        self._entries[id(stored)] = (stored, obj, len(value))
        self._bytes += len(value)
        while len(self._entries) > self.size or self._bytes > self.max_bytes:
            self._bytes -= self._entries.pop(next(iter(self._entries)))[2]
        return obj

    def __len__(self) -> int:
        return len(self._entries)


def _encoded_size(stored: Stored | None) -> int:
    return len(stored.packed) if isinstance(stored, Encoded) else 0


def _version(stored: Stored) -> str | None:
    return stored.version if isinstance(stored, Encoded) else meta(stored).get("resourceVersion")


def same(old: Stored | None, new: Stored | None) -> bool:
    if old is None or new is None:
        return old is new
    version = _version(new)
    if version and version == _version(old):
        return True
    return type(old) is type(new) and old == new


@dataclass
class ClusterState:
    """Objects by resource and key; partitions only matter when a rebalance takes some away."""

    objects: dict[Resource, dict[ObjectKey, Stored]] = field(
        default_factory=lambda: {resource: {} for resource in Resource}
    )
    cache: ParseCache = field(default_factory=ParseCache)
    encoded_bytes: int = 0  # record values held, deflated (the /metrics state size)

    def get(self, resource: Resource, key: ObjectKey, *, cached: bool = True) -> KubeObject | None:
        """The object, parsed if need be; `cached=False` for an object read once per build
        (a role's own), which then never pushes the joined ones out of the cache."""
        stored = self.objects[resource].get(key)
        if stored is None or not isinstance(stored, Encoded):
            return stored
        return self.cache.parse(stored) if cached else stored.parse()

    def apply(self, resource: Resource, key: ObjectKey, obj: Stored | None) -> bool:
        """Store or remove; True when the stored state really changed."""
        table = self.objects[resource]
        old = table.get(key)
        if same(old, obj):
            return False
        self._replace(table, key, old, obj)
        return True

    def put(self, resource: Resource, key: ObjectKey, obj: Stored | None) -> None:
        """Store or remove without comparing (bulk loads that rebuild everything after)."""
        table = self.objects[resource]
        self._replace(table, key, table.get(key), obj)

    def _replace(
        self, table: dict[ObjectKey, Stored], key: ObjectKey, old: Stored | None, new: Stored | None
    ) -> None:
        self.encoded_bytes += _encoded_size(new) - _encoded_size(old)
        if new is None:
            table.pop(key, None)
        else:
            table[key] = new

    def keys(self, resource: Resource) -> Iterable[ObjectKey]:
        return self.objects[resource].keys()

    def drop_partitions(
        self, resources: Iterable[Resource], *, partitions: set[int], count: int
    ) -> list[tuple[Resource, ObjectKey]]:
        """Forget objects of revoked partitions (namespace partitioning, as the producer's)."""
        dropped: list[tuple[Resource, ObjectKey]] = []
        for resource in resources:
            table = self.objects[resource]
            gone = [k for k in table if partition_for(k, count) in partitions]
            for key in gone:
                self._replace(table, key, table[key], None)
            dropped += [(resource, key) for key in gone]
        return dropped

    def size(self) -> int:
        return sum(len(table) for table in self.objects.values())
