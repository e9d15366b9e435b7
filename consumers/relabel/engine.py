"""Prometheus's `relabel_configs`, applied to one discovered target: keep, drop, rewrite.

The consumer serves final targets, so the scrapers that read them need no relabeling of
their own and download only what they keep. Exactness is the point: the same labels
Prometheus 3.14 would hold for the target after `relabel_configs` (model/relabel
`Process`, then scrape/target.go `PopulateLabels`), rule by rule as docs/relabeling.md
describes. API::

    rules = engine.compile_rules(job.relabel_configs)   # once per job
    outcome = engine.process(discovered, rules)          # per target
    outcome.final        # the labels to serve, or None: not served
    outcome.dropped_by   # index of the keep/drop/...equal rule that dropped it
    outcome.error        # Prometheus's reason for not scraping it ("no address", ...)

Rule results are memoized per rule (bounded): label names and many values repeat across
thousands of targets, and a cached answer is the same answer.

Pure: no I/O, no logging.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from consumers.relabel import expand
from schemas import prom_duration
from schemas.relabel import RelabelConfig, anchored, compile_regex

LabelSet = dict[str, str]
META_PREFIX: Final = "__meta_"
CACHE_ENTRIES: Final = 4096  # per rule and kind; a full cache is cleared, never grown
# Longer values are not remembered, so a full cache holds at most ~4 MiB of keys per rule.
MEMO_KEY_CHARS: Final = 1024


@dataclass(frozen=True, slots=True)
class Outcome:
    """What relabeling made of one target. `final` is None when it is not served: a rule
    dropped it (`dropped_by`, the rule's index) or Prometheus would reject it (`error`)."""

    final: LabelSet | None
    dropped_by: int | None = None
    error: str | None = None


# Regexes whose anchored match is the whole value in group 1 (`(.+)`: when non-empty):
# the usual "copy this label" rules, answered without calling RE2.
_WHOLE: Final = {"(.*)": True, "(.+)": False}
_MISSING: Final = object()


class Rule:
    """One compiled rule: its config, its RE2 program and its group names."""

    def __init__(self, config: RelabelConfig) -> None:
        self.config = config
        self.action = config.action or "replace"  # never None once validated
        self.sources = config.source_labels or ()
        self.regex: Any = compile_regex(config.regex_text)
        self.groups: int = self.regex.groups
        self.names = expand.group_names(anchored(config.regex_text), self.groups)
        self._whole = _WHOLE.get(config.regex_text)  # None: ask RE2
        self._cache: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[str], Any]) -> Any:
        if len(key) > MEMO_KEY_CHARS:  # e.g. a big annotation that differs per pod
            return compute(key)
        found = self._cache.get(key, _MISSING)
        if found is _MISSING:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            found = self._cache[key] = compute(key)
        return found

    def match(self, text: str) -> list[str | None] | None:
        """Each group's text in the anchored match of `text` (None: it took no part;
        group 0 first), or None when `text` does not match."""
        if self._whole is not None:
            return [text, text] if text or self._whole else None
        encoded = text.encode()
        found = self.regex.search(encoded)
        if found is None:
            return None
        spans = [found.span(i) for i in range(self.groups + 1)]
        return [None if a < 0 else encoded[a:b].decode() for a, b in spans]

    def matches(self, text: str) -> bool:
        found = self._cache.get(text, _MISSING)
        if found is _MISSING:
            found = self.memo(text, lambda t: self.match(t) is not None)
        return bool(found)

    def expanded(self, template: str, text: str) -> str | None:
        """`template` expanded against the match of `text`; None when it does not match."""
        groups = self.match(text)
        return None if groups is None else expand.expand(template, groups, self.names)


Rules = tuple[Rule, ...]


def compile_rules(configs: Iterable[RelabelConfig]) -> Rules:
    return tuple(Rule(config) for config in configs)


NO_DEFAULTS: Mapping[str, str] = MappingProxyType({})


