"""SlideJobSettings and SlideJob's phases: checked early, resolved per slide, phases compose."""

import dataclasses

import numpy as np
import pytest
import zarr

from napari_shisrcnet import api
from napari_shisrcnet.errors import OptionError
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.results.paths import ResultPaths
from napari_shisrcnet.results.store import ResultStore
from napari_shisrcnet.settings import SlideJobSettings, read_plan, resolve
from napari_shisrcnet.slide_job import SlideJob


@pytest.mark.parametrize(
    ("changes", "option", "words"),
    [
        ({"halo_px": -5}, "halo_px", "the SR halo must be an integer >= 0, got -5"),
        ({"sr_tile_px": 0}, "sr_tile_px", "the SR tile size must be an integer >= 1"),
        ({"sr_tile_px": 100_000}, "sr_tile_px", "the SR tile size must be at most 8192 px"),
        ({"classification_tile_px": 2.5}, "classification_tile_px", "must be an integer"),
        ({"batch_size": 0}, "batch_size", "the batch size must be an integer >= 1"),
        ({"level": -1}, "level", "the pyramid level must be an integer >= 0"),
        ({"target_mpp": 0.0}, "target_mpp", "the target µm/px must be > 0"),
        ({"min_tissue_fraction": 1.5}, "min_tissue_fraction", "must be in [0, 1]"),
        ({"region": api.Region(0, 0, 0, 10)}, "region", "at least 1x1 px"),
        (
            {"super_resolution": False, "classification": False},
            "super_resolution",
            "nothing to do",
        ),
    ],
)
def test_bad_settings_are_refused_in_words_naming_the_setting(changes, option, words):
    with pytest.raises(OptionError, match=words.replace("[", r"\[").replace("]", r"\]")) as error:
        SlideJobSettings(**changes)
    assert option in error.value.options
    assert "--" not in str(error.value)  # words for every caller, no CLI flags


def test_bad_settings_write_nothing(tmp_path, pyramid_tiff):
    with pytest.raises(OptionError, match="SR halo"):
        api.process_slide(pyramid_tiff, tmp_path / "out", "bicubic", halo_px=-5)
    assert not (tmp_path / "out").exists()


def test_unknown_settings_are_a_type_error():
    with pytest.raises(TypeError, match="unknown slide job settings: tile_size"):
        SlideJobSettings().replace(tile_size=3)


def test_settings_are_frozen_and_their_signature_is_what_decides_the_pixels():
    settings = SlideJobSettings(region=api.Region(1, 2, 3, 4), sr_tile_px=64, geojson=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.level = 2
    signature = settings.signature()
    assert signature["region_yxhw"] == [1, 2, 3, 4] and signature["sr_tile_px"] == 64
    # Optional copies and batching do not change a result's pixels.
    assert settings.replace(geojson=False, ome_tiff=True, batch_size=3).signature() == signature
    no_sr = settings.replace(super_resolution=False).signature()
    assert no_sr["sr_tile_px"] is None and no_sr["halo_px"] is None


def test_resolve_fills_level_region_and_tile_sizes(pyramid_tiff):
    model = api.load_model("bicubic", "cpu")
    with open_slide(pyramid_tiff) as slide:  # 1200 x 1600 px at 0.5 µm/px, and a /2 level
        plain = resolve(SlideJobSettings(classification=False), slide, model, {})
        assert plain.region == api.Region(0, 0, 1200, 1600) and plain.sr_tile_px == 256
        recorded = {"signature": {"sr_tile_px": 512}}  # e.g. a result started on a GPU
        assert resolve(plain.replace(sr_tile_px=None), slide, model, recorded).sr_tile_px == 512
        clipped = plain.replace(region=api.Region(1100, 1500, 500, 500))
        assert resolve(clipped, slide, model, {}).region == api.Region(1100, 1500, 100, 100)
        # The coarsest level not coarser than the target, resampled to it.
        assert read_plan(plain.replace(target_mpp=0.9), slide.metadata, model) == (0, 1.8, 0.9)
        assert read_plan(plain.replace(target_mpp=1.5), slide.metadata, model) == (1, 1.5, 1.5)
        by_mpp = resolve(plain.replace(target_mpp=1.0, region=None), slide, model, {})
        assert by_mpp.level == 1 and by_mpp.region == api.Region(0, 0, 600, 800)
        resampled = resolve(plain.replace(target_mpp=2.0, region=None), slide, model, {})
        assert resampled.level == 1 and resampled.region == api.Region(0, 0, 300, 400)
        with pytest.raises(OptionError, match="outside") as error:
            resolve(plain.replace(region=api.Region(5000, 0, 10, 10)), slide, model, {})
        assert error.value.options == ("region",)


def test_target_mpp_needs_a_known_pixel_size():
    slide = api.as_slide(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(OptionError, match="pixel size is unknown") as error:
        resolve(SlideJobSettings(target_mpp=0.5), slide, api.load_model("bicubic", "cpu"), {})
    assert set(error.value.options) == {"target_mpp", "slide_mpp"}
    given = SlideJobSettings(target_mpp=1.0, slide_mpp=0.5, classification=False)
    model = api.load_model("bicubic", "cpu")
    assert resolve(given, slide, model, {}).region == api.Region(0, 0, 32, 32)


def test_phases_run_separately_equal_process_slide(tmp_path, pyramid_tiff, tiny_checkpoint):
    # What the cluster does, in one process: prepare, two shards, then finish.
    settings = SlideJobSettings(
        region=api.Region(0, 0, 256, 384), sr_tile_px=64, halo_px=8, classification_tile_px=64
    )
    model = api.load_model(tiny_checkpoint, "cpu")
    whole = api.process_slide(pyramid_tiff, tmp_path / "whole", model, settings)
    path = ResultPaths.for_slide(tmp_path / "phases", pyramid_tiff).zarr
    with open_slide(pyramid_tiff) as slide:
        SlideJob(slide, model, ResultStore(path), settings).prepare()
        for shard in ((0, 2), (1, 2)):
            SlideJob(slide, model, ResultStore(path), settings).compute(shard)
        finished = SlideJob(slide, model, ResultStore(path), settings).finish()
    a, b = (zarr.open_group(r.zarr_path, mode="r") for r in (whole, finished))
    for array in ("0", "tile_probabilities", "labels/tile_classes/0"):
        np.testing.assert_array_equal(a[array][:], b[array][:])
    assert whole.csv_path.read_text() == finished.csv_path.read_text()
    assert {k: v for k, v in finished.summary.items() if k != "seconds"} == {
        k: v for k, v in whole.summary.items() if k != "seconds"
    }


def test_geojson_asked_of_a_complete_result_is_written(tmp_path, pyramid_tiff, tiny_checkpoint):
    settings = SlideJobSettings(super_resolution=False, classification_tile_px=128)
    first = api.process_slide(pyramid_tiff, tmp_path, tiny_checkpoint, settings)
    assert first.geojson_path is None
    again = api.process_slide(pyramid_tiff, tmp_path, tiny_checkpoint, settings, geojson=True)
    assert again.resumed_complete and again.geojson_path.exists()
    fresh = api.process_slide(
        pyramid_tiff, tmp_path / "fresh", tiny_checkpoint, settings, geojson=True
    )
    assert again.geojson_path.read_text() == fresh.geojson_path.read_text()
