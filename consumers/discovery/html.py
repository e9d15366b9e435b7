"""The discovery page as HTML: data in, bytes out.

Label values are hostile input (any annotation is a label), so every piece of text is
HTML-escaped here, in one place (`_e`), attribute values included, and the page is
served with a strict Content-Security-Policy (`CSP`): no script at all, the one style
sheet allowed by its hash, forms only to this server, no framing. There is no
JavaScript: paging and search are links and a GET form, so the page works in any
browser, curl included. Long values are cut for display (`MAX_VALUE_CHARS`); the search
still sees them whole.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from consumers.discovery import rows

PREFIX = "/discovery"
MAX_VALUE_CHARS = 1024  # shown of one label value; the rest is summarised
CONTENT_TYPE = "text/html; charset=utf-8"

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right}
ul.labels{list-style:none;margin:0;padding:0;font:12px/1.4 monospace}
ul.labels li{word-break:break-all}
td.dropped{color:#a33}
.ready{color:#262}
.unready{color:#a33}
nav a,nav span{margin-right:.8em}
form{margin:.5em 0}
input[name=q]{width:30em}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "img-src data:; "  # the empty favicon below: no /favicon.ico request, no 404
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS: Mapping[str, str] = {
    "Content-Type": CONTENT_TYPE,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class JobSummary:
    job: str
    clusters: Sequence[str]
    groups: int
    discovered: int  # targets before relabeling
    served: int  # targets after relabeling (what the targets topic holds)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    cluster: str
    objects: int  # objects held in the fold state
    groups: int  # discovered groups of every job
    lag: int | None  # records behind the end offsets; None: no partition read yet


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A monitor job whose clusters' copies set different scrape parameters."""

    job: str
    keys: Sequence[str]  # the parameters (prometheus.yml keys) that differ
    used: str  # the cluster whose parameters /scrape_configs serves (first by name)
    values: Mapping[str, Mapping[str, str]]  # cluster -> key -> value as JSON


@dataclass(frozen=True, slots=True)
class Overview:
    unready: str | None  # None: ready; else why not (what /readyz says)
    jobs: Sequence[JobSummary]
    clusters: Sequence[ClusterSummary]
    disagreements: Sequence[Disagreement] = ()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def job_path(job: str) -> str:
    return f"{PREFIX}/{quote(job, safe='')}"


def _page(title: str, body: Iterable[str]) -> bytes:
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
    )
    return (head + "".join(body) + "</body></html>\n").encode()


def _readiness(unready: str | None) -> str:
    if unready is None:
        return '<p id="readiness" class="ready">Ready: caught up and published.</p>'
    return f'<p id="readiness" class="unready">Not ready: {_e(unready)}</p>'


def overview(data: Overview) -> bytes:
    """`GET /`: readiness, jobs with their counts, clusters with their lag."""
    jobs = "".join(
        f'<tr><td><a href="{_e(job_path(j.job))}">{_e(j.job)}</a></td>'
        f"<td>{_e(', '.join(j.clusters))}</td><td class=num>{j.groups}</td>"
        f"<td class=num>{j.discovered}</td><td class=num>{j.served}</td>"
        f"<td class=num>{j.discovered - j.served}</td></tr>"
        for j in data.jobs
    )
    clusters = "".join(
        f"<tr><td>{_e(c.cluster)}</td><td class=num>{c.objects}</td>"
        f"<td class=num>{c.groups}</td>"
        f"<td class=num>{'' if c.lag is None else c.lag}</td></tr>"
        for c in data.clusters
    )
    return _page("sdstream: service discovery", [
        "<h1>Service discovery</h1>", _readiness(data.unready),
        '<h2>Jobs</h2><table id="jobs"><tr><th>job</th><th>clusters</th><th>groups</th>'
        "<th>discovered targets</th><th>served</th><th>dropped</th></tr>", jobs, "</table>",
        '<h2>Clusters</h2><table id="clusters"><tr><th>cluster</th><th>objects</th>'
        "<th>groups</th><th>lag (records)</th></tr>", clusters, "</table>",
        "<p>Lag: records of the cluster's object topics not yet folded, behind the end "
        "offsets at the fold's last position check. Counts are of this consumer's "
        "partitions.</p>", _disagreements(data.disagreements),
    ])  # fmt: skip


def _disagreements(found: Sequence[Disagreement]) -> str:
    if not found:
        return ""
    rows_ = "".join(
        f'<tr><td><a href="{_e(job_path(d.job))}">{_e(d.job)}</a></td>'
        f"<td>{_e(', '.join(d.keys))}</td><td>{_e(d.used)}</td></tr>"
        for d in found
    )
    return (
        "<h2>Monitor jobs whose clusters disagree</h2><p>The same monitor sets different "
        "scrape parameters in these clusters; /scrape_configs serves the first cluster's "
        'by name.</p><table id="disagreements"><tr><th>job</th><th>differing</th>'
        f"<th>used (cluster)</th></tr>{rows_}</table>"
    )


