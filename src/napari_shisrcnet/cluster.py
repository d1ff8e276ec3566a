"""Scale-out on dask.distributed: many slides, and the tiles of one slide, over workers.

For each slide a worker prepares the result (creates the OME-Zarr, fixes tiling and
batching for the workers' device), every worker then computes its shard of the batches
(worker k of n takes batches k, k + n, ...; they write disjoint chunks and separate
progress logs), and a last task finishes the slide (pyramid, labels, tables). Because
batches are the same as in a single-process run, results are identical to it. Each
worker process loads the model once and keeps it. Slides are submitted together, so
workers that finish one slide's shards start on the next slide.

    shisrcnet predict slides/ --out results --workers 4          # a local cluster
    shisrcnet predict slides/ --out results --scheduler tcp://host:8786
"""

from __future__ import annotations

import uuid
from pathlib import Path

from . import api
from .io.ome_zarr import ResultStore

_WORKER_MODELS: dict[tuple, api.TileModel] = {}
_RUN_ID_KEY = "cluster_run_id"


def _model(spec, device, scale, compile=False, cuda_graphs=False) -> api.TileModel:
    """This worker's copy of the model (loaded on first use, then reused)."""
    key = (str(spec), device, scale, compile, cuda_graphs)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = api.load_model(
            spec, device, scale, compile=compile, cuda_graphs=cuda_graphs
        )
    return _WORKER_MODELS[key]


def _prepare(path, out_dir, model_key, options, overwrite, run_id):
    """Create the result on a worker: tile and batch sizes left unset are recorded as the
    workers' device suits (the client may have no GPU); every later process reads them.

    ``run_id`` marks the result: if dask runs this task again (its worker died after
    shards started), ``overwrite`` must not delete what those shards wrote.
    """
    result_path = api.result_zarr_path(out_dir, path)
    recorded = ResultStore.recorded_state(result_path) or {}
    overwrite = overwrite and recorded.get(_RUN_ID_KEY) != run_id
    api.process_slide(
        path, out_dir, _model(*model_key), prepare_only=True, overwrite=overwrite, **options
    )
    ResultStore.record(result_path, _RUN_ID_KEY, run_id)


def _run_shard(path, out_dir, model_key, options, shard, _prepared):
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
    Tile and batch sizes left unset are chosen on a worker, for its device, when the
    result is prepared; all workers then use them (unlike GPUs get one worker's choice).
    """
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    overwrite = options.pop("overwrite", False)  # only when preparing: never under a worker
    model_key = (str(spec), device, scale, compile, cuda_graphs)
    run_id = uuid.uuid4().hex
    finished = []
    for path in map(Path, paths):
        prepared = client.submit(
            _prepare, path, out_dir, model_key, options, overwrite, run_id, pure=False
        )
        shards = [
            client.submit(
                _run_shard, path, out_dir, model_key, options, (k, n_workers), prepared, pure=False
            )
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
