"""The producer thread of a streamed load (``etl.staging.pipelined``): order, bounded
look-ahead, an error in the producer raised at the consumer, and a consumer that stops
early stopping the producer (a load whose COPY failed must not read the rest of a file)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from etl.staging import pipelined


def test_items_arrive_in_order_produced_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            yield i

    seen = []
    for item in pipelined(items(), depth=2):
        time.sleep(0.01)  # the consumer is slower: the producer waits on the queue
        # at most: this item, two queued, one produced and waiting to be put
        assert len(produced) - item <= 4
        seen.append(item)
    assert seen == list(range(20))


def test_an_error_in_the_producer_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("batch 3 is unreadable")

    seen = []
    with pytest.raises(ValueError, match="batch 3"):
        for item in pipelined(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_stops_the_producer() -> None:
    closed = threading.Event()
    produced: list[int] = []

    def items() -> Iterator[int]:
        try:
            for i in range(1_000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    with pytest.raises(RuntimeError):
        for item in pipelined(items(), depth=2, poll_s=0.05):
            if item == 3:
                raise RuntimeError("COPY failed")
    assert closed.wait(5), "the producer kept running after the consumer stopped"
    assert len(produced) < 10