def relabel(labels: Mapping[str, str], rules: Rules) -> tuple[LabelSet, int | None]:
    """Prometheus's `relabel.Process`: the labels after every rule, and the index of the
    rule that dropped the target (None if kept; the labels are then as that rule left
    them). Empty values are absent labels, as in Prometheus's label builder."""
    current = dict(labels)
    if "" in current.values():
        current = {name: value for name, value in current.items() if value}
    for index, rule in enumerate(rules):
        if not _STEPS[rule.action](rule, current):
            return current, index
    return current, None


def process(
    labels: Mapping[str, str], rules: Rules, *, keep_meta: bool = False,
    defaults: Mapping[str, str] = NO_DEFAULTS,
) -> Outcome:  # fmt: skip
    """One discovered target (group labels under target labels) to what is served: the
    job's scrape `defaults` added where it lacks them, relabeled, checked like
    Prometheus's `PopulateLabels` checks a target, and without `__meta_*` labels unless
    `keep_meta`. A default still holding its own value is not served: the scraper reading
    us adds it back from its own job (docs/relabeling.md §1)."""
    final, dropped_by = relabel(with_defaults(labels, defaults), rules)
    if dropped_by is not None:
        return Outcome(None, dropped_by=dropped_by)
    error = target_error(final) or (scrape_error(final) if defaults else None)
    if error is not None:
        return Outcome(None, error=error)
    if not keep_meta:
        final = {k: v for k, v in final.items() if not k.startswith(META_PREFIX)}
    if defaults:
        final = {k: v for k, v in final.items() if defaults.get(k) != v}
    return Outcome(final)


def with_defaults(labels: Mapping[str, str], defaults: Mapping[str, str]) -> Mapping[str, str]:
    """`PopulateDiscoveredLabels`: each default where the target's value is missing or
    empty; a discovered label wins."""
    if not defaults:
        return labels
    return {**labels, **{k: v for k, v in defaults.items() if not labels.get(k)}}


def target_error(labels: Mapping[str, str]) -> str | None:
    """Why Prometheus would not scrape a relabeled target, or None. A label named "" is
    held by Prometheus but cannot be served: SD clients reject the whole document."""
    address = labels.get("__address__", "")
    if not address:
        return "no address"
    if "/" in address:
        return f"{address!r} is not a valid hostname"
    if "" in labels:
        return 'label name "" (from labelmap) cannot be served'
    return None


_GO_BOOLS: Final = frozenset(
    ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")
)
_FLAGS: Final = (
    "__convert_classic_histograms_to_nhcb__",
    "__always_scrape_classic_histograms__",
    "__scrape_native_histograms__",
)


def scrape_error(labels: Mapping[str, str]) -> str | None:
    """`PopulateLabels`'s checks of the scrape labels (scrape/target.go), once the scrape
    defaults went in: a rule may have removed or rewritten them."""
    interval, timeout = labels.get("__scrape_interval__", ""), labels.get("__scrape_timeout__", "")
    interval_ms = _parse("interval", interval)
    if isinstance(interval_ms, str):
        return interval_ms
    timeout_ms = _parse("timeout", timeout)
    if isinstance(timeout_ms, str):
        return timeout_ms
    if timeout_ms > interval_ms:
        return f'scrape timeout cannot be greater than scrape interval ("{timeout}" > "{interval}")'
    bad = next((f for f in _FLAGS if labels.get(f, "false") not in _GO_BOOLS), None)
    return None if bad is None else f"error parsing {bad}: {labels[bad]!r} is not a bool"


def _parse(kind: str, text: str) -> int | str:
    """The scrape `kind` ("interval", "timeout") in milliseconds, or Prometheus's error."""
    try:
        ms = prom_duration.parse_ms(text)
    except ValueError as exc:
        return f"error parsing scrape {kind}: {exc}"
    return ms or f"scrape {kind} cannot be 0"


def _values(rule: Rule, labels: Mapping[str, str]) -> str:
    return rule.config.separator.join(labels.get(name, "") for name in rule.sources)


