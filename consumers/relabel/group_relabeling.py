"""Relabeling a built target group: per target, then back into one group.

A role builds a group of targets sharing labels; relabeling works on each target's whole
label set (group labels under target labels), so the targets of a group can come out
with different labels, or not at all. The group kept in the fold and published holds the
labels all its surviving targets share as group labels and the rest per target, so what
is served (group labels merged under each target's) is exactly each final label set.
A group none of whose targets survives is None: the fold publishes a tombstone.

Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from consumers.relabel import engine

LabelSet = dict[str, str]


def outcomes(
    labels: Mapping[str, str], targets: Sequence[Mapping[str, str]], rules: engine.Rules,
    *, keep_meta: bool = False, defaults: Mapping[str, str] = engine.NO_DEFAULTS,
) -> list[engine.Outcome]:  # fmt: skip
    """Each target's outcome, in order; what the discovery page shows."""
    return [
        engine.process({**labels, **target}, rules, keep_meta=keep_meta, defaults=defaults)
        for target in targets
    ]


def relabel(
    labels: Mapping[str, str], targets: Sequence[Mapping[str, str]], rules: engine.Rules,
    *, keep_meta: bool = False, defaults: Mapping[str, str] = engine.NO_DEFAULTS,
) -> tuple[LabelSet, list[LabelSet]] | None:  # fmt: skip
    """The group's (labels, targets) after relabeling, or None when every target is gone."""
    done = outcomes(labels, targets, rules, keep_meta=keep_meta, defaults=defaults)
    finals = [o.final for o in done]
    return regroup([final for final in finals if final is not None])


def regroup(finals: Sequence[LabelSet]) -> tuple[LabelSet, list[LabelSet]] | None:
    """Shared labels (never `__address__`) as group labels, the rest per target. Equal
    final label sets are one target, as in Prometheus (rules that rewrite `__address__`
    from an annotation often make a pod's ports one target)."""
    seen: set[frozenset[tuple[str, str]]] = set()
    unique = []
    for final in finals:
        identity = frozenset(final.items())
        if identity not in seen:
            seen.add(identity)
            unique.append(final)
    finals = unique
    if not finals:
        return None
    shared = dict(finals[0])
    shared.pop("__address__", None)
    for final in finals[1:]:
        shared = {k: v for k, v in shared.items() if final.get(k) == v}
    targets = [{k: v for k, v in final.items() if k not in shared} for final in finals]
    return shared, targets
