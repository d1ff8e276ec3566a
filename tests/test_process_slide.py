"""process_slide end to end: OME-Zarr output, alignment, resume, bad input."""

import json

import numpy as np
import pytest
import zarr

from conftest import CMU_SVS, needs_cmu_svs
from napari_shisrcnet import api, slide_job
from napari_shisrcnet.engine.runner import CancelToken, RunCancelled
from napari_shisrcnet.errors import OptionError
from napari_shisrcnet.geometry import halve
from napari_shisrcnet.io.slides import SlideError
from napari_shisrcnet.results.store import ResultError, write_rgb_tile


def _world(transforms, index_yx):
    """NGFF 0.4: physical position (y, x) of a pixel index (scale, then translation)."""
    scale = next(t["scale"] for t in transforms if t["type"] == "scale")[1:]
    translation = next(t["translation"] for t in transforms if t["type"] == "translation")[1:]
    return np.asarray(index_yx) * scale + translation


def test_sr_only_output_is_valid_ngff_with_physical_scale(tmp_path, pyramid_tiff):
    region = api.Region(100, 200, 300, 260)
    result = api.process_slide(
        pyramid_tiff,
        tmp_path,
        "bicubic",
        region=region,
        classification=False,
        sr_tile_px=64,
        halo_px=8,
    )
    group = zarr.open_group(result.zarr_path, mode="r")
    multiscale = group.attrs["multiscales"][0]
    assert multiscale["version"] == "0.4"
    assert [a["name"] for a in multiscale["axes"]] == ["c", "y", "x"]
    assert multiscale["axes"][1]["unit"] == "micrometer"
    level0 = group[multiscale["datasets"][0]["path"]]
    assert level0.shape == (3, 600, 520)  # scale x region
    transforms = multiscale["datasets"][0]["coordinateTransformations"]
    assert transforms[0]["scale"] == [1.0, 0.25, 0.25]  # 0.5 µm/px source, x2
    assert group.attrs["napari_shisrcnet"]["complete"] is True
    # Same pixels as the in-memory API (one engine behind both).
    in_memory = api.super_resolve(pyramid_tiff, "bicubic", region=region, sr_tile_px=64, halo_px=8)
    np.testing.assert_array_equal(level0[:].transpose(1, 2, 0), in_memory)
    assert len(multiscale["datasets"]) == 2 and group["1"].chunks == (3, 128, 128)
    np.testing.assert_array_equal(group["1"][:], halve(level0[:]))
    # The first SR pixel's centre lies a quarter source pixel inside the region corner.
    np.testing.assert_allclose(_world(transforms, (0, 0)), (np.array([100, 200]) - 0.25) * 0.5)


def test_ome_zarr_py_reads_the_image_and_labels(tmp_path, pyramid_tiff, tiny_checkpoint):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    result = api.process_slide(
        pyramid_tiff,
        tmp_path,
        tiny_checkpoint,
        region=api.Region(0, 0, 512, 640),
        classification_tile_px=64,
    )
    nodes = list(Reader(parse_url(str(result.zarr_path)))())
    image, labels = nodes[0], next(n for n in nodes if "tile_classes" in str(n.zarr))
    assert image.data[0].shape == (3, 1024, 1280)
    assert len(image.data) == 3  # pyramid 1024 -> 512 -> 256
    assert labels.data[0].shape == (1, 8, 10)
    properties = labels.zarr.root_attrs["image-label"]["properties"]
    assert [p["class"] for p in properties] == ["benign", "malignant"]
    assert zarr.open_group(result.zarr_path / "labels").attrs["labels"] == ["tile_classes"]


