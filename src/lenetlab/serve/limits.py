"""What keeps `lenet serve` up under load and hostile clients: its limits (:class:`ServeLimits`), admission
(:class:`Gate`, :class:`ByteBudget`: 503 with ``Retry-After`` instead of piling up memory), security headers,
the request-head deadline (:class:`HeadTimeout`) and :func:`is_loopback`. Nothing here imports torch or
uvicorn at import time.
"""

import asyncio
import ipaddress
import math
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from lenetlab.errors import ConfigError

MB = 1024 * 1024
#: Largest accepted request body (``--max-upload-mb``).
MAX_UPLOAD_BYTES = 5 * MB
#: Largest accepted image, width x height: 4096 x 4096 (a 12-megapixel phone photo or a 300 dpi A4
#: scan fits; a digit needs far less). Checked from the image header, before decoding.
MAX_PIXELS = 4096 * 4096
#: Requests waiting for a decode/inference slot before new ones get 503.
QUEUE = 256
#: Request bodies held in memory at once, all requests together, before new ones get 503.
MAX_BUFFERED_BYTES = 128 * MB
#: A refused (413) body is read and discarded up to this many bytes in all, so that clients which
#: send the whole body before reading the answer (httpx, requests) see the 413 instead of a reset.
DRAIN_BYTES = 64 * MB
#: Seconds to receive a whole request body; a slower (stalled) upload gets 408.
BODY_TIMEOUT_S = 30.0
#: Seconds an idle keep-alive connection (or one that has not sent a complete request head) is kept.
#: Longer than the idle expiry of common client pools (httpx 5 s, aiohttp 15 s), so that the client
#: closes an idle connection first: a server closing it at the moment the client reuses it drops
#: that request with no response.
KEEP_ALIVE_S = 20
#: The ``Retry-After`` of a 503, seconds.
RETRY_AFTER_S = 1


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive(name: str, value, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0) and (not integer or float(value).is_integer())
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} {value!r}: must be {kind} {'>= 0' if allow_zero else '> 0'}")


@dataclass(frozen=True)
class ServeLimits:
    """The server's limits; every field is validated (a bad one raises a one-line :class:`ConfigError`)."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS
    workers: int = field(default_factory=cpu_count)
    queue: int = QUEUE
    #: ``None``: :data:`MAX_BUFFERED_BYTES`, or four uploads if that is more
    max_buffered_bytes: int | None = None
    drain_bytes: int = DRAIN_BYTES
    body_timeout_s: float = BODY_TIMEOUT_S
    keep_alive_s: int = KEEP_ALIVE_S
    retry_after_s: int = RETRY_AFTER_S

    def __post_init__(self) -> None:
        if self.max_buffered_bytes is None and isinstance(self.max_upload_bytes, int):
            object.__setattr__(self, "max_buffered_bytes", max(MAX_BUFFERED_BYTES, 4 * self.max_upload_bytes))
        for name in (
            "max_upload_bytes",
            "max_pixels",
            "workers",
            "max_buffered_bytes",
            "keep_alive_s",
            "retry_after_s",
        ):
            _positive(name, getattr(self, name), integer=True)
        for name in ("queue", "drain_bytes"):
            _positive(name, getattr(self, name), integer=True, allow_zero=True)
        _positive("body_timeout_s", self.body_timeout_s)
        if self.max_buffered_bytes < self.max_upload_bytes:
            raise ConfigError(
                f"max_buffered_bytes {self.max_buffered_bytes:,} must be at least the upload "
                f"limit {self.max_upload_bytes:,}"
            )


def in_range(value, low, high, *, whole: bool = False) -> bool:
    """Whether ``value`` is a number (an ``int`` if ``whole``; never a bool) from ``low`` to ``high`` (so not NaN)."""
    kinds = int if whole else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool) and low <= value <= high


def upload_limit_bytes(max_upload_mb) -> int:
    """``--max-upload-mb`` in bytes; a one-line :class:`ConfigError` unless it is a finite number in (0, 1024]."""
    if not in_range(max_upload_mb, 0, 1024) or max_upload_mb == 0:
        raise ConfigError(f"--max-upload-mb {max_upload_mb}: must be a number of megabytes above 0 and at most 1024")
    return max(1, int(max_upload_mb * MB))


class Busy(Exception):
    """The server is saturated: answer 503 with ``Retry-After``."""


class Gate:
    """Admission for the expensive part of a request (decode, preprocessing, inference).

    At most ``workers`` holders at once; at most ``queue`` more wait in arrival order; a request
    arriving when both are full raises :class:`Busy` at once. Used from one event loop only.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = workers, queue
        self.active = 0
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    def admit(self) -> None:
        """Raise :class:`Busy` if a request arriving now would be refused (slots and queue full)."""
        if self.active + self.waiting >= self.workers + self.queue:
            raise Busy(f"{self.active} requests running and {self.waiting} waiting")

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``workers`` slots for the ``async with`` block (waiting in the queue if needed)."""
        self.admit()
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.workers)
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
            self._sem.release()


class ByteBudget:
    """Bytes of request bodies held in memory, all requests together, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @contextmanager
    def hold(self) -> Iterator[Callable[[int], None]]:
        """One request's account: ``take(n)`` reserves ``n`` more bytes, or raises :class:`Busy` (reserving
        nothing) if that would exceed the limit; whatever it took is given back when the block ends."""
        taken = 0

        def take(n: int) -> None:
            nonlocal taken
            if self.used + n > self.limit:
                raise Busy(f"{self.used:,} bytes of request bodies already buffered")
            self.used += n
            taken += n

        try:
            yield take
        finally:
            self.used -= taken


