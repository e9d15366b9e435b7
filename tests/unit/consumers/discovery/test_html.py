"""Rendering the discovery page: hostile label values come out as text, never markup."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from consumers.discovery import html, rows

HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;"


class Parsed(HTMLParser):
    """Tags, attributes and text of a page, as a browser's tokenizer sees them."""

    def __init__(self, page: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(page.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def selection(value: str, *, job: str = "pods", query: str = "") -> rows.Selection:
    labels = {"__address__": "10.0.0.1:80", "__meta_kubernetes_pod_annotation_x": value}
    row = rows.Row("c1", "pod/ns/a", labels, labels, None)
    dropped = rows.Row("c1", "pod/ns/b", labels, None, f"dropped by rule: {value}")
    return rows.Selection(job, rows.Query(query, "all", 2), (row, dropped), 5, 4, 2, 2, 3)


def test_a_hostile_label_value_is_text_and_no_element() -> None:
    page = html.job_page(selection(HOSTILE, job=HOSTILE, query=HOSTILE))
    parsed = Parsed(page)
    assert "script" not in parsed.tags
    assert "img" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    text = "".join(parsed.text)
    assert f'__meta_kubernetes_pod_annotation_x="{HOSTILE}"' in text
    assert f"dropped by rule: {HOSTILE}" in text
    assert ("value", HOSTILE) in parsed.attrs  # the search box holds it, as a value


@given(value=st.text())
def test_any_value_round_trips_as_text(value: str) -> None:
    parsed = Parsed(html.job_page(selection(value)))
    assert parsed.tags.count("li") == 6  # three label sets of two labels: nothing injected
    assert value[: html.MAX_VALUE_CHARS] in "".join(parsed.text)


def test_the_style_sheet_is_allowed_by_its_hash_and_nothing_runs() -> None:
    digest = base64.b64encode(hashlib.sha256(html.STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in html.CSP
    assert "default-src 'none'" in html.CSP
    assert "script-src" not in html.CSP  # falls back to default-src 'none'
    assert f"<style>{html.STYLE}</style>".encode() in html.message("x", "y")
    assert html.HEADERS["X-Content-Type-Options"] == "nosniff"


def test_a_long_value_is_cut_for_display() -> None:
    page = html.job_page(selection("v" * (html.MAX_VALUE_CHARS * 3)))
    assert b"v" * (html.MAX_VALUE_CHARS + 1) not in page
    assert f"({html.MAX_VALUE_CHARS * 3} characters)".encode() in page


def test_pager_links_keep_the_search_and_state() -> None:
    page = html.job_page(selection("x", job="a/b", query='ns="shop"')).decode()
    links = re.findall(r'href="([^"]+)"', page)
    assert "/discovery/a%2Fb?q=ns%3D%22shop%22&amp;page=1" in links
    assert "/discovery/a%2Fb?q=ns%3D%22shop%22&amp;page=3" in links
    assert "page 2 of 3" in page


def test_overview_lists_jobs_clusters_readiness_and_lag() -> None:
    data = html.Overview(
        "catching up: 12 records behind",
        [html.JobSummary("<pods>", ["c1", "c2"], 3, 10, 7)],
        [html.ClusterSummary("c1", 40, 2, 12), html.ClusterSummary("c2", 5, 1, None)],
    )
    parsed = Parsed(html.overview(data))
    text = "|".join(t.strip() for t in parsed.text if t.strip())
    assert "Not ready: catching up: 12 records behind" in text
    assert "<pods>|c1, c2|3|10|7|3" in text
    assert "c1|40|2|12|c2|5|1" in text
    assert ("href", "/discovery/%3Cpods%3E") in parsed.attrs
    assert "script" not in parsed.tags