def test_labels_align_with_the_image_in_physical_space(tmp_path, pyramid_tiff, tiny_checkpoint):
    region = api.Region(64, 128, 320, 384)
    result = api.process_slide(
        pyramid_tiff, tmp_path, tiny_checkpoint, region=region, classification_tile_px=64
    )
    group = zarr.open_group(result.zarr_path, mode="r")
    image_t = group.attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    labels_t = group["labels/tile_classes"].attrs["multiscales"][0]["datasets"][0][
        "coordinateTransformations"
    ]
    # Tile (row 2, column 3) covers source px [64+128, 64+192) x [128+192, 128+256); its
    # centre is SR pixel (2*64 + 64 + ..., ...) minus half an SR pixel.
    tile_centre = _world(labels_t, (2, 3))
    sr_centre = (
        _world(image_t, (2 * 64 * 2 + 63, 3 * 64 * 2 + 63))
        + _world(image_t, (2 * 64 * 2 + 64, 3 * 64 * 2 + 64))
    ) / 2
    np.testing.assert_allclose(tile_centre, sr_centre)
    np.testing.assert_allclose(tile_centre, (np.array([64 + 160, 128 + 224]) - 0.5) * 0.5)


def test_classification_table_and_geojson(tmp_path, pyramid_tiff, tiny_checkpoint):
    result = api.process_slide(
        pyramid_tiff,
        tmp_path,
        tiny_checkpoint,
        super_resolution=False,
        classification_tile_px=128,
        geojson=True,
    )
    summary = result.summary
    assert summary["tiles"] == 10 * 13
    assert 0 < summary["tissue_tiles"] < summary["tiles"]  # glass is skipped
    rows = result.csv_path.read_text().splitlines()
    assert rows[0].startswith("row,column,x_px,y_px,width_px,height_px,x_um,y_um")
    assert len(rows) - 1 == summary["tissue_tiles"]
    features = json.loads(result.geojson_path.read_text())["features"]
    assert len(features) == summary["tissue_tiles"]
    assert features[0]["properties"]["classification"]["name"] in {"benign", "malignant"}
    group = zarr.open_group(result.zarr_path, mode="r")
    probabilities = group["tile_probabilities"][:]
    tissue = ~np.isnan(probabilities[..., 0])
    np.testing.assert_allclose(probabilities[tissue].sum(-1), 1, rtol=1e-5)
    assert (group["labels/tile_classes/0"][0] > 0).sum() == summary["tissue_tiles"]


def _run(out, model, cancel=None, progress=None):
    return api.process_slide(
        out.parent / "slide.tif",
        out,
        model,
        region=api.Region(0, 0, 512, 768),
        sr_tile_px=64,
        halo_px=8,
        classification_tile_px=64,
        batch_size=4,
        cancel=cancel,
        progress=progress,
    )


def test_cancel_then_resume_equals_an_uninterrupted_run(tmp_path, pyramid_tiff, tiny_checkpoint):
    (tmp_path / "slide.tif").symlink_to(pyramid_tiff)
    clean = _run(tmp_path / "clean", tiny_checkpoint)
    token = CancelToken()

    def cancel_midway(event):
        if event.stage == "SR tiles" and event.done >= 40:
            token.cancel()

    with pytest.raises(RunCancelled):
        _run(tmp_path / "resumed", tiny_checkpoint, cancel=token, progress=cancel_midway)
    partial = zarr.open_group(tmp_path / "resumed" / "slide.ome.zarr", mode="r")
    assert "multiscales" not in partial.attrs  # nothing looks complete
    assert partial.attrs["napari_shisrcnet"]["complete"] is False
    computed = []
    resumed = _run(tmp_path / "resumed", tiny_checkpoint, progress=lambda e: computed.append(e))
    sr_events = [e for e in computed if e.stage == "SR tiles"]
    assert sr_events[0].done > 4  # finished batches were not recomputed
    a, b = (zarr.open_group(r.zarr_path, mode="r") for r in (clean, resumed))
    levels = [d["path"] for d in a.attrs["multiscales"][0]["datasets"]]
    assert len(levels) == 3
    for path in (*levels, "tile_probabilities", "labels/tile_classes/0"):
        np.testing.assert_array_equal(a[path][:], b[path][:])
    assert clean.csv_path.read_text() == resumed.csv_path.read_text()
    again = _run(tmp_path / "resumed", tiny_checkpoint)
    assert again.resumed_complete and again.summary == resumed.summary