#: CSP of the page, the API docs and the API: only this origin's own scripts, styles and fetches; the
#: page shows the model's 28x28 input as a data: URL image. No inline script or style is allowed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """ASGI middleware: ``Content-Security-Policy``, ``X-Content-Type-Options: nosniff``,
    ``Referrer-Policy: no-referrer`` and ``X-Frame-Options: DENY`` on every HTTP response."""

    def __init__(self, app, csp: str = CSP) -> None:
        self.app, self.csp = app, csp

    async def __call__(self, scope, receive, send) -> None:
        """Pass the request on, adding the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"content-security-policy", self.csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [*message.get("headers", []), *((k, v) for k, v in extra if k not in present)],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: :class:`HeadTimeout` as the import string uvicorn's ``http`` setting takes (each worker resolves it itself).
HTTP_PROTOCOL = "lenetlab.serve.limits:HeadTimeout"


class HeadTimeout:
    """The HTTP protocol uvicorn picks itself (its ``http="auto"``: httptools if installed, else h11),
    wrapped so that a connection waiting for a request head (new, or idle after an answer) is closed
    if no complete head arrives within ``timeout_keep_alive`` seconds, however slowly its bytes
    trickle in: uvicorn starts its own timer only after an answer and stops it at the first byte.

    It sees only the bytes, through asyncio's Protocol and Transport interface: a head is complete at
    its blank line; the deadline starts when the connection opens and after each byte of an answer
    (but ``100 Continue``). Pipelined requests are not told apart (no browser or common client sends them).
    """

    def __init__(self, config, **kwargs) -> None:
        from uvicorn.config import HTTP_PROTOCOLS
        from uvicorn.importer import import_from_string

        self.inner = import_from_string(HTTP_PROTOCOLS["auto"])(config=config, **kwargs)
        self.timeout, self.transport = config.timeout_keep_alive, None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes of a head not yet complete

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _wait_for_head(self) -> None:
        """Start (or restart) the deadline for the next complete request head."""
        self._stop()
        self._tail = b""
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self.transport.close)

    def connection_made(self, transport) -> None:  # type: ignore[override]
        """A new connection: its first request head is due within the timeout."""
        self.transport = transport
        self.inner.connection_made(_Watched(transport, self))
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        """Stop the deadline once a head's blank line has arrived, then hand the bytes on."""
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self._stop()
            self._tail = seen[-3:]
        self.inner.data_received(data)

    def connection_lost(self, exc) -> None:
        """Connection gone: drop the deadline."""
        self._stop()
        self.inner.connection_lost(exc)

    def __getattr__(self, name: str):  # the rest of the protocol (eof_received, pause_writing...): the inner one's
        return getattr(self.inner, name)


class _Watched:
    """The transport as :class:`HeadTimeout`'s inner protocol sees it: the same, but each answer byte
    written restarts the deadline for the next request head."""

    def __init__(self, transport, owner: HeadTimeout) -> None:
        self._transport, self._owner = transport, owner

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def write(self, data) -> None:
        """Send ``data``; after an answer (not an interim ``100 Continue``) the next head is due in time."""
        self._transport.write(data)
        if not bytes(data[:13]).startswith(b"HTTP/1.1 100 "):
            self._owner._wait_for_head()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback name or address (only this machine can connect)."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
