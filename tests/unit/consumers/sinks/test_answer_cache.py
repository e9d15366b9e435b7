from __future__ import annotations

from consumers.sinks.answer_cache import ENTRY_OVERHEAD, AnswerCache

BUDGET = 3 * (100 + ENTRY_OVERHEAD)


def test_the_least_recently_used_answer_goes_first_when_the_budget_is_spent() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    for name in ("a", "b", "c"):
        assert cache.put(("web", name), name, 100)
    assert cache.get(("web", "a")) == "a"  # now b is the oldest

    cache.put(("web", "d"), "d", 100)

    assert [cache.get(("web", n)) for n in "abcd"] == ["a", None, "c", "d"]
    assert (cache.size, cache.evictions, len(cache)) == (BUDGET, 1, 3)


def test_an_answer_larger_than_the_budget_is_not_kept() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    cache.put(("web", "a"), "a", 100)

    assert not cache.put(("web", "huge"), "huge", BUDGET)

    assert (cache.get(("web", "huge")), cache.get(("web", "a"))) == (None, "a")
    assert cache.evictions == 1


def test_replacing_an_answer_counts_its_bytes_once() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    cache.put(("web", "a"), "old", 100)
    cache.put(("web", "a"), "new", 50)
    assert (cache.get(("web", "a")), cache.size, cache.evictions) == ("new", 50 + ENTRY_OVERHEAD, 0)


def test_dropping_a_job_frees_its_answers_only() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    cache.put(("web", "a"), "a", 100)
    cache.put(("web", "b"), "b", 100)
    cache.put(("api", "a"), "api", 100)

    cache.drop_job("web")

    assert [cache.get(k) for k in (("web", "a"), ("web", "b"), ("api", "a"))] == [None, None, "api"]
    assert (cache.size, cache.evictions) == (100 + ENTRY_OVERHEAD, 0)


def test_a_lasting_entry_outlives_its_jobs_drop_but_not_the_budget() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    cache.put(("web", "answer"), "a", 100)
    cache.put(("web", "identity"), "i", 100, lasting=True)

    cache.drop_job("web")

    assert (cache.get(("web", "answer")), cache.peek(("web", "identity"))) == (None, "i")
    assert cache.size == 100 + ENTRY_OVERHEAD
    for name in "xyz":  # the lasting entry is the least recently used: evicted first
        cache.put(("api", name), name, 100)
    assert cache.peek(("web", "identity")) is None
    assert cache.size <= BUDGET


def test_peek_leaves_the_order_of_eviction_alone() -> None:
    cache: AnswerCache[str] = AnswerCache(BUDGET)
    for name in ("a", "b", "c"):
        cache.put(("web", name), name, 100)
    assert cache.peek(("web", "a")) == "a"
    cache.put(("web", "d"), "d", 100)
    assert cache.peek(("web", "a")) is None