def _set(labels: LabelSet, name: str, value: str) -> None:
    """labels.Builder.Set: an empty value deletes."""
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def _replace(rule: Rule, labels: LabelSet) -> bool:
    c, val = rule.config, _values(rule, labels)
    if val == "" and c.default_regex and "$" not in c.target_label + c.replacement:
        _set(labels, c.target_label, c.replacement)  # Prometheus's fast path: no checks
        return True
    result: tuple[str, str] | None = rule.memo(val, lambda v: _replacement(rule, v))
    if result is not None and result[0]:  # "" is no valid label name: nothing happens
        _set(labels, *result)
    return True


def _replacement(rule: Rule, val: str) -> tuple[str, str] | None:
    groups = rule.match(val)
    if groups is None:
        return None
    target = expand.expand(rule.config.target_label, groups, rule.names)
    return target, expand.expand(rule.config.replacement, groups, rule.names)


def _hashmod(rule: Rule, labels: LabelSet) -> bool:
    digest = hashlib.md5(_values(rule, labels).encode(), usedforsecurity=False).digest()
    _set(
        labels,
        rule.config.target_label,
        str(int.from_bytes(digest[8:], "big") % rule.config.modulus),
    )
    return True


def _labelmap(rule: Rule, labels: LabelSet) -> bool:
    # From a snapshot. When two names map to one, the last in sorted order wins
    # (Prometheus's winner depends on Go map order); only then is sorting needed.
    cache, template = rule._cache, rule.config.replacement
    mapped = []
    for name, value in list(labels.items()):
        new = cache.get(name, _MISSING)
        if new is _MISSING:
            new = rule.memo(name, lambda n: rule.expanded(template, n))
        if new is not None:
            mapped.append((name, new, value))
    if len({new for _, new, _ in mapped}) < len(mapped):
        mapped.sort()
    for _, new, value in mapped:
        labels[new] = value  # the new name is not checked, as in Prometheus
    return True


def _labeldrop(rule: Rule, labels: LabelSet) -> bool:
    for name in [n for n in labels if rule.matches(n)]:
        del labels[name]
    return True


def _labelkeep(rule: Rule, labels: LabelSet) -> bool:
    for name in [n for n in labels if not rule.matches(n)]:
        del labels[name]
    return True


def _case(convert: Callable[[str], str]) -> Callable[[Rule, LabelSet], bool]:
    def step(rule: Rule, labels: LabelSet) -> bool:
        _set(labels, rule.config.target_label, convert(_values(rule, labels)))
        return True

    return step


def go_lower(text: str) -> str:
    """Go's strings.ToLower: each character's simple lower-case mapping."""
    return "".join(low if len(low := char.lower()) == 1 else _simple_lower(char) for char in text)


def go_upper(text: str) -> str:
    """Go's strings.ToUpper: each character's simple upper-case mapping (Python's `upper`
    uses the full, sometimes multi-character mappings: ß -> SS)."""
    return "".join(up if len(up := char.upper()) == 1 else _simple_upper(char) for char in text)


def _simple_lower(char: str) -> str:
    return "i" if char == "\u0130" else char  # İ: the only multi-character lower mapping


def _simple_upper(char: str) -> str:
    """UnicodeData's simple mapping for the characters whose full one is several: only
    the Greek letters with ypogegrammeni have one (to their prosgegrammeni forms)."""
    code = ord(char)
    if 0x1F80 <= code <= 0x1FAF and code & 0xF < 8:
        return chr(code + 8)
    return {"\u1fb3": "\u1fbc", "\u1fc3": "\u1fcc", "\u1ff3": "\u1ffc"}.get(char, char)


_STEPS: Final[dict[str, Callable[[Rule, LabelSet], bool]]] = {
    "replace": _replace,
    "keep": lambda rule, labels: rule.matches(_values(rule, labels)),
    "drop": lambda rule, labels: not rule.matches(_values(rule, labels)),
    "keepequal": lambda rule, labels: (
        labels.get(rule.config.target_label, "") == _values(rule, labels)
    ),
    "dropequal": lambda rule, labels: (
        labels.get(rule.config.target_label, "") != _values(rule, labels)
    ),
    "hashmod": _hashmod,
    "labelmap": _labelmap,
    "labeldrop": _labeldrop,
    "labelkeep": _labelkeep,
    "lowercase": _case(go_lower),
    "uppercase": _case(go_upper),
}


