"""Prometheus HTTP SD / file SD documents, as bytes: a group's entries, its fragment, the
document joined from fragments, and a fragment split back into its entries.

Why here: rendering the SD format is what the sinks do at run time (the HTTP SD answers,
the file SD files, their caches); the record they render from, `schemas.targets`, is the
contract. `sdstream render` prints the same entries.
"""

from __future__ import annotations

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
    # One dumps per entry: sorted keys put "labels" before "targets", and entries with the
    # same address then order by their labels' JSON, as the entries themselves do.
    rendered = []
    for target in group.targets:
        labels = {**group.labels, **target}
        address = labels.pop("__address__", "")
        entry = {"labels": labels, "targets": [address]}
        rendered.append((orjson.dumps(address), orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)))
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