def _disagreement(found: Disagreement | None) -> str:
    """A job's disagreement: each differing parameter, per cluster."""
    if found is None:
        return ""
    clusters = list(found.values)
    head = "".join(f"<th>{_e(c)}{' (used)' if c == found.used else ''}</th>" for c in clusters)
    body = "".join(
        f"<tr><td>{_e(key)}</td>"
        + "".join(f"<td>{_value(found.values[c][key])}</td>" for c in clusters)
        + "</tr>"
        for key in found.keys
    )
    return (
        f'<p id="disagreement">Clusters disagree on scrape parameters: /scrape_configs '
        f"uses cluster {_e(found.used)}'s (the first by name).</p>"
        f'<table id="scrape-parameters"><tr><th>parameter</th>{head}</tr>{body}</table>'
    )


def _rule_sets(selection: rows.Selection) -> str:
    """The job's relabel rules, per distinct list with the clusters using it."""
    sets = [(clusters, rules) for clusters, rules in selection.rule_sets if rules]
    if not sets:
        return ""
    parts = ['<section id="rules"><h2>Relabel rules</h2>']
    for clusters, rules in sets:
        who = f"cluster {', '.join(clusters)}" if clusters else "every cluster"
        if len(sets) == 1 and clusters:
            who = f"every cluster ({', '.join(clusters)})"
        items = "".join(f"<li>{_value(rule)}</li>" for rule in rules)
        parts.append(f'<h3 class="rules-of">{_e(who)}</h3><ol start="0">{items}</ol>')
    parts.append("</section>")
    return "".join(parts)


def _value(value: str) -> str:
    if len(value) <= MAX_VALUE_CHARS:
        return _e(value)
    return f"{_e(value[:MAX_VALUE_CHARS])}… ({len(value)} characters)"


def labels(label_set: Mapping[str, str]) -> str:
    items = "".join(
        f'<li>{_e(name)}="{_value(value)}"</li>' for name, value in sorted(label_set.items())
    )
    return f'<ul class="labels">{items}</ul>'


def _row(row: rows.Row) -> str:
    if row.final is None:
        final = f'<td class="dropped">{_value(row.why or "not served")}</td>'
        css = "target dropped"
    else:
        final, css = f"<td>{labels(row.final)}</td>", "target"
    return (
        f'<tr class="{css}"><td>{_e(row.cluster)}<br>{_e(row.source)}</td>'
        f"<td>{labels(row.discovered)}</td>{final}</tr>"
    )


def _link(selection: rows.Selection, page: int) -> str:
    params = {"q": selection.query.text, "state": selection.query.state, "page": str(page)}
    kept = {name: value for name, value in params.items() if value and value != "all"}
    return f"{job_path(selection.job)}?{urlencode(kept)}"


def _pager(selection: rows.Selection) -> str:
    page, pages = selection.page, selection.pages
    parts = [f"<span>page {page} of {pages}</span>"]
    if page > 1:
        parts.insert(0, f'<a rel="prev" href="{_e(_link(selection, page - 1))}">previous</a>')
    if page < pages:
        parts.append(f'<a rel="next" href="{_e(_link(selection, page + 1))}">next</a>')
    return f'<nav class="pager">{"".join(parts)}</nav>'


def _form(selection: rows.Selection) -> str:
    options = "".join(
        f'<option value="{state}"{" selected" if state == selection.query.state else ""}>'
        f"{state}</option>"
        for state in rows.STATES
    )
    return (
        f'<form method="get" action="{_e(job_path(selection.job))}">'
        f'<input name="q" value="{_e(selection.query.text)}" '
        f'placeholder="label text, e.g. namespace=&quot;shop&quot;" aria-label="search">'
        f'<select name="state" aria-label="state">{options}</select>'
        "<button>search</button></form>"
    )


def job_page(selection: rows.Selection, disagreement: Disagreement | None = None) -> bytes:
    """`GET /discovery/<job>`: one page of the job's targets, both sides of relabeling;
    each target's cluster's rules, and, for a monitor job, its clusters' disagreement."""
    s = selection
    not_kept = (
        f" {s.not_kept} dropped targets are only counted (keep_dropped_targets): not listed."
        if s.not_kept
        else ""
    )
    summary = (
        f'<p id="summary">{s.discovered} targets discovered: {s.active} served, '
        f"{s.dropped} dropped. {s.matched} match.{not_kept}</p>"
    )
    return _page(f"sdstream: {s.job}", [
        '<nav><a href="/">all jobs</a></nav>', f"<h1>Job {_e(s.job)}</h1>", summary,
        _form(s), _pager(s),
        '<table id="targets"><tr><th>cluster / source</th><th>discovered labels</th>'
        "<th>target labels</th></tr>", *map(_row, s.rows), "</table>", _pager(s),
        _disagreement(disagreement), _rule_sets(s),
    ])  # fmt: skip


def message(title: str, text: str) -> bytes:
    """An error or notice page (404, 400, 503)."""
    return _page(f"sdstream: {title}", [
        '<nav><a href="/">all jobs</a></nav>', f"<h1>{_e(title)}</h1><p>{_e(text)}</p>",
    ])  # fmt: skip
