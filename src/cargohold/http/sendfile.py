"""A file sent from the page cache to the client's socket with sendfile(2).

Serving a blob through the ASGI body messages costs a read into Python bytes, a copy into
the transport's buffer and an event-loop round trip per chunk, all on one core: 700 MB/s
on the bench machine, where nginx reaches 3,000. sendfile moves the pages from the file to
the socket inside the kernel (3,300-4,700 MB/s here, measured in bench/PROFILE.md).

The transfer runs on the event loop, as nginx's does (no aio threads): the socket stays
non-blocking and the loop waits for room in the socket's buffer on a duplicate of its
descriptor, so a slow client costs a registered descriptor, not a thread. A file not in
the page cache is read by sendfile itself; each call moves at most `STEP` bytes, which
bounds how long one disk read holds the loop, and the kernel is told the read is
sequential so that its readahead runs ahead of the socket.

Only plain TCP qualifies: under TLS the bytes must pass through the SSL transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

STEP = 2 * 1024 * 1024  # nginx's sendfile_max_chunk; 1-8 MiB measured alike here


class SendfileUnavailable(Exception):
    """The transport can't take a sendfile now; the caller sends the file as bytes."""


async def sendfile(
    transport: asyncio.Transport, path: str, count: int, stall_seconds: float
) -> None:
    """Send `count` bytes of `path` from its start to the transport's socket.

    The transport must have nothing buffered (the response head already went out), or the
    file's bytes would overtake it: then SendfileUnavailable, before anything is sent. A
    client that goes away, or takes no byte for `stall_seconds`, ends the transfer with the
    connection closed."""
    sock = transport.get_extra_info("socket")
    if (
        sock is None
        or transport.get_extra_info("sslcontext") is not None
        or transport.get_extra_info("ssl_object") is not None
        or transport.get_write_buffer_size() > 0
    ):
        raise SendfileUnavailable
    loop = asyncio.get_running_loop()
    file_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    # A descriptor of our own for the writability wait: the transport's is registered
    # with the loop already, and a second registration of the same number is refused.
    sock_fd = os.dup(sock.fileno())
    try:
        os.posix_fadvise(file_fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        offset = 0
        while offset < count:
            try:
                sent = os.sendfile(sock_fd, file_fd, offset, min(STEP, count - offset))
            except BlockingIOError:
                await _writable(loop, sock_fd, stall_seconds)
                continue
            if sent == 0:  # the file is shorter than the response said: can't be completed
                raise OSError(f"{path} ended at byte {offset} of {count}")
            offset += sent
    except (OSError, TimeoutError):
        # A reset or broken pipe, a stall, or a file cut short: the response can't be
        # finished, and closing tells the client so (its byte count comes up short).
        transport.close()
    finally:
        os.close(sock_fd)
        os.close(file_fd)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int, stall_seconds: float) -> None:
    ready = loop.create_future()
    loop.add_writer(fd, _set_once, ready)
    try:
        async with asyncio.timeout(stall_seconds):
            await ready
    finally:
        loop.remove_writer(fd)


def _set_once(ready: asyncio.Future[None]) -> None:
    with contextlib.suppress(asyncio.InvalidStateError):
        ready.set_result(None)
