"""Scale-out on dask.distributed: many slides, and the tiles of one slide, over workers.

For each slide one worker runs :meth:`SlideJob.prepare` (creates the OME-Zarr, fixes
tiling and batching for the workers' device), every worker then runs
:meth:`SlideJob.compute` on its shard of the batches (worker k of n takes batches k,
k + n, ...; they write disjoint chunks and separate progress logs), and a last task runs
:meth:`SlideJob.finish` (pyramid, labels, tables). Because batches are the same as in a
single-process run, results are identical to it. Workers receive the job's
:class:`~napari_shisrcnet.settings.SlideJobSettings` and a
:class:`~napari_shisrcnet.api.ModelSpec`; each worker process loads the model once and
keeps it. Slides are submitted together, so workers that finish one slide's shards start
on the next slide.

    shisrcnet predict slides/ --out results --workers 4          # a local cluster
    shisrcnet predict slides/ --out results --scheduler tcp://host:8786
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from .api import ModelSpec, SlideResult, as_slide, result_zarr_path
from .engine.inference import TileModel
from .results.lock import ResultLock
from .results.paths import check_distinct_results
from .results.resume import read_record
from .settings import SlideJobSettings
from .slide_job import SlideJob, open_slide_job

_WORKER_MODELS: dict[ModelSpec, TileModel] = {}
_RUN_ID_KEY = "cluster_run_id"


def _model(spec: ModelSpec) -> TileModel:
    """This worker's copy of the model (loaded on first use, then reused)."""
    if spec not in _WORKER_MODELS:
        _WORKER_MODELS[spec] = spec.load()
    return _WORKER_MODELS[spec]


@contextlib.contextmanager
def _job(path, out_dir, spec: ModelSpec, settings, overwrite=False) -> Iterator[SlideJob]:
    with (
        as_slide(path) as slide,
        open_slide_job(slide, out_dir, _model(spec), settings, overwrite=overwrite) as job,
    ):
        yield job


def _prepare(path, out_dir, spec: ModelSpec, settings, overwrite: bool, run_id: str) -> None:
    """Prepare the result on a worker: tile and batch sizes left unset are recorded as the
    workers' device suits (the client may have no GPU); every later process reads them.

    ``run_id`` marks the result: if dask runs this task again (its worker died after
    shards started), ``overwrite`` must not delete what those shards wrote.
    """
    record = read_record(result_zarr_path(out_dir, path)) or {}
    overwrite = overwrite and record.get(_RUN_ID_KEY) != run_id
    with _job(path, out_dir, spec, settings, overwrite) as job:
        resume = job.prepare().store.resume
        assert resume is not None  # prepare() opened the result
        resume.set(_RUN_ID_KEY, run_id)


def _run_shard(path, out_dir, spec, settings, shard: tuple[int, int], _prepared) -> tuple:
    with _job(path, out_dir, spec, settings) as job:
        job.compute(shard)
    return shard


def _finish(path, out_dir, spec, settings, _shards_done) -> SlideResult:
    with _job(path, out_dir, spec, settings) as job:
        return job.finish()


def process_slides(
    paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: ModelSpec | str,
    client,
    settings: SlideJobSettings | None = None,
    *,
    overwrite: bool = False,
    **changes,
) -> list[SlideResult]:
    """Process ``paths`` on the cluster behind ``client``; return their results in order.

    Parameters
    ----------
    paths : slide paths
    out_dir : output folder, as seen by the workers
    model : ModelSpec or str
        A model name or checkpoint path (loaded with ``device="auto"``), or a full
        :class:`~napari_shisrcnet.api.ModelSpec` (device, scale, compile).
    client : dask.distributed.Client
    settings : SlideJobSettings, optional
        As for :func:`napari_shisrcnet.api.process_slide`; ``changes`` change it. Tile
        and batch sizes left unset are chosen on a worker, for its device, when the
        result is prepared; all workers then use them.
    overwrite : bool
        Replace results of a different run (only when preparing: never under a worker).
    """
    results = check_distinct_results(out_dir, paths)
    spec = model if isinstance(model, ModelSpec) else ModelSpec(str(model))
    settings = (settings or SlideJobSettings()).replace(**changes)
    n_workers = max(1, len(client.scheduler_info()["workers"]))
    run_id = uuid.uuid4().hex
    with contextlib.ExitStack() as locks:
        # The client holds each result's lock while the workers share it.
        for result in results:
            locks.enter_context(ResultLock(result.zarr))
        finished = []
        for path in map(Path, paths):
            common = (path, out_dir, spec, settings)
            prepared = client.submit(_prepare, *common, overwrite, run_id, pure=False)
            shards = [
                client.submit(_run_shard, *common, (k, n_workers), prepared, pure=False)
                for k in range(n_workers)
            ]
            finished.append(client.submit(_finish, *common, shards, pure=False))
        return client.gather(finished)


def connect(scheduler: str | None = None, workers: int | None = None):
    """A dask.distributed Client: to ``scheduler``, or to a new local cluster of ``workers``."""
    from dask.distributed import Client

    if scheduler:
        return Client(scheduler)
    # The client owns this local cluster and shuts it down when it closes.
    return Client(n_workers=workers or 2, threads_per_worker=1, processes=True)
