"""Is torch slower inside a napari worker thread than on the main thread? Prints JSON.

micro-sam reported a large slowdown of PyTorch inside napari workers. This times the same
SR batches (x2 SRMFENet, 64 channels) on the main thread, in a plain Python thread and in a
napari ``thread_worker`` (a QThread), alternating to cancel out machine noise.

    xvfb-run -a python benchmarks/worker_overhead.py [--repeats 5] [--tile 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()

    from napari.qt.threading import thread_worker
    from qtpy.QtWidgets import QApplication

    from napari_shisrcnet.engine.inference import TileModel
    from napari_shisrcnet.model import SRMFENet

    app = QApplication.instance() or QApplication([])
    torch.manual_seed(0)
    model = TileModel(SRMFENet(scale=2), "cpu")
    tiles = np.random.default_rng(0).integers(
        0, 255, (args.batch, args.tile, args.tile, 3), np.uint8
    )
    model.super_resolve(tiles)  # warm-up

    def timed() -> float:
        start = time.perf_counter()
        model.super_resolve(tiles)
        return time.perf_counter() - start

    def in_thread() -> float:
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("s", timed()))
        thread.start()
        thread.join()
        return result["s"]

    def in_napari_worker() -> float:
        result = {}
        worker = thread_worker(timed)()
        worker.returned.connect(lambda seconds: result.setdefault("s", seconds))
        worker.start()
        while "s" not in result:
            app.processEvents()
            time.sleep(0.001)
        return result["s"]

    runs = {"main_thread": [], "python_thread": [], "napari_worker": []}
    for _ in range(args.repeats):
        runs["main_thread"].append(timed())
        runs["python_thread"].append(in_thread())
        runs["napari_worker"].append(in_napari_worker())
    medians = {k: statistics.median(v) for k, v in runs.items()}
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "batch": [args.batch, args.tile, args.tile],
                "median_seconds": medians,
                "napari_worker_vs_main": round(
                    medians["napari_worker"] / medians["main_thread"], 3
                ),
                "python_thread_vs_main": round(
                    medians["python_thread"] / medians["main_thread"], 3
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