def test_a_result_resumes_with_its_own_tile_size_when_none_is_given(tmp_path, pyramid_tiff):
    # E.g. started on a GPU (512 px tiles), finished on a CPU (default 256 px).
    options = dict(region=api.Region(0, 0, 200, 300), classification=False)
    first = api.process_slide(pyramid_tiff, tmp_path, "bicubic", sr_tile_px=96, **options)
    again = api.process_slide(pyramid_tiff, tmp_path, "bicubic", **options)
    assert again.resumed_complete and again.summary == first.summary
    fresh = api.process_slide(pyramid_tiff, tmp_path, "bicubic", overwrite=True, **options)
    signature = zarr.open_group(fresh.zarr_path, mode="r").attrs["napari_shisrcnet"]["signature"]
    assert not fresh.resumed_complete and signature["sr_tile_px"] == 256  # the CPU's default


def test_sr_tiles_are_written_without_zarrs_empty_chunk_check(tmp_path, pyramid_tiff, monkeypatch):
    # zarr reopens arrays with that check on (1.5-2.3x slower writes); level 0 must not have it.
    levels = []

    def spy(level, y, x, pixels):
        levels.append(level.config.write_empty_chunks)
        write_rgb_tile(level, y, x, pixels)

    monkeypatch.setattr(slide_job, "write_rgb_tile", spy)
    region = api.Region(0, 0, 200, 300)
    api.process_slide(pyramid_tiff, tmp_path, "bicubic", region=region, classification=False)
    assert levels and all(levels)


def test_missing_input_writes_nothing(tmp_path):
    with pytest.raises(SlideError, match="file not found"):
        api.process_slide(tmp_path / "nope.svs", tmp_path / "out", "bicubic", classification=False)
    assert not (tmp_path / "out").exists()


def test_model_without_classifier_writes_nothing(tmp_path, pyramid_tiff):
    with pytest.raises(ValueError, match="has no classifier"):
        api.process_slide(pyramid_tiff, tmp_path / "out", "bicubic")
    assert not (tmp_path / "out").exists()


def test_level_out_of_range_writes_nothing(tmp_path, pyramid_tiff):
    with pytest.raises(OptionError, match="level 5 requested; it has 2 level"):
        api.process_slide(pyramid_tiff, tmp_path / "out", "bicubic", level=5, classification=False)
    assert not (tmp_path / "out").exists()


def test_foreign_or_different_results_are_never_overwritten(tmp_path, pyramid_tiff):
    foreign = tmp_path / "synthetic.ome.zarr"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(ResultError, match="not a napari-shisrcnet result"):
        api.process_slide(pyramid_tiff, tmp_path, "bicubic", classification=False, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "keep me"

    out = tmp_path / "runs"
    region = api.Region(0, 0, 128, 128)
    first = api.process_slide(pyramid_tiff, out, "bicubic", region=region, classification=False)
    before = zarr.open_group(first.zarr_path, mode="r")["0"][:]
    with pytest.raises(ResultError, match="result of a different run"):
        api.process_slide(
            pyramid_tiff, out, "bicubic", region=region, classification=False, sr_tile_px=64
        )
    np.testing.assert_array_equal(zarr.open_group(first.zarr_path, mode="r")["0"][:], before)
    replaced = api.process_slide(
        pyramid_tiff,
        out,
        "bicubic",
        region=region,
        classification=False,
        sr_tile_px=64,
        overwrite=True,
    )
    assert replaced.summary["output_shape_yx"] == [256, 256]


@needs_cmu_svs
def test_cmu_svs_end_to_end(tmp_path, tiny_checkpoint):
    result = api.process_slide(
        CMU_SVS,
        tmp_path,
        tiny_checkpoint,
        region=api.Region(1200, 600, 384, 384),
        classification_tile_px=96,
        geojson=True,
    )
    summary = result.summary
    assert summary["output_shape_yx"] == [768, 768] and summary["mpp"] == pytest.approx(0.499)
    assert summary["tissue_tiles"] > 0
    with api.open_slide(result.zarr_path) as written:  # our own reader opens our output
        assert written.levels[0].shape == (768, 768, 3)
        assert written.metadata.mpp == pytest.approx(0.499 / 2)
