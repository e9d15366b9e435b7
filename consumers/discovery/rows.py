"""What the discovery page shows of a job: each target's discovered and final labels.

Prometheus's `/service-discovery` page is how people debug relabeling: for every target,
the labels discovery gave it, the labels it is scraped with, or that it was dropped.
sdstream serves final targets only, so the page is the one place where the discovered
side, and the reason a target is not served, can be seen.

The fold keeps each group as its role built it (`Fold.discovered`); this module walks a
copy of a job's groups, relabels each target with the job's rules (`Relabel`: the
engine's `process`, or "as discovered" for a job without rules), and keeps only what one
page shows: a search and a state filter over all targets, then one page of rows. Memory
is bounded by the page size, whatever the job's size; time grows with its targets, so the
route runs this in a thread.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from schemas.targets import TargetGroup

LabelSet = dict[str, str]
State = Literal["all", "active", "dropped"]
STATES: tuple[State, ...] = ("all", "active", "dropped")
PAGE_SIZE = 100  # targets per page
MAX_QUERY_CHARS = 256  # a longer search is refused (400)


class Verdict(Protocol):
    """What relabeling made of one target (the engine's `Outcome` is one)."""

    @property
    def final(self) -> LabelSet | None: ...
    @property
    def dropped_by(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...


Relabel = Callable[[Mapping[str, str]], Verdict]


@dataclass(frozen=True, slots=True)
class AsDiscovered:
    """The verdict for a job without relabel_configs: served as discovered."""

    final: LabelSet | None
    dropped_by: int | None = None
    error: str | None = None


def as_discovered(labels: Mapping[str, str]) -> Verdict:
    """`labels` themselves, not a copy: `rows` builds a fresh dict per target."""
    return AsDiscovered(labels if isinstance(labels, dict) else dict(labels))


@dataclass(frozen=True, slots=True)
class JobTargets:
    """A job's discovered groups (a copy: the fold changes its own) and how to relabel.

    `rules` describes each relabel rule, by index, to say which one dropped a target.
    `by_cluster`: how each cluster relabels where it is its own (a monitor job is made
    from each cluster's copy of the monitor, whose relabelings may differ); a cluster
    not in it relabels with `relabel`."""

    job: str
    groups: Sequence[tuple[str, TargetGroup]]  # (group key, group), sorted by key
    relabel: Relabel = as_discovered
    rules: Sequence[str] = ()
    by_cluster: Mapping[str, tuple[Relabel, Sequence[str]]] = field(default_factory=dict)
    not_kept: int = 0  # targets left out that keep_dropped_targets kept off `groups`

    def relabeling(self, cluster: str) -> tuple[Relabel, Sequence[str]]:
        return self.by_cluster.get(cluster, (self.relabel, self.rules))

    def rule_sets(self) -> list[tuple[tuple[str, ...], Sequence[str]]]:
        """Each distinct list of rules and the clusters using it (() for every cluster
        not named), in the order of the clusters' names."""
        found: dict[tuple[str, ...], list[str]] = {}
        for cluster in sorted(self.by_cluster):
            found.setdefault(tuple(self.by_cluster[cluster][1]), []).append(cluster)
        if not found or any(g.cluster not in self.by_cluster for _, g in self.groups):
            found.setdefault(tuple(self.rules), [])
        return [(tuple(clusters), list(rules)) for rules, clusters in found.items()]


@dataclass(frozen=True, slots=True)
class Query:
    text: str = ""  # case-insensitive substring of any `name="value"`, either side
    state: State = "all"
    page: int = 1  # from 1


class BadQuery(ValueError):
    """A query parameter a client got wrong; answered 400 with the message."""


def parse_query(query: Mapping[str, Sequence[str]]) -> Query:
    """`?q=TEXT&state=all|active|dropped&page=N` (the last of a repeated one wins)."""
    text = (query.get("q") or [""])[-1].strip()
    if len(text) > MAX_QUERY_CHARS:
        raise BadQuery(f"q is longer than {MAX_QUERY_CHARS} characters")
    state = (query.get("state") or ["all"])[-1] or "all"
    if state not in STATES:
        raise BadQuery(f"state must be one of {', '.join(STATES)}")
    page_text = (query.get("page") or ["1"])[-1] or "1"
    if not page_text.isdigit() or not 1 <= int(page_text) <= 10**6:
        raise BadQuery("page must be an integer from 1")
    return Query(text, state, int(page_text))


@dataclass(frozen=True, slots=True)
class Row:
    cluster: str
    source: str
    discovered: LabelSet
    final: LabelSet | None  # None: not served
    why: str | None  # why not served: the rule that dropped it, or Prometheus's reason


@dataclass(frozen=True, slots=True)
class Selection:
    """One page of a job's targets, with the counts the page shows."""

    job: str
    query: Query
    rows: Sequence[Row]
    total: int  # every discovered target of the job
    active: int  # served
    matched: int  # passing the search and state filter
    page: int  # the page shown (the last one when asked past it)
    pages: int
    # Each distinct list of relabel rules (as written) and the clusters using it
    # (`JobTargets.rule_sets`): several when the job's clusters relabel differently.
    rule_sets: Sequence[tuple[tuple[str, ...], Sequence[str]]] = ()
    not_kept: int = 0  # dropped targets only counted (keep_dropped_targets), not in `total`

    @property
    def discovered(self) -> int:
        return self.total + self.not_kept

    @property
    def dropped(self) -> int:
        return self.discovered - self.active


def labels_text(labels: Mapping[str, str]) -> str:
    """The searchable text of a label set: `name="value"` lines, lower case."""
    return "\n".join(f'{name}="{value}"' for name, value in labels.items()).lower()


def why(verdict: Verdict, rules: Sequence[str]) -> str | None:
    if verdict.final is not None:
        return None
    if verdict.dropped_by is not None:
        index = verdict.dropped_by
        rule = rules[index] if 0 <= index < len(rules) else "?"
        return f"dropped by relabel_configs[{index}]: {rule}"
    return verdict.error or "not served"


@dataclass(frozen=True, slots=True)
class _Text:
    """A row's searchable discovered text in two parts: its group's labels (made once
    per group) and its target's own labels. Roles never give a target a label its group
    has, so the two together are the discovered labels' text."""

    shared: str
    own: Mapping[str, str]

    def __contains__(self, needle: str) -> bool:
        return needle in self.shared or needle in labels_text(self.own)


def rows(job: JobTargets) -> Iterator[Row]:
    """Every target of the job, in group-key order, then in the group's order."""
    return (row for row, _ in _walk(job, search=False))


def _walk(job: JobTargets, *, search: bool) -> Iterator[tuple[Row, _Text | None]]:
    for _, group in job.groups:
        shared = labels_text(group.labels) if search else ""
        relabel, rules = job.relabeling(group.cluster)
        for target in group.targets:
            discovered = {**group.labels, **target}
            verdict = relabel(discovered)
            row = Row(group.cluster, group.source, discovered, verdict.final,
                      why(verdict, rules))  # fmt: skip
            yield row, _Text(shared, target) if search else None


def matches(row: Row, query: Query, *, text: _Text | None = None) -> bool:
    """Whether `row` passes the state filter and the search (`text`: its discovered
    labels' text, when `_walk` made it)."""
    if query.state == "active" and row.final is None:
        return False
    if query.state == "dropped" and row.final is not None:
        return False
    if not query.text:
        return True
    needle = query.text.lower()
    if needle in (text if text is not None else labels_text(row.discovered)):
        return True
    return (
        row.final is not None
        and row.final is not row.discovered
        and (needle in labels_text(row.final))
    )


def select(job: JobTargets, query: Query, *, page_size: int = PAGE_SIZE) -> Selection:
    """The page `query` asks for (the last one if it asks past it), and the counts."""
    total = active = matched = 0
    # Keep at most the asked page and the one before it: if the asked page turns out to
    # be past the end, the last page is the one before (or the one being filled).
    kept: list[Row] = []
    previous: list[Row] = []
    first = (query.page - 1) * page_size
    for row, text in _walk(job, search=bool(query.text)):
        total += 1
        active += row.final is not None
        if not matches(row, query, text=text):
            continue
        if matched >= first and len(kept) < page_size:
            kept.append(row)
        elif matched < first:
            if matched % page_size == 0:
                previous = []
            previous.append(row)
        matched += 1
    pages = max(1, -(-matched // page_size))
    page = min(query.page, pages)
    shown = kept if page == query.page else previous
    return Selection(
        job.job, query, tuple(shown), total, active, matched, page, pages, job.rule_sets(),
        job.not_kept,
    )  # fmt: skip


def counts(groups: Iterable[TargetGroup]) -> tuple[int, int]:
    """(groups, targets) of discovered groups."""
    n = t = 0
    for group in groups:
        n += 1
        t += len(group.targets)
    return n, t
