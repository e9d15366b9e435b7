"""Prometheus HTTP SD / file SD documents, as bytes: a group's entries, its fragment, the
document joined from fragments, and a fragment split back into its entries.

Why here: rendering the SD format is what the sinks do at run time (the HTTP SD answers,
the file SD files, their caches); the record they render from, `schemas.targets`, is the
contract. `sdstream render` prints the same entries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

from schemas.targets import Group, LabelSet, TargetGroup


def http_sd_fragment(group: TargetGroup | Group) -> bytes:
    """The group's HTTP SD entries as JSON, comma-joined without the enclosing brackets
    (b"" without targets), sorted by address and then labels, labels by name.

    Sinks keep one per group, so a document is a join of fragments, not a re-render of
    every group: `b"[" + b",".join(fragments) + b"]"` is what `orjson.dumps` of all the
    entries gives.
    """
    entries: list[dict[str, object]] = []
    for target in group.targets:
        labels = {**group.labels, **target}
        address = labels.pop("__address__", "")
        entries.append({"labels": labels, "targets": [address]})
    if len(entries) < _ONE_DUMPS_FROM:
        return _fragment_by_entry(entries)
    addresses = {_address(e) for e in entries}
    if len(addresses) < len(entries) or not all(map(_PLAIN.match, addresses)):
        return _fragment_by_entry(entries)
    # Distinct addresses whose JSON is '"' + address + '"': sorting the strings sorts the
    # JSON too, and one dumps of the whole list is the entries joined by commas (a dumps
    # per entry took three times as long).
    entries.sort(key=_address)
    return orjson.dumps(entries, option=orjson.OPT_SORT_KEYS)[1:-1]


# Below this many targets (a pod's few ports), checking the addresses costs more than the
# one dumps saves (3 targets: ~20 % slower; 100: ~30 % faster; bench/README.md, session 6).
_ONE_DUMPS_FROM = 8
# Addresses without characters JSON escapes or that sort at or below its closing quote.
_PLAIN = re.compile(r"[^\x00-\x22\\]*\Z")


def _address(entry: dict[str, object]) -> str:
    address: str = entry["targets"][0]  # type: ignore[index]
    return address


def _fragment_by_entry(entries: list[dict[str, object]]) -> bytes:
    """`http_sd_fragment` for any addresses: sorted by each address's JSON, then by the
    entry's, so entries with the same address order by their labels."""
    rendered = [
        (orjson.dumps(_address(e)), orjson.dumps(e, option=orjson.OPT_SORT_KEYS)) for e in entries
    ]
    rendered.sort()
    return b",".join(entry for _, entry in rendered)


_NEXT_ENTRY = b'},{"labels":'  # only between entries: inside them, quotes are escaped
_TARGETS = b'},"targets":['  # where an entry's labels end and its one address starts


def fragment_entries(fragment: bytes) -> list[tuple[str, bytes]]:
    """The (address, entry JSON) pairs of an `http_sd_fragment`, in its order."""
    if not fragment:
        return []
    pieces = fragment.split(_NEXT_ENTRY)
    last = len(pieces) - 1
    out: list[tuple[str, bytes]] = []
    for i, piece in enumerate(pieces):
        entry = (b'{"labels":' if i else b"") + piece + (b"}" if i < last else b"")
        address: str = orjson.loads(entry.rpartition(_TARGETS)[2][:-2])  # '"addr"]}'
        out.append((address, entry))
    return out


def http_sd_document(fragments: Iterable[bytes]) -> list[bytes]:
    """The HTTP SD / file SD document made of `fragments`, in pieces to write one after
    another (joining hundreds of MiB only to write them out again is a copy too many):
    brackets, the non-empty fragments and the commas between them."""
    parts = [b"["]
    for fragment in fragments:
        if fragment:
            parts += (fragment, b",")
    if len(parts) == 1:
        return [b"[]"]
    parts[-1] = b"]"  # in place of the last comma
    return parts


def http_sd_entries(
    group: TargetGroup | Group, *, extra: LabelSet | None = None
) -> list[dict[str, object]]:
    """Prometheus HTTP SD / file SD entries for a group.

    The SD formats have one label set per entry, so each target becomes its own
    entry, with group labels under target labels (target labels win, as in
    Prometheus's scrape layer).
    """
    entries: list[dict[str, object]] = []
    for target in group.targets:
        labels = {**(extra or {}), **group.labels, **target}
        address = labels.pop("__address__", "")
        entries.append({"targets": [address], "labels": labels})
    return entries
