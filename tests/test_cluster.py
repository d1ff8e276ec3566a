"""dask.distributed scale-out: a 2-process local cluster matches the single-process run."""

import numpy as np
import pytest
import zarr

from napari_shisrcnet import api

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    from napari_shisrcnet.cluster import connect

    with connect(workers=2) as client:
        yield client


def test_two_workers_give_the_single_process_result(
    tmp_path, pyramid_tiff, tiny_checkpoint, client
):
    from napari_shisrcnet.cluster import process_slides

    settings = api.SlideJobSettings(
        region=api.Region(0, 0, 512, 640),
        sr_tile_px=64,
        halo_px=8,
        classification_tile_px=64,
        batch_size=4,
    )
    single = api.process_slide(
        pyramid_tiff, tmp_path / "single", tiny_checkpoint, settings, device="cpu"
    )
    model = api.ModelSpec(str(tiny_checkpoint), "cpu")
    [spread] = process_slides([pyramid_tiff], tmp_path / "cluster", model, client, settings)
    a, b = (zarr.open_group(r.zarr_path, mode="r") for r in (single, spread))
    assert b.attrs["napari_shisrcnet"]["complete"] is True
    for path in ("0", "1", "tile_probabilities", "labels/tile_classes/0"):
        np.testing.assert_array_equal(a[path][:], b[path][:])
    assert single.csv_path.read_text() == spread.csv_path.read_text()
    logs = sorted(p.name for p in (spread.zarr_path / ".shisrcnet").glob("sr*.done"))
    assert logs == ["sr-shard0.done", "sr-shard1.done"]  # both workers computed SR batches


def test_predict_on_a_local_cluster_from_the_command_line(tmp_path, pyramid_tiff, capsys):
    from napari_shisrcnet.cli import main

    code = main(
        [
            "predict",
            str(pyramid_tiff),
            "--out",
            str(tmp_path),
            "--model",
            "bicubic",
            "--no-classify",
            "--region",
            "0,0,300,200",
            "--workers",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("synthetic.tif: SR x2 600x400 px")
    assert zarr.open_group(tmp_path / "synthetic.ome.zarr", mode="r").attrs["napari_shisrcnet"][
        "complete"
    ]


def test_tiling_and_batching_left_unset_match_a_single_run(
    tmp_path, pyramid_tiff, tiny_checkpoint, client
):
    # Chosen on a worker when the result is prepared (the client may have no GPU): the
    # same tile and batch sizes as a single run on the workers' device records.
    from napari_shisrcnet.cluster import process_slides

    region = api.Region(0, 0, 300, 520)
    single = api.process_slide(
        pyramid_tiff, tmp_path / "single", tiny_checkpoint, region=region, device="cpu"
    )
    model = api.ModelSpec(str(tiny_checkpoint), "cpu")
    [spread] = process_slides([pyramid_tiff], tmp_path / "cluster", model, client, region=region)
    a, b = (
        zarr.open_group(r.zarr_path, mode="r").attrs["napari_shisrcnet"] for r in (single, spread)
    )
    assert a["signature"]["sr_tile_px"] == b["signature"]["sr_tile_px"] == 256
    assert a["sr_batch_size"] == b["sr_batch_size"] == 1
    assert a["classification_batch_size"] == b["classification_batch_size"] == 8


def test_tiling_left_unset_is_chosen_on_a_worker_not_the_client(
    tmp_path, pyramid_tiff, tiny_checkpoint, client
):
    # Workers whose device calls for 128 px tiles (as a GPU's does for 512): the result
    # records theirs, whatever the client's device would pick.
    import napari_shisrcnet.settings as worker_job

    def set_worker_tile(tile_px):
        original = getattr(worker_job, "_original_default_sr_tile_px", None)
        if original is None:
            original = worker_job._original_default_sr_tile_px = worker_job.default_sr_tile_px
        worker_job.default_sr_tile_px = (lambda model: tile_px) if tile_px else original

    from napari_shisrcnet.cluster import process_slides

    client.run(set_worker_tile, 128)
    try:
        model = api.ModelSpec("bicubic", "cpu")
        [spread] = process_slides([pyramid_tiff], tmp_path, model, client, classification=False)
    finally:
        client.run(set_worker_tile, None)
    state = zarr.open_group(spread.zarr_path, mode="r").attrs["napari_shisrcnet"]
    assert state["signature"]["sr_tile_px"] == 128 and state["complete"]


def test_a_foreign_output_folder_is_refused_with_its_own_error(tmp_path, pyramid_tiff, client):
    # Raised on the worker that prepares the result, it must reach the client (and the CLI's
    # one-line error) as itself, and nothing in the folder is touched.
    from napari_shisrcnet.cluster import process_slides
    from napari_shisrcnet.results.store import ResultError

    foreign = tmp_path / "synthetic.ome.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ResultError, match="not a napari-shisrcnet result"):
        process_slides(
            [pyramid_tiff],
            tmp_path,
            api.ModelSpec("bicubic", "cpu"),
            client,
            classification=False,
            overwrite=True,
        )
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_retried_prepare_never_overwrites_its_own_run(tmp_path, pyramid_tiff):
    # dask reruns a task whose worker died: the shards' work must survive the second prepare.
    from napari_shisrcnet.cluster import _prepare

    model = api.ModelSpec("bicubic", "cpu", 2)
    settings = api.SlideJobSettings(classification=False, region=api.Region(0, 0, 200, 300))
    _prepare(pyramid_tiff, tmp_path, model, settings, True, "run-1")
    shard_log = tmp_path / "synthetic.ome.zarr" / ".shisrcnet" / "sr-shard0.done"
    shard_log.write_text("0\n")
    _prepare(pyramid_tiff, tmp_path, model, settings, True, "run-1")  # the retry
    assert shard_log.read_text() == "0\n"
    _prepare(pyramid_tiff, tmp_path, model, settings, True, "run-2")  # a new run overwrites
    assert not shard_log.exists()
