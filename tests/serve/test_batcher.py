"""The micro-batcher: jobs share forward passes, results go back to their own callers, the queue is bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serve.batcher import MicroBatcher, Overloaded, ShuttingDown


class Recorder:
    """A stand-in model that records each forward pass and can be held until released."""

    def __init__(self, hold: bool = False):
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, texts: list[str]) -> list[str]:
        self.release.wait(5)
        self.calls.append(list(texts))
        return [t.upper() for t in texts]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_jobs_share_one_forward_pass_and_get_their_own_results():
    model = Recorder()

    async def main():
        batcher = MicroBatcher(model, max_batch=64, wait_ms=50, queue_max=100)
        await batcher.start()
        jobs = [["a", "b"], ["c"], ["d", "e", "f"]]
        results = await asyncio.gather(*(batcher.classify(j) for j in jobs))
        await batcher.stop()
        return results

    results = run(main())
    assert results == [["A", "B"], ["C"], ["D", "E", "F"]]
    assert model.calls == [["a", "b", "c", "d", "e", "f"]]


def test_batches_never_exceed_max_batch_unless_one_job_is_larger():
    model = Recorder()

    async def main():
        batcher = MicroBatcher(model, max_batch=3, wait_ms=20, queue_max=100)
        await batcher.start()
        results = await asyncio.gather(
            *(batcher.classify([f"t{i}"] * 2) for i in range(4)), batcher.classify(["x"] * 5)
        )
        await batcher.stop()
        return results

    results = run(main())
    assert results[-1] == ["X"] * 5
    assert sorted(len(c) for c in model.calls) == [2, 2, 2, 2, 5]


def test_full_queue_refuses_with_retry_after_and_loses_nothing_accepted():
    model = Recorder(hold=True)

    async def main():
        batcher = MicroBatcher(model, max_batch=2, wait_ms=0, queue_max=4)
        await batcher.start()
        first = asyncio.create_task(batcher.classify(["a", "b"]))  # taken into the (held) forward pass
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(batcher.classify(["c", "d", "e", "f"]))  # fills the queue
        await asyncio.sleep(0.05)
        assert batcher.depth == 4
        with pytest.raises(Overloaded) as refused:
            await batcher.classify(["g"])
        model.release.set()
        done = await asyncio.gather(first, waiting)
        await batcher.stop()
        return refused.value, done

    refused, done = run(main())
    assert refused.retry_after >= 1
    assert "queue is full" in str(refused)
    assert done == [["A", "B"], ["C", "D", "E", "F"]]


def test_a_failing_forward_pass_fails_only_its_jobs():
    calls = []

    def flaky(texts):
        calls.append(texts)
        if "boom" in texts:
            raise RuntimeError("model failed")
        return texts

    async def main():
        batcher = MicroBatcher(flaky, max_batch=1, wait_ms=0, queue_max=10)
        await batcher.start()
        results = await asyncio.gather(batcher.classify(["boom"]), batcher.classify(["ok"]), return_exceptions=True)
        await batcher.stop()
        return results

    bad, good = run(main())
    assert isinstance(bad, RuntimeError)
    assert good == ["ok"]


def test_stop_finishes_accepted_jobs_and_refuses_new_ones():
    model = Recorder(hold=True)

    async def main():
        batcher = MicroBatcher(model, max_batch=8, wait_ms=0, queue_max=10)
        await batcher.start()
        pending = asyncio.create_task(batcher.classify(["a"]))
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(batcher.stop())
        await asyncio.sleep(0.05)
        with pytest.raises(ShuttingDown):
            await batcher.classify(["late"])
        model.release.set()
        await stopping
        return await pending

    assert run(main()) == ["A"]
