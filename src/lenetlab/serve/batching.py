"""Dynamic batching for ``lenet serve``: concurrent requests for one model share one forward pass.

A :class:`Batcher` per served model and route (``/predict``, ``/explain``) keeps an asyncio queue of
preprocessed images. One worker task takes the first waiting image, gathers more for at most
``wait_ms`` until ``max_batch`` are waiting, runs the batch function once in a worker thread and
resolves each request's future with its own answer. A batch function that raises is retried image by
image, so one failing image fails only its own request. The queue holds at most ``capacity`` images;
beyond that :class:`~lenetlab.serve.limits.Busy` (503 with ``Retry-After``).

Every ``/predict`` forward pass, batched or not, runs on :func:`pad_rows`'s fixed row counts: BLAS and oneDNN pick
their summation order by batch size, so without it an image's probabilities would differ in the last
bits with the number of requests that happened to share its batch.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lenetlab.errors import ConfigError, missing_extra
from lenetlab.serve.limits import Busy, in_range

try:
    from starlette.concurrency import run_in_threadpool
except ImportError as e:  # one line naming the extra
    raise missing_extra(e, "serve", "lenet serve") from None

#: Forward passes take a multiple of this many rows (zero images pad the rest).
BLOCK = 8
#: ``lenet serve``'s defaults: up to 64 images per forward pass, gathered for at most 2 ms.
MAX_BATCH, WAIT_MS = 64, 2.0


@dataclass(frozen=True)
class BatchOptions:
    """``--max-batch`` (1: no batching) and ``--batch-wait-ms``, validated (one-line :class:`ConfigError`)."""

    max_batch: int = 1
    wait_ms: float = WAIT_MS

    def __post_init__(self) -> None:
        mb, wait = self.max_batch, self.wait_ms
        if not in_range(mb, 1, 1024, whole=True):
            raise ConfigError(f"--max-batch {mb!r}: must be a whole number from 1 (no batching) to 1024")
        if not in_range(wait, 0, 1000):
            raise ConfigError(f"--batch-wait-ms {wait!r}: must be a number of milliseconds from 0 to 1000")

    @property
    def on(self) -> bool:
        """Whether requests are batched at all."""
        return self.max_batch > 1


def pad_rows(images: list[torch.Tensor]) -> torch.Tensor:
    """Stack images ``[C, H, W]`` (one shape) into ``[M, C, H, W]``, M the next multiple of :data:`BLOCK`,
    zero images after the given ones (see the module docstring)."""
    x = torch.stack(images)
    extra = -len(images) % BLOCK
    return torch.cat([x, x.new_zeros((extra, *x.shape[1:]))]) if extra else x


class Batcher:
    """Gathers concurrent :meth:`submit` calls into calls of ``run_batch(items) -> results`` (one
    result per item, in order; an exception instance as a result fails only its item).
    ``observe(n)``, if given, is told each batch's size; ``more_coming()``, if given, says whether
    other requests may join soon (are being preprocessed): when it says no, a batch runs at once
    instead of waiting ``wait_ms`` for nobody."""

    def __init__(
        self,
        run_batch: Callable[[list], list],
        options: BatchOptions,
        capacity: int,
        observe: Callable[[int], None] | None = None,
        more_coming: Callable[[], bool] | None = None,
    ) -> None:
        self.run_batch, self.options, self.capacity, self.observe = run_batch, options, capacity, observe
        self.more_coming = more_coming
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    @property
    def depth(self) -> int:
        """Images waiting for a batch now."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(self, item):
        """``item``'s result once its batch has run; :class:`Busy` at once when the queue is full."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():  # a new event loop (tests)
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue), name="lenetlab-batcher")
        if self._queue.qsize() >= self.capacity:
            raise Busy(f"{self._queue.qsize()} images waiting for a batch")
        future = loop.create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _gather(self, queue: asyncio.Queue) -> list:
        """The next batch: the first waiting entry, then more until ``max_batch`` or ``wait_ms`` has passed."""
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.options.wait_ms / 1e3
        while len(batch) < self.options.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or (self.more_coming is not None and not self.more_coming()):
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except TimeoutError:
                break
        return [(item, f) for item, f in batch if not f.done()]  # a cancelled request (client gone) is skipped

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            batch = await self._gather(queue)
            if not batch:
                continue
            if self.observe is not None:
                self.observe(len(batch))
            try:
                results = await run_in_threadpool(self._run, [item for item, _ in batch])
            except Exception as e:  # the one item of a batch of one failed
                results = [e] * len(batch)
            except BaseException:  # cancelled (server shutting down): nobody waits for an answer
                for _, future in batch:
                    future.cancel()
                raise
            for (_, future), result in zip(batch, results):
                if not future.done():
                    (future.set_exception if isinstance(result, BaseException) else future.set_result)(result)

    def _run(self, items: list) -> list:
        """``run_batch(items)``; when it raises, each item alone, so that only the failing ones fail."""
        try:
            return self.run_batch(items)
        except Exception:
            if len(items) == 1:
                raise
        results = []
        for item in items:
            try:
                results.append(self.run_batch([item])[0])
            except Exception as e:
                results.append(e)
        return results