# Pre-filtering -------------------------------------------------------------------------
# A job whose first rules keep or drop by labels the consumer can compute cheaply (say a
# monitor's selector, on the pod's own labels) need not build the groups those rules would
# drop entirely. `prefilter` picks, from the compiled rules, the leading ones whose result
# is exactly the same on such a partial label set as on every full target; `drops` runs
# them. Exactness rests on `covered`: a name is covered when every full target holds the
# same value for it as the partial set (or neither holds it).

_FILTERS: Final = frozenset(("keep", "drop", "keepequal", "dropequal"))
_WRITES_ONE: Final = frozenset(("replace", "hashmod", "lowercase", "uppercase"))
_BY_NAME: Final = frozenset(("labeldrop", "labelkeep"))


def _reads(rule: Rule) -> tuple[str, ...]:
    if rule.action in ("keepequal", "dropequal"):
        return (*rule.sources, rule.config.target_label)
    return tuple(rule.sources)


@dataclass(frozen=True, slots=True)
class Prefilter:
    """Rules to run on a partial label set (`prefilter`), and every name they read or
    write: the only names `drops` copies."""

    rules: Rules
    names: tuple[str, ...]


def prefilter(rules: Rules, covered: Callable[[str], bool]) -> Prefilter | None:
    """The leading rules to run on a partial label set: filters reading only covered names,
    and the rules before them that write what those read. None: nothing to pre-filter.

    A rule writing one covered label from covered sources keeps it covered; otherwise its
    target is covered no more. labeldrop/labelkeep decide per name, so
    coverage holds through them. labelmap, a templated target name and a filter reading an
    uncovered name end the walk: only the leading filters (a monitor's selector) pre-filter,
    so a target a later rule drops (the port, the monitor's own relabelings) is still built
    and shown dropped on the discovery page, with the rule that dropped it."""
    uncovered: set[str] = set()

    def known(names: Iterable[str]) -> bool:
        return all(covered(n) and n not in uncovered for n in names)

    walked: list[Rule] = []
    for rule in rules:
        target = rule.config.target_label
        if rule.action in _FILTERS:
            if not known(_reads(rule)):
                break  # later filters stay on the page as dropped, with their rule
            walked.append(rule)
        elif rule.action in _WRITES_ONE and "$" not in target:
            if known((*_reads(rule), target)):
                walked.append(rule)
            else:
                uncovered.add(target)
        elif rule.action in _BY_NAME:
            walked.append(rule)
        else:
            break
    program = _live(walked)
    if not program:
        return None
    names = {n for rule in program for n in (*_reads(rule), rule.config.target_label)}
    return Prefilter(program, tuple(sorted(names - {""})))


def _live(walked: list[Rule]) -> Rules:
    """`walked` without its trailing non-filters and the writes no later filter reads."""
    needed: set[str] = set()
    kept: list[Rule] = []
    for rule in reversed(walked):
        if rule.action in _FILTERS:
            needed.update(_reads(rule))
        elif rule.action in _BY_NAME:
            if not kept:
                continue
        elif rule.config.target_label in needed:
            needed.update(_reads(rule))
        else:
            continue
        kept.append(rule)
    return tuple(reversed(kept)) if any(r.action in _FILTERS for r in kept) else ()


def drops(
    partial: Mapping[str, str], program: Prefilter, *, defaults: Mapping[str, str] = NO_DEFAULTS
) -> bool:
    """Whether `program` (from `prefilter`) drops every target whose covered labels are
    those of `partial`: the same steps `process` takes (defaults where missing or empty,
    empty values absent), on the names the program reads or writes (no other name can
    change its outcome; labeldrop/labelkeep decide name by name)."""
    current: LabelSet = {}
    for name in program.names:
        value = partial.get(name) or defaults.get(name)
        if value:
            current[name] = value
    return not all(_STEPS[rule.action](rule, current) for rule in program.rules)
