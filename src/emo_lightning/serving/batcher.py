"""Group the texts of concurrent requests into one `predict` call: up to `max_batch_size` texts, or what arrived
within `batch_timeout` seconds of the first; the call runs in one worker thread, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Result = TypeVar("Result")


@dataclass
class Pending(Generic[Result]):
    texts: list[str]
    answer: asyncio.Future[list[Result]]


@dataclass
class Counts:
    requests: int = 0  # answered (with predictions or an error)
    texts: int = 0
    batches: int = 0  # predict calls
    in_flight: int = 0  # requests submitted and not yet answered
    largest_batch: int = 0  # texts in the largest predict call


@dataclass
class MicroBatcher(Generic[Result]):
    """`await batcher.submit(texts)` → `predict(texts)`'s results for those texts, computed with other requests'.

    A request is never split: one with more than `max_batch_size` texts is a batch of its own.
    """

    predict: Callable[[list[str]], Sequence[Result]]
    max_batch_size: int
    batch_timeout: float
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.queue: asyncio.Queue[Pending[Result]] | None = None
        self.task: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    def start(self) -> None:
        """Start grouping (inside the running event loop)."""
        self.queue = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop after the batch in progress; requests still queued get an error."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        while self.queue is not None and not self.queue.empty():
            pending = self.queue.get_nowait()
            if not pending.answer.done():
                pending.answer.set_exception(RuntimeError("the server stopped before this request ran"))
        self.executor.shutdown(wait=True)

    async def submit(self, texts: list[str]) -> list[Result]:
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        answer: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self.counts.in_flight += 1
        try:
            await self.queue.put(Pending(texts, answer))
            return await answer
        finally:
            self.counts.in_flight -= 1
            self.counts.requests += 1

    async def run(self) -> None:
        carried: Pending[Result] | None = None
        while True:
            first = carried if carried is not None else await self.queue.get()
            group, carried = await self.collect(first)
            await self.run_group(group)

    async def collect(self, first: Pending[Result]) -> tuple[list[Pending[Result]], Pending[Result] | None]:
        """`first` and what joins it; the request that would overflow `max_batch_size` waits for the next group."""
        loop = asyncio.get_running_loop()
        group, size = [first], len(first.texts)
        deadline = loop.time() + self.batch_timeout
        while size < self.max_batch_size:
            remaining = deadline - loop.time()
            try:
                if remaining > 0:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                else:
                    item = self.queue.get_nowait()  # no more waiting: only what is already queued
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            if size + len(item.texts) > self.max_batch_size:
                return group, item
            group.append(item)
            size += len(item.texts)
        return group, None

    async def run_group(self, group: list[Pending[Result]]) -> None:
        texts = [text for pending in group for text in pending.texts]
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self.predict, texts)
        except Exception as err:
            for pending in group:
                if not pending.answer.done():
                    pending.answer.set_exception(err)
            return
        self.counts.batches += 1
        self.counts.texts += len(texts)
        self.counts.largest_batch = max(self.counts.largest_batch, len(texts))
        start = 0
        for pending in group:
            if not pending.answer.done():  # a client that went away leaves a cancelled future
                pending.answer.set_result(list(results[start : start + len(pending.texts)]))
            start += len(pending.texts)
