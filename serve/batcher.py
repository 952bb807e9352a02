"""Micro-batching: texts from requests that arrive within a few milliseconds share one forward pass.

One worker task owns the model. A request's texts are queued as one job; the worker takes the first job, waits
up to `wait_ms` for more (none if jobs are already waiting: the previous pass was the wait), runs up to
`max_batch` texts in a single thread, and hands each job its own slice of the results. The queue is bounded
in texts: a job that would pass `queue_max` is refused at once with `Overloaded`, which the API turns into
503 with Retry-After, so memory and latency stay bounded under any load. `stop()` finishes what was accepted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue is full; `retry_after` is a whole number of seconds after which a retry is likely to pass."""

    def __init__(self, retry_after: int):
        super().__init__(f"the classification queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The service is stopping and accepts no new work."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """`await batcher.classify(texts)` -> the model's outputs for `texts`, computed together with other jobs."""

    def __init__(
        self,
        predict: Callable[[list[str]], Sequence[Any]],
        *,
        max_batch: int = 64,
        wait_ms: float = 5.0,
        queue_max: int = 256,
        on_batch: Callable[[int], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ):
        self._predict = predict
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self.queue_max = queue_max
        self._on_batch = on_batch or (lambda n: None)
        self._on_depth = on_depth or (lambda n: None)
        self._jobs: deque[_Job] = deque()
        self._depth = 0  # texts waiting, not yet in a forward pass
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sahay-model")
        self._worker: asyncio.Task | None = None
        self._stopping = False
        self._texts_per_s = 0.0  # moving estimate, for Retry-After

    @property
    def depth(self) -> int:
        return self._depth

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="sahay-batcher")

    async def stop(self) -> None:
        """Refuse new jobs, finish the accepted ones, then stop the worker."""
        self._stopping = True
        self._arrived.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def classify(self, texts: list[str]) -> list[Any]:
        if self._stopping:
            raise ShuttingDown("the service is shutting down")
        if not texts:
            return []
        if self._depth + len(texts) > self.queue_max:
            raise Overloaded(self._retry_after())
        job = _Job(list(texts), asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._depth += len(texts)
        self._on_depth(self._depth)
        self._arrived.set()
        return await job.future

    def _retry_after(self) -> int:
        if self._texts_per_s <= 0:
            return 1
        return max(1, math.ceil(self._depth / self._texts_per_s))

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        size = 0
        while self._jobs and (not batch or size + len(self._jobs[0].texts) <= self.max_batch):
            job = self._jobs.popleft()
            batch.append(job)
            size += len(job.texts)
        self._depth -= size
        self._on_depth(self._depth)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._stopping:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                if self._jobs and self.wait_s > 0 and self._depth < self.max_batch and not self._stopping:
                    await asyncio.sleep(self.wait_s)  # woken from idle: give others a moment to join
                continue
            batch = self._take_batch()
            texts = [t for job in batch for t in job.texts]
            started = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self._executor, self._predict, texts)
            except Exception as exc:  # the model failed on this batch: every job in it gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            elapsed = max(time.perf_counter() - started, 1e-6)
            rate = len(texts) / elapsed
            self._texts_per_s = rate if self._texts_per_s == 0 else 0.8 * self._texts_per_s + 0.2 * rate
            self._on_batch(len(texts))
            offset = 0
            for job in batch:
                n = len(job.texts)
                if not job.future.done():  # a cancelled request (client gone) is simply dropped
                    job.future.set_result(list(outputs[offset : offset + n]))
                offset += n
