"""Documents held and served as raw deflate segments, one gzip stream when sent.

The sinks keep each group's HTTP SD fragment compressed (a group's targets repeat the same
label names and mostly the same values: ~8x smaller at level 1 for a pod's few targets,
~30x for a slice's hundred). Each fragment is a *segment*: deflate blocks from a fresh
compressor, ended by a sync flush (byte-aligned, not final, no reference outside itself),
so segments placed one after another are one valid deflate stream. A document is then its
pieces' segments in order; with a gzip header, an empty final block and a trailer (the
CRC-32 of the whole, combined from each piece's, and the length) it is one gzip member,
sent as it is with `Content-Encoding: gzip` to a client that accepts gzip, and inflated
piece by piece, never whole, for one that does not.

One member, not one member per group: clients bound the members of a stream (aiohttp
refuses more than 1024, against zip bombs), and a big job has tens of thousands of groups.

Who sends `Accept-Encoding: gzip`: vmagent (its discovery client is Go's default
transport, which asks for gzip and inflates itself); not Prometheus's HTTP SD client
(prometheus/common's transport sets `DisableCompression`), nor the OpenTelemetry
collector's per-job target requests (its Prometheus receiver makes them with that same
HTTP SD client).

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# zlib-ng, not the standard library's zlib: the same deflate format (any inflater reads
# it; the bytes inflated are the same), ~5-10x faster to compress these fragments, and
# CRC-32 and its combination in C. Taking a record is on a replica's path to serving;
# compressing was a third of it with zlib (bench/README.md, session 7 start to serving).
from zlib_ng import zlib_ng as zlib

# zlib-ng's level 1 ("quick": fixed codes) is ~6 us for a pod's ~6 KB fragment, 1/7 of
# zlib's level 1, for ~20 % more bytes; on big fragments its level 2 is as fast and a
# third smaller (a 300-target slice: 23 KB vs 35 KB at level 1, ~0.3 ms either way).
LEVEL = 1
BIG_LEVEL = 2
BIG = 1 << 15  # bytes of fragment from which BIG_LEVEL pays
_RAW = -15  # zlib's wbits for raw deflate, window 2**15
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no mtime, OS unknown
_END = b"\x03\x00"  # an empty final block with fixed codes
SLICE = 1 << 20  # bytes inflated before handing a piece on

Piece = tuple[bytes, int, int]  # a segment, its length and CRC-32 once inflated


def segment(data: bytes) -> bytes:
    """`data` as a segment: raw deflate blocks, sync-flushed, none final."""
    level = BIG_LEVEL if len(data) >= BIG else LEVEL
    compressor = zlib.compressobj(level, zlib.DEFLATED, _RAW)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def piece(data: bytes) -> Piece:
    return segment(data), len(data), zlib.crc32(data)


def inflate(one: bytes) -> bytes:
    """The data of one segment."""
    return zlib.decompressobj(_RAW).decompress(one)


def crc_combine(first: int, second: int, second_length: int) -> int:
    """CRC-32 of A + B from CRC-32(A), CRC-32(B) and len(B): zlib-ng's crc32_combine,
    whose cost grows with log len(B) (a document wrapped in a head and a tail combines over
    its whole length, on the event loop)."""
    return zlib.crc32_combine(first, second, second_length)


@dataclass(frozen=True, slots=True)
class Deflated:
    """A body as segments, with its length and CRC-32 once inflated."""

    segments: Sequence[bytes]
    size: int
    crc: int

    def around(self, head: bytes, tail: bytes) -> Deflated:
        """`head` + this body + `tail`."""
        return joined([plain(head), self, plain(tail)])

    def gzip(self) -> list[bytes]:
        """The body as one gzip member, in pieces (references to the segments)."""
        trailer = struct.pack("<II", self.crc, self.size & 0xFFFFFFFF)
        return [_HEADER, *self.segments, _END, trailer]


def plain(data: bytes) -> Deflated:
    """`data` as a body of one segment."""
    return Deflated([segment(data)], len(data), zlib.crc32(data))


def joined(parts: Iterable[Deflated]) -> Deflated:
    """The bodies one after another: their segments, the CRCs combined."""
    size, crc, segments = 0, 0, list[bytes]()
    for part in parts:
        segments += part.segments
        crc = crc_combine(crc, part.crc, part.size)
        size += part.size
    return Deflated(segments, size, crc)


@dataclass(frozen=True, slots=True)
class Inflating:
    """`segments` inflated, as pieces of about `SLICE` bytes, each time it is iterated:
    what a reader holds at once is one piece, whatever the document's size."""

    segments: Sequence[bytes]

    def __iter__(self) -> Iterator[bytes]:
        inflater = zlib.decompressobj(_RAW)
        gathered: list[bytes] = []
        size = 0
        for one in self.segments:
            data = inflater.decompress(one)
            gathered.append(data)
            size += len(data)
            if size >= SLICE:
                yield b"".join(gathered)
                gathered, size = [], 0
        if gathered:
            yield b"".join(gathered)


