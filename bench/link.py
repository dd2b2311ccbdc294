"""A network link of limited bandwidth in front of a local server: a TCP proxy on 127.0.0.1.

``python bench/link.py LISTEN_PORT UPSTREAM_PORT MB_PER_S`` forwards every connection to
``127.0.0.1:UPSTREAM_PORT`` and lets at most ``MB_PER_S`` megabytes per second through in each
direction, shared by all connections (as one link to object storage is shared by a TaskManager's
uploads), and prints ``ready`` once it listens. It stops when its standard input closes, so it never
outlives the benchmark that started it.

Why: on a machine whose disk is as fast as its memory, a checkpoint is bound by the CPU, and any
CPU encryption adds shows in full; in production a TaskManager writes its checkpoints over a network
to S3, GCS or HDFS. This puts such a link between Flink's real S3 FileSystem and moto's real S3
server, so the benchmark can also measure the case the product is built for.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time

CHUNK = 256 * 1024


class Link:
    """One direction of the link: a virtual clock of when it is next free."""

    def __init__(self, bytes_per_s: float):
        self.rate = bytes_per_s
        self.free_at = time.monotonic()

    async def send(self, n: int) -> None:
        now = time.monotonic()
        self.free_at = max(self.free_at, now) + n / self.rate
        if self.free_at > now:
            await asyncio.sleep(self.free_at - now)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link) -> None:
    try:
        while data := await reader.read(CHUNK):
            await link.send(len(data))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def serve(listen: int, upstream: int, bytes_per_s: float, stop: asyncio.Event) -> None:
    up, down = Link(bytes_per_s), Link(bytes_per_s)

    async def connection(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            w.close()
            return
        await asyncio.gather(pump(r, uw, up), pump(ur, w, down))

    server = await asyncio.start_server(connection, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> int:
    listen, upstream, mb = int(argv[0]), int(argv[1]), float(argv[2])
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    # standard input closing (the benchmark ended, however) stops the link
    threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True).start()
    loop.run_until_complete(serve(listen, upstream, mb * 1e6, stop))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
