"""Decode each file tile of a TIFF slide once, however many tile windows overlap it.

tifffile's zarr store hands out *decoded* file tiles, so keeping its recent answers (zarr's
``CacheStore``, least recently used dropped first) means a file tile that several windows
touch is decoded once: a 320 px SR window on 512 px JPEG tiles touches four, so without the
cache every file tile was decoded 16 times (benchmarks/read_windows.py). The cache alone
does not stop two reader threads that miss the same tile at the same moment from both
decoding it (tifffile decodes in worker threads on machines with more than 2 cores); the
cache below makes concurrent reads of one tile share one lookup, so one decode.
"""

from __future__ import annotations

import asyncio

#: Decoded file tiles kept per open TIFF slide.
DECODED_TILE_CACHE_BYTES = 128 * 2**20


def with_decoded_tile_cache(store):
    """``store`` behind a decoded-tile cache, or ``store`` itself if zarr lacks one."""
    try:  # an experimental zarr store: without it (or if its API moved) reads stay correct
        from zarr.experimental.cache_store import CacheStore
        from zarr.storage import MemoryStore

        class SingleFlightCache(CacheStore):
            """Concurrent reads of one key share one lookup, so one decode: a read that
            arrives while the tile is being fetched or stored waits for it. All of a
            process's synchronous zarr I/O runs on zarr's one event loop, so the table of
            reads in flight needs no lock."""

            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                self._in_flight: dict = {}

            async def get(self, key, prototype, byte_range=None):
                in_flight, flight = self._in_flight, (key, byte_range)
                if flight not in in_flight:
                    lookup = asyncio.ensure_future(super().get(key, prototype, byte_range))
                    in_flight[flight] = lookup
                    lookup.add_done_callback(lambda _: in_flight.pop(flight, None))
                return await asyncio.shield(in_flight[flight])

        return SingleFlightCache(
            store, cache_store=MemoryStore(), max_size=DECODED_TILE_CACHE_BYTES
        )
    except Exception:
        return store