@dataclass(frozen=True, slots=True)
class Inflated:
    """`source`'s segments inflated into one `body`, with where each segment's data lies
    in it: the next body of a changed document copies the data of the segments it shares
    with this one and inflates only the new ones (`inflated`)."""

    source: Deflated
    body: bytes
    # A segment -> its data's start in `body` << _SHIFT | its length: ints, not tuples,
    # so a body's table is one object for the garbage collector, not one per group.
    spans: dict[bytes, int]

    @property
    def cost(self) -> int:
        """Bytes it holds: the body, the span table (its dict and an int per segment),
        `source`'s list of references and the segments themselves. The segments are
        mostly the view's too, but a kept body outlives changes of its job and then holds
        the only reference to the old ones: counted, the cache's bound holds."""
        table = sys.getsizeof(self.spans) + len(self.spans) * _SPAN_BYTES
        segments = self.source.segments
        return len(self.body) + table + sys.getsizeof(segments) + sum(map(len, segments))

    def span(self, one: bytes) -> tuple[int, int] | None:
        """(start, end) of `one`'s data in `body`, None if it is not one of the segments."""
        packed = self.spans.get(one)
        if packed is None:
            return None
        start = packed >> _SHIFT
        return start, start + (packed & _MASK)


_SHIFT = 40  # bits of a span's length: a body is below 1 TiB
_MASK = (1 << _SHIFT) - 1
_SPAN_BYTES = 40  # an int of up to 80 bits, as CPython allocates it
_SHORT = 16  # bytes of data compared in place to keep a run going (a shared comma)


def _same(body: bytes, start: int, length: int, at: int) -> bool:
    """Whether `body` holds at `at` the `length` bytes it holds at `start`, for short
    data only: the bracket and comma segments are shared by every document, so a table
    keyed by segment knows one place of each, and the run must not break at every comma."""
    return length <= _SHORT and body.startswith(body[start : start + length], at)


def inflated(source: Deflated, previous: Inflated | None = None) -> Inflated:
    """`source` inflated whole, reusing `previous`'s data for every segment it has too.

    Each segment is a deflate stream of its own (a fresh compressor, no reference
    outside itself), so its data is a function of its bytes: a segment found in
    `previous.spans` (equal bytes; a `bytes` object caches its hash, and the view's
    segments are the same objects from one document to the next) has the data
    `previous.body` holds for it. The body is the same, byte for byte, as inflating
    every segment (`Inflating`). The new segments go through one inflater, as `Inflating`
    does (a fresh one per segment cost twice the time): skipping some is still a valid
    stream, since none refers to data outside itself. Reused data is copied in runs (the
    segments between two changed groups are mostly one run of the previous body), so a
    body costs a few objects, not one per group: a memoryview per group, made and dropped
    at every change, brought on the garbage collector's full passes (a render's CPU p99
    50 ms against 6 ms; bench/identity_answer.py)."""
    reused = previous.spans if previous is not None else {}
    body = previous.body if previous is not None else b""
    old = memoryview(body)
    inflater = zlib.decompressobj(_RAW)
    parts: list[bytes | memoryview] = []
    spans: dict[bytes, int] = {}
    at = 0
    run: list[int] = []  # [start, end) of the run of `old` not yet in `parts`, if any
    for one in source.segments:
        packed = reused.get(one)
        if packed is None:
            if run:
                parts.append(old[run[0] : run[1]])
                run = []
            data = inflater.decompress(one)
            parts.append(data)
            length = len(data)
        else:
            start, length = packed >> _SHIFT, packed & _MASK
            if run and (start == run[1] or _same(body, start, length, run[1])):
                run[1] += length  # what follows the run is this segment's data too
            else:
                if run:
                    parts.append(old[run[0] : run[1]])
                run = [start, start + length]
        spans[one] = at << _SHIFT | length
        at += length
    if run:
        parts.append(old[run[0] : run[1]])
    return Inflated(source, b"".join(parts), spans)


_OPEN, _COMMA, _CLOSE = piece(b"["), piece(b","), piece(b"]")


def json_array(pieces: Iterable[Piece]) -> Deflated:
    """The JSON array `[` + the pieces comma-joined + `]`, each piece some elements
    comma-joined (an empty one, length 0, is left out): what `sd_json.http_sd_document`
    joins, as segments. The bracket and comma segments are shared constants, so a
    document costs a list of references to what is held."""
    segments: list[bytes] = [_OPEN[0]]
    size, crc = _OPEN[1], _OPEN[2]
    for packed, length, checksum in pieces:
        if not length:
            continue
        if len(segments) > 1:
            segments.append(_COMMA[0])
            size, crc = size + 1, crc_combine(crc, _COMMA[2], 1)
        segments.append(packed)
        size, crc = size + length, crc_combine(crc, checksum, length)
    segments.append(_CLOSE[0])
    return Deflated(segments, size + 1, crc_combine(crc, _CLOSE[2], 1))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` value admits gzip (RFC 9110 section 12.5.3): `gzip`,
    `x-gzip` or `*` with a non-zero q-value, unless gzip itself is refused."""
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        weights[name.strip()] = _quality(params)
    for name in ("gzip", "x-gzip"):
        if name in weights:
            return weights[name] > 0
    return weights.get("*", 0.0) > 0


def _quality(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0
