"""Scale-out on dask.distributed: many slides, and the tiles of one slide, over workers.

For each slide the client prepares the result (creates the OME-Zarr, fixes the
batching), every worker then computes its shard of the batches (worker k of n takes
batches k, k + n, ...; they write disjoint chunks and separate progress logs), and a
last task finishes the slide (pyramid, labels, tables). Because batches are the same
as in a single-process run, results are identical to it. Each worker process loads the
model once and keeps it. Slides are submitted together, so workers that finish one
slide's shards start on the next slide.

    shisrcnet predict slides/ --out results --workers 4          # a local cluster
    shisrcnet predict slides/ --out results --scheduler tcp://host:8786
"""

from __future__ import annotations

from pathlib import Path

from . import api

_WORKER_MODELS: dict[tuple, api.TileModel] = {}


def _model(spec, device, scale, compile=False, cuda_graphs=False) -> api.TileModel:
    """This worker's copy of the model (loaded on first use, then reused)."""
    key = (str(spec), device, scale, compile, cuda_graphs)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = api.load_model(
            spec, device, scale, compile=compile, cuda_graphs=cuda_graphs
        )
    return _WORKER_MODELS[key]


def _worker_defaults(model_key, options) -> dict:
    """Tile and batch sizes for a worker's device (the client may have no GPU)."""
    from .engine.classification import default_classification_batch_size
    from .engine.super_resolution import default_batch_size, default_sr_tile_px

    model = _model(*model_key)
    if not options.get("super_resolution", True):
        cls_px = options.get("classification_tile_px")
        cls_px = cls_px or api.default_classification_tile_px(model)
        return {"batch_size": default_classification_batch_size(model, cls_px)}
    tile_px = options.get("tile_px") or default_sr_tile_px(model)
    window_px = tile_px + 2 * options.get("halo_px", api.DEFAULT_HALO_PX)
    return {"tile_px": tile_px, "batch_size": default_batch_size(model, (window_px, window_px))}


def _run_shard(path, out_dir, model_key, options, shard):
    api.process_slide(path, out_dir, _model(*model_key), shard=shard, **options)
    return shard


def _finish(path, out_dir, model_key, options, _shards_done):
    return api.process_slide(path, out_dir, _model(*model_key), **options)


def process_slides(
    paths,
    out_dir,
    spec: str,
    client,
    device: str = "auto",
    scale: int | None = None,
    compile: bool = False,
    cuda_graphs: bool = False,
    **options,
):
    """Process ``paths`` on the cluster behind ``client``; return their SlideResults in order.

    ``options`` are :func:`napari_shisrcnet.api.process_slide` keywords; ``compile``
    and ``cuda_graphs`` apply to each worker's model (see :func:`napari_shisrcnet.api.load_model`).
    Tile and batch sizes left unset are chosen for a worker's device (all workers then
    use them: a cluster of unlike GPUs gets one worker's choice).
    """
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    overwrite = options.pop("overwrite", False)  # only when preparing: never under a worker
    local_model = api.load_model(spec, "cpu", scale)  # for signatures and batching only
    model_key = (str(spec), device, scale, compile, cuda_graphs)
    if not (options.get("tile_px") and options.get("batch_size")):
        # Every process must tile and batch alike, as the workers' device suits, not ours.
        chosen = client.submit(_worker_defaults, model_key, options, pure=False).result()
        options = {**options, **{k: options.get(k) or v for k, v in chosen.items()}}
    finished = []
    for path in map(Path, paths):
        api.process_slide(
            path, out_dir, local_model, prepare_only=True, overwrite=overwrite, **options
        )
        shards = [
            client.submit(_run_shard, path, out_dir, model_key, options, (k, n_workers), pure=False)
            for k in range(n_workers)
        ]
        finished.append(
            client.submit(_finish, path, out_dir, model_key, options, shards, pure=False)
        )
    return client.gather(finished)


def connect(scheduler: str | None = None, workers: int | None = None):
    """A dask.distributed Client: to ``scheduler``, or to a new local cluster of ``workers``."""
    from dask.distributed import Client

    if scheduler:
        return Client(scheduler)
    # The client owns this local cluster and shuts it down when it closes.
    return Client(n_workers=workers or 2, threads_per_worker=1, processes=True)
