"""`consume.Readiness`: one process is ready once its sinks have read a targets topic a
fold published before it started (a restart), or once its fold has synced; a first start
waits for the fold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from sdstream import consume


@dataclass
class Fold:
    published: bool = False
    synced: bool = False
    refusal: str | None = None

    resyncing: bool = False  # a full sync due after the first (a rebalance)

    def ready(self) -> bool:
        return self.synced and not self.resyncing

    def published_before(self) -> bool:
        return self.published

    def synced_once(self) -> bool:
        return self.synced

    def unready_reason(self) -> str | None:
        if self.ready():
            return None
        return self.refusal or ("publishing first sync" if self.synced else "catching up")

    def degraded_reason(self) -> str | None:
        return self.refusal if self.synced else None

    def problem(self) -> str | None:
        return self.refusal


@dataclass
class Sinks:
    read: bool = False

    def unready_reason(self) -> str | None:
        return None if self.read else "reading p.targets: 2 of 2 partitions"

    def degraded_reason(self) -> str | None:
        return None


def readiness(fold: Fold | None, sinks: Sinks | None) -> consume.Readiness:
    return consume.Readiness(cast(Any, fold), cast(Any, sinks))


@pytest.mark.parametrize(
    ("published", "read", "synced", "expected"),
    [
        (True, True, False, None),  # a restart: the topic is served once read
        (True, False, False, "catching up"),
        (False, True, False, "catching up"),  # a new topic: the fold's sync
        (False, True, True, None),
        (True, True, True, None),
        (False, False, True, "reading p.targets: 2 of 2 partitions"),
    ],
)
def test_one_process_is_ready_from_a_published_topic_or_a_synced_fold(
    published: bool, read: bool, synced: bool, expected: str | None
) -> None:
    ready = readiness(Fold(published=published, synced=synced), Sinks(read=read))
    assert ready.unready() == expected
    assert ready.started() == (synced and read)


def test_after_the_first_sync_a_full_sync_due_is_unready_again_as_ever() -> None:
    fold = Fold(published=True, synced=True, resyncing=True)
    assert readiness(fold, Sinks(read=True)).unready() == "publishing first sync"


def test_serving_from_the_topic_names_what_holds_the_fold_back_as_degraded() -> None:
    fold = Fold(published=True, refusal="topic_denied: c1.pods")
    ready = readiness(fold, Sinks(read=True))
    assert ready.unready() is None
    assert ready.degraded() == "topic_denied: c1.pods"


def test_each_half_alone_is_its_own_readiness() -> None:
    assert readiness(Fold(published=True), None).unready() == ("catching up")
    assert readiness(None, Sinks(read=True)).unready() is None
