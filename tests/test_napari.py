"""The napari layer under Xvfb: reader, writer, samples, widgets (synchronous and threaded)."""

from pathlib import Path

import numpy as np
import pytest

from conftest import CMU_SVS, needs_cmu_svs
from napari_shisrcnet.model import load_checkpoint
from napari_shisrcnet.napari.reader import get_reader
from napari_shisrcnet.napari.widgets.choices import CHECKPOINT_CHOICE
from napari_shisrcnet.napari.widgets.classify import ClassifyTilesWidget
from napari_shisrcnet.napari.widgets.super_resolve import SuperResolveWidget

pytestmark = pytest.mark.gui


@needs_cmu_svs
def test_reader_opens_the_cmu_svs_lazily_in_micrometres():
    data, kwargs, kind = get_reader(str(CMU_SVS))(str(CMU_SVS))[0]
    assert kind == "image" and kwargs["rgb"] and kwargs["multiscale"]
    assert data[0].shape == (2967, 2220, 3) and len(data) == 2  # + one lazy /2 level
    assert kwargs["scale"] == pytest.approx((0.499, 0.499))
    assert kwargs["units"] == ("micrometer", "micrometer")
    assert kwargs["contrast_limits"] == (0, 255)


def test_reader_on_a_pyramidal_tiff_and_unknown_files(pyramid_tiff):
    data, kwargs, _ = get_reader(str(pyramid_tiff))(str(pyramid_tiff))[0]
    assert [level.shape for level in data] == [(1200, 1600, 3), (600, 800, 3)]
    assert kwargs["scale"] == pytest.approx((0.5, 0.5))
    assert get_reader("notes.txt") is None


def test_viewer_opens_slides_through_the_plugin(make_napari_viewer, pyramid_tiff):
    viewer = make_napari_viewer()
    layers = viewer.open(str(pyramid_tiff), plugin="napari-shisrcnet")
    assert layers[0].multiscale and tuple(layers[0].scale) == pytest.approx((0.5, 0.5))


def _open_ihc(viewer):
    return viewer.open_sample("napari-shisrcnet", "ihc")[0]


def test_super_resolve_widget_places_sr_exactly_over_its_source(make_napari_viewer):
    viewer = make_napari_viewer()
    source = _open_ihc(viewer)
    widget = SuperResolveWidget(viewer)
    widget.synchronous = True
    widget.image.value = source
    widget.model.value, widget.scale.value = "bicubic", 2
    widget.extent.value, widget.level.value = "whole level", 1
    widget.device.value = "cpu"
    widget.run()
    sr = viewer.layers["immunohistochemistry SR x2"]
    assert sr.data.shape == (512, 512, 3) and sr.rgb
    # Level 1 pixel j covers level-0 pixels 2j, 2j+1; SR x2 restores level-0 pixels exactly.
    assert tuple(sr.scale) == pytest.approx((1.0, 1.0))
    assert tuple(sr.translate) == pytest.approx((0.0, 0.0))
    assert widget.status.value == "done" and widget.progress_bar.value == 100
    assert "immunohistochemistry bicubic x2" not in viewer.layers  # the model IS bicubic


def test_field_of_view_extent(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    source = _open_ihc(viewer)
    viewer.camera.center, viewer.camera.zoom = (100, 150), 4.0
    widget = SuperResolveWidget(viewer)
    widget.synchronous = True
    widget.image.value, widget.model.value, widget.device.value = source, "bicubic", "cpu"
    region = widget.region(widget.source())
    height, width = viewer.canvas.size
    assert abs(region.height - height / 4) <= 2 and abs(region.width - width / 4) <= 2
    assert abs(region.y + region.height / 2 - 100) <= 2


@pytest.fixture
def classify_widget(make_napari_viewer, pyramid_tiff, tiny_checkpoint):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(pyramid_tiff), plugin="napari-shisrcnet")
    widget = ClassifyTilesWidget(viewer)
    widget.image.value = viewer.layers[0]
    widget.model.value, widget.checkpoint.value = CHECKPOINT_CHOICE, tiny_checkpoint
    widget.extent.value, widget.level.value, widget.device.value = "whole level", 1, "cpu"
    return viewer, widget


def test_classify_widget_adds_an_aligned_coloured_overlay(classify_widget, tmp_path):
    viewer, widget = classify_widget
    widget.synchronous = True
    widget.run()
    labels = viewer.layers["synthetic.tif classes"]
    # tiny checkpoint: 128 px HR crops -> 64 LR px tiles on level 1 (600 x 800 px, 1 µm/px).
    tiles = np.asarray(labels.data[-1])
    assert tiles.shape == (10, 13) and labels.data[0].shape == (600, 800)
    assert tuple(labels.scale) == pytest.approx((1.0, 1.0))  # level-1 pixels: clipped edges
    level1 = viewer.layers[0].data[1]
    assert labels.data[0].shape == level1.shape[:2]  # the overlay ends where the slide does
    np.testing.assert_array_equal(np.asarray(labels.data[0][::64, ::64]), tiles)
    features = labels.features
    tissue = int((tiles > 0).sum())
    assert 0 < tissue < tiles.size and len(features) == tissue + 1
    assert set(features["class"][1:]) <= {"benign", "malignant"}
    # Each tissue tile: its own label, coloured by its class, with its probabilities.
    row, column = np.argwhere(tiles > 0)[0]
    tile = tiles[row, column]
    tile_class = features["class"][tile]
    p = [features["p_benign"][tile], features["p_malignant"][tile]]
    assert p[0] + p[1] == pytest.approx(1, abs=1e-3)
    assert tile_class == ("benign", "malignant")[int(np.argmax(p))]
    colour = {"benign": [0, 158, 115, 255], "malignant": [213, 94, 0, 255]}[tile_class]
    assert labels.colormap.map(tile) == pytest.approx(np.array(colour) / 255, abs=1e-3)
    assert labels.colormap.map(0)[-1] == 0  # background is transparent
    heatmap = viewer.layers["synthetic.tif p(malignant)"]
    assert heatmap.data[-1].shape == (10, 13) and heatmap.data[0].shape == (600, 800)
    assert tuple(heatmap.translate) == tuple(labels.translate) and heatmap.colorbar.visible
    assert "tiles" in widget.summary.value and "mm²" in widget.summary.value
    assert "#d55e00" in widget.summary.value  # the legend's malignant swatch
    widget.opacity.value = 0.8
    assert labels.opacity == pytest.approx(0.8)
    csv = widget._export("csv", str(tmp_path / "tiles.csv"))
    assert len(Path(csv).read_text().splitlines()) == tissue + 1
    screenshot = viewer.screenshot(canvas_only=True, flash=False)
    assert np.ptp(screenshot[..., :3]) > 50  # something was drawn


def test_threaded_run_and_cancel_leave_no_half_made_layer(classify_widget, qtbot):
    viewer, widget = classify_widget
    n_layers = len(viewer.layers)
    widget.tile_px.value = 16  # many small tiles: several batches to cancel between
    widget._on_progress = _cancel_on_first(widget, widget._on_progress)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert widget.status.value.startswith("cancelled")
    assert len(viewer.layers) == n_layers
    widget._on_progress = type(widget)._on_progress.__get__(widget)
    widget.tile_px.value = 0
    widget.run()
    qtbot.waitUntil(lambda: widget.status.value == "done", timeout=60_000)
    assert len(viewer.layers) == n_layers + 2


def _cancel_on_first(widget, report):
    def wrapped(event):
        report(event)
        widget.cancel()

    return wrapped


def test_bad_choices_notify_instead_of_raising(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = ClassifyTilesWidget(viewer)
    widget.synchronous = True
    widget.run()  # no image at all
    assert widget.status.value.startswith("error: open an RGB image")
    _open_ihc(viewer)  # the newly opened image is selected for the user
    widget.model.value = "bicubic"
    widget.run()
    assert "no classifier" in widget.status.value and len(viewer.layers) == 1


def test_dock_widgets_can_be_added_by_name(make_napari_viewer):
    viewer = make_napari_viewer()
    _open_ihc(viewer)
    for name, kind in (
        ("Super-resolve", SuperResolveWidget),
        ("Classify tiles", ClassifyTilesWidget),
    ):
        _, widget = viewer.window.add_plugin_dock_widget("napari-shisrcnet", name)
        assert isinstance(widget, kind)
        assert widget.image.value.name == "immunohistochemistry"  # sees this viewer's layers


def test_writer_round_trip(tmp_path):
    from napari_shisrcnet.io.slides import open_slide
    from napari_shisrcnet.napari.writer import write_image_layer, write_labels_layer

    image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    [path] = write_image_layer(
        str(tmp_path / "sr"),
        image,
        {"rgb": True, "scale": (0.25, 0.25), "units": ("micrometer", "micrometer")},
    )
    with open_slide(path) as slide:
        np.testing.assert_array_equal(slide.levels[0].compute(), image)
        assert slide.metadata.mpp == pytest.approx(0.25)
    [labels_path] = write_labels_layer(
        str(tmp_path / "c"), np.eye(5, dtype=np.uint8), {"name": "classes"}
    )
    import zarr

    group = zarr.open_group(labels_path, mode="r")
    assert group["labels"].attrs["labels"] == ["classes"]


def _train_widget(viewer, breakhis_tree, out):
    from napari_shisrcnet.napari.widgets.train import TrainWidget

    widget = TrainWidget(viewer)
    widget.data_root.value, widget.out_dir.value = breakhis_tree, out
    widget.epochs.value, widget.batch_size.value, widget.hr_crop_px.value = 1, 4, 32
    widget.sr_channels.value, widget.classifier_width.value = 8, 0.125
    widget.device.value = "cpu"
    return widget


def test_train_widget_trains_plots_and_hands_over_the_model(
    make_napari_viewer, breakhis_tree, tmp_path
):
    viewer = make_napari_viewer()
    classify = ClassifyTilesWidget(viewer)
    widget = _train_widget(viewer, breakhis_tree, tmp_path)
    widget.degradation.value, widget.class_balance.value = "scanner+bicubic", "loss"
    widget.stain_jitter.value, widget.decision.value = 0.2, "validation"
    widget.val_crop_px.value = 64
    widget.synchronous = True
    widget.start()
    assert widget.status.value == "done" and (tmp_path / "best.safetensors").exists()
    trained = load_checkpoint(tmp_path / "best.safetensors")[1].provenance["train_config"]
    assert trained["degradation"] == "scanner+bicubic" and trained["class_balance"] == "loss"
    assert trained["stain_jitter"] == 0.2 and trained["decision"] == "validation"
    assert trained["val_crop_px"] == 64 and trained["val_every"] == 1
    assert widget.plot.losses and widget.plot.epochs == [1]
    assert widget.epoch_bar.value == 1
    widget.use_model()
    assert classify.model.value == CHECKPOINT_CHOICE
    assert Path(str(classify.checkpoint.value)) == tmp_path / "best.safetensors"


def test_train_widget_stop_leaves_a_resumable_checkpoint(
    make_napari_viewer, breakhis_tree, tmp_path, qtbot
):
    viewer = make_napari_viewer()
    widget = _train_widget(viewer, breakhis_tree, tmp_path)
    original = widget._on_event

    def stop_at_first_batch(event):
        original(event)
        widget.stop()

    widget._on_event = stop_at_first_batch
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)
    assert widget.status.value.startswith("stopped")
    assert (tmp_path / "last-state.safetensors").exists()
    widget._on_event = original
    widget.start(resume=True)
    qtbot.waitUntil(lambda: widget.status.value == "done", timeout=120_000)
    assert (tmp_path / "best.safetensors").exists()


def test_number_fields_keep_the_values_users_type(make_napari_viewer):
    from napari_shisrcnet.napari.widgets.train import TrainWidget

    viewer = make_napari_viewer()
    train, super_resolve = TrainWidget(viewer), SuperResolveWidget(viewer)
    train.lr.value, train.classifier_width.value = 5e-5, 0.125
    super_resolve.slide_mpp.value = 0.4990  # e.g. the CMU scan's level 0 (not 0.50)
    assert train.config().lr == 5e-5 and train.config().classifier_width == 0.125
    assert super_resolve.slide_mpp.value == 0.499


def test_train_widget_fine_tunes_a_checkpoint_with_its_architecture(
    make_napari_viewer, breakhis_tree, tmp_path
):
    from napari_shisrcnet.napari.widgets.train import BUNDLED_MODEL, RANDOM_WEIGHTS

    first, tuned = tmp_path / "first", tmp_path / "tuned"
    first.mkdir(), tuned.mkdir()
    widget = _train_widget(make_napari_viewer(), breakhis_tree, first)
    widget.synchronous = True
    # isHidden, not .visible: magicgui reports False for every field of a dock not shown.
    shown = lambda field: not field.native.isHidden()  # noqa: E731
    assert widget.start_from.value == RANDOM_WEIGHTS and not shown(widget.init_file)
    widget.start()
    assert widget.started_from.value == "random weights"
    widget.out_dir.value = tuned
    widget.start_from.value = CHECKPOINT_CHOICE
    assert shown(widget.init_file)
    widget.start()  # no file chosen: refused, nothing written
    assert widget.status.value == "error: choose the checkpoint to start from"
    assert not list(tuned.iterdir())
    widget.sr_channels.value, widget.classifier_width.value = 64, 1.0
    widget.init_file.value = first / "best.safetensors"  # its widths replace the form's
    assert (widget.sr_channels.value, widget.classifier_width.value) == (8, 0.125)
    widget.start()
    assert widget.status.value == "done"
    assert widget.started_from.value == f"--init {first / 'best.safetensors'}: model copied"
    trained = load_checkpoint(tuned / "best.safetensors")[1].provenance["train_config"]
    assert trained["init_checkpoints"] == [str(first / "best.safetensors")]
    if BUNDLED_MODEL in widget.start_from.choices:  # the bundled model's widths, x4's at x4
        widget.scale.value, widget.start_from.value = 4, BUNDLED_MODEL
        assert (widget.sr_channels.value, widget.classifier_width.value) == (64, 0.25)
        assert widget.config().init_checkpoints == ("default-x4",)


def test_a_second_run_while_one_runs_is_refused_and_the_first_stays_cancellable(
    classify_widget, qtbot
):
    from napari_shisrcnet.napari.job_state import JobStatus

    _, widget = classify_widget
    statuses = []
    widget.runner.state.events.status.connect(statuses.append)
    widget.tile_px.value = 16  # many small tiles: time to press Run again
    widget.run()
    first = widget.runner.worker
    widget.run()  # refused: the first job keeps its worker and its cancel token
    assert widget.runner.worker is first and not widget.run_button.enabled
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert statuses == [JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.CANCELLED]
    assert widget.status.value.startswith("cancelled")


def test_job_runner_states_and_failures_without_a_viewer():
    from napari_shisrcnet.engine.runner import RunCancelled
    from napari_shisrcnet.napari.job_state import JobRunner, JobStatus

    runner = JobRunner()
    runner.synchronous = True
    seen, results = [], []
    runner.state.events.status.connect(lambda status: seen.append((status, runner.state.message)))
    runner.start(lambda report, cancel: report("event") or 42, results.append, results.append)
    assert results == ["event", 42] and seen[-1] == (JobStatus.DONE, "done")

    def cancelled(report, cancel):
        raise RunCancelled("stopped")

    runner.start(cancelled, print, results.append)
    assert seen[-1] == (JobStatus.CANCELLED, "cancelled; nothing was added")

    def broken(report, cancel):
        raise ValueError("slide has 4 channels; expected RGB")

    runner.start(broken, print, results.append)
    assert seen[-1] == (JobStatus.FAILED, "error: slide has 4 channels; expected RGB")
    assert results == ["event", 42]  # on_done ran once, for the job that finished


def test_use_this_model_reaches_every_open_job_widget(make_napari_viewer, tmp_path):
    from napari_shisrcnet.napari.model_handover import MODEL_HANDOVER

    viewer = make_napari_viewer()
    widgets = [SuperResolveWidget(viewer), ClassifyTilesWidget(viewer)]
    MODEL_HANDOVER.chosen.emit(str(tmp_path / "best.safetensors"))
    for widget in widgets:
        assert widget.model.value == CHECKPOINT_CHOICE
        assert Path(str(widget.checkpoint.value)) == tmp_path / "best.safetensors"


def test_saved_image_layers_keep_their_place(tmp_path):
    import zarr

    from napari_shisrcnet.napari.writer import write_image_layer

    image = np.zeros((600, 300, 3), np.uint8)
    meta = {"rgb": True, "scale": (0.5, 0.5), "translate": (100.0, 40.0)}
    meta["units"] = ("micrometer", "micrometer")
    [path] = write_image_layer(str(tmp_path / "placed"), image, meta)
    datasets = zarr.open_group(path, mode="r").attrs["multiscales"][0]["datasets"]
    first, second = (d["coordinateTransformations"] for d in datasets[:2])
    assert first[0]["scale"] == [1.0, 0.5, 0.5] and first[1]["translation"] == [0.0, 100.0, 40.0]
    # Level 1's pixel centre is half a level-0 pixel further in.
    assert second[0]["scale"] == [1.0, 1.0, 1.0]
    assert second[1]["translation"] == [0.0, 100.25, 40.25]


def test_results_reopen_in_the_viewer_over_their_slide(make_napari_viewer, pyramid_tiff, tmp_path):
    from napari_shisrcnet import api

    region = api.Region(100, 200, 64, 96)
    result = api.process_slide(
        pyramid_tiff, tmp_path, "bicubic", region=region, classification=False
    )
    viewer = make_napari_viewer()
    [slide] = viewer.open(str(pyramid_tiff), plugin="napari-shisrcnet")
    [sr] = viewer.open(str(result.zarr_path), plugin="napari-shisrcnet")
    # SR pixel (0, 0) covers the region's first source pixel's top-left quarter.
    corner = np.asarray(slide.translate) + (np.array([100, 200]) - 0.25) * slide.scale
    np.testing.assert_allclose(sr.translate, corner)
    np.testing.assert_allclose(sr.scale, slide.scale / 2)
    assert [str(u) for u in sr.units] == [str(u) for u in slide.units] == ["micrometer"] * 2


CLOSE_DURING_JOB = """
import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from napari_shisrcnet.napari.widgets.classify import ClassifyTilesWidget

viewer = napari.Viewer(show=True)
viewer.open(SLIDE, plugin="napari-shisrcnet")
widget = ClassifyTilesWidget(viewer)
viewer.window.add_dock_widget(widget)
widget.model.value, widget.checkpoint.value = "checkpoint file…", CHECKPOINT
widget.device.value, widget.extent.value, widget.tile_px.value = "cpu", "whole level", 16
report = widget._on_progress

def close_on_first(event):
    report(event)
    close_on_first.last = event
    if not getattr(close_on_first, "done", False):
        close_on_first.done = True
        QTimer.singleShot(0, viewer.close)
        QTimer.singleShot(2000, QApplication.instance().quit)

widget._on_progress = close_on_first
widget.run()
napari.run()
last = close_on_first.last
print("stopped:", widget.runner._job_ended.is_set(), flush=True)
print("cancelled early:", widget.runner._token.cancelled and last.done < last.total, flush=True)
"""


def test_closing_the_viewer_during_a_job_cancels_it_cleanly(pyramid_tiff, tiny_checkpoint):
    import subprocess
    import sys

    script = CLOSE_DURING_JOB.replace("SLIDE", repr(str(pyramid_tiff)))
    script = script.replace("CHECKPOINT", repr(str(tiny_checkpoint)))
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "stopped: True" in run.stdout and "cancelled early: True" in run.stdout
    assert "has been deleted" not in run.stderr and "Traceback" not in run.stderr


def test_every_dock_scrolls_and_the_train_plot_stays_legible(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication, QScrollArea

    from napari_shisrcnet.napari.widgets.train import MIN_PLOT_HEIGHT_PX, TrainWidget

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1200, 700)
    docks = [
        viewer.window.add_plugin_dock_widget("napari-shisrcnet", name)[1]
        for name in ("Super-resolve", "Classify tiles", "Train")
    ]
    QApplication.processEvents()  # lay the docks out
    assert isinstance(docks[-1], TrainWidget)
    assert docks[-1].plot.canvas.height() >= MIN_PLOT_HEIGHT_PX
    # Squeezed into one 700 px column, each dock scrolls its form; the window stays put.
    for dock in docks:
        assert isinstance(dock.native, QScrollArea)
    assert max(dock.native.verticalScrollBar().maximum() for dock in docks) > 0
    assert viewer.window._qt_window.height() <= 720
    # Only the height scrolls: a long line written after a run widens the dock, not cut off.
    docks[1].summary.value = "malignant: 1234 tiles, 12.345 mm², a long summary line " * 2
    form = docks[1].native.widget()
    # Qt lays out over a few event-loop passes (how many depends on the other docks' forms).
    qtbot.waitUntil(lambda: docks[1].native.width() >= form.minimumSizeHint().width(), timeout=5000)


def test_the_scale_choice_shows_what_the_model_can_do(make_napari_viewer, tiny_checkpoint):
    widget = SuperResolveWidget(make_napari_viewer())
    widget.model.value = "bicubic"
    assert widget.scale.enabled
    widget.scale.value = 4
    widget.model.value, widget.checkpoint.value = CHECKPOINT_CHOICE, tiny_checkpoint
    assert not widget.scale.enabled and widget.scale.value == 2  # the checkpoint's x2


@needs_cmu_svs
def test_the_preferred_reader_setting_in_the_readme_makes_viewer_open_use_the_plugin(
    make_napari_viewer,
):
    from napari.settings import get_settings

    from napari_shisrcnet.io.slides import slide_suffixes

    viewer = make_napari_viewer()
    plugins = get_settings().plugins
    before = dict(plugins.extension2reader)
    try:
        # As README.md says (File > Preferences > Plugins does the same).
        plugins.extension2reader = {
            **before,
            **{f"*{suffix}": "napari-shisrcnet" for suffix in slide_suffixes()},
        }
        # plugin=None follows the preferences, as File > Open and drag-and-drop do.
        [layer] = viewer.open(str(CMU_SVS), plugin=None)
        assert "napari_shisrcnet" in layer.metadata and layer.multiscale
        assert tuple(layer.scale) == pytest.approx((0.499, 0.499))
    finally:
        plugins.extension2reader = before


def test_the_widgets_read_at_the_models_pixel_size(classify_widget, tiny_checkpoint_1um):

    checkpoint = tiny_checkpoint_1um  # LR 1.0 µm/px
    viewer, widget = classify_widget
    widget.synchronous, widget.checkpoint.value, widget.level.value = True, checkpoint, 0
    widget.heatmap.value = False
    widget.run()  # the 0.5 µm/px slide is read at 1.0 µm/px: its level 1, as stored
    labels = viewer.layers["synthetic.tif classes"]
    assert labels.data[0].shape == (600, 800) and tuple(labels.scale) == pytest.approx((1, 1))
    viewer.layers.remove(labels)
    widget.read_at.value = "level as stored"
    widget.run()
    labels = viewer.layers["synthetic.tif classes"]
    assert labels.data[0].shape == (1200, 1600)
    assert tuple(labels.scale) == pytest.approx((0.5, 0.5))


@needs_cmu_svs
def test_the_widget_and_the_api_classify_a_single_level_slide_alike(
    make_napari_viewer, tiny_checkpoint_1um
):
    """The reader gives a single-level file a /2 display level; a job must not read it
    (the API and CLI resample level 0): the widget disagreed with `shisrcnet demo` on 2 to 4
    of the bundled scan's 89 tissue tiles when it did."""

    from napari_shisrcnet import api

    checkpoint = tiny_checkpoint_1um  # LR 1.0 µm/px: level 0 / 2.004
    viewer = make_napari_viewer(show=True)
    [layer] = viewer.open(str(CMU_SVS), plugin="napari-shisrcnet")
    assert len(layer.data) == 2  # the reader's display level is there
    widget = ClassifyTilesWidget(viewer)
    widget.image.value, widget.model.value = layer, CHECKPOINT_CHOICE
    widget.checkpoint.value, widget.device.value, widget.level.value = checkpoint, "cpu", 0
    widget.synchronous, widget.heatmap.value = True, False
    widget.run()
    expected = api.classify_tiles(str(CMU_SVS), str(checkpoint), device="cpu")
    assert widget.result.probabilities.shape == expected.probabilities.shape
    np.testing.assert_array_equal(widget.result.label_map, expected.label_map)
    np.testing.assert_allclose(widget.result.probabilities, expected.probabilities, atol=1e-6)
    sr_widget = SuperResolveWidget(viewer)  # the same rule for super-resolution
    sr_widget.image.value, sr_widget.model.value = layer, CHECKPOINT_CHOICE
    sr_widget.checkpoint.value, sr_widget.device.value = checkpoint, "cpu"
    source = sr_widget.source(sr_widget.tile_model())
    assert len(source.slide.levels) == 1 and source.level == 0
    assert source.factor == pytest.approx(1 / 0.499)  # level 0 resampled, as the API does


def test_exported_tiles_are_in_level_0_pixels_when_the_slide_is_resampled(
    classify_widget, tmp_path
):
    import csv

    import torch

    from conftest import TINY_SHISRCNET
    from napari_shisrcnet.model import SHISRCNet, save_checkpoint

    torch.manual_seed(0)
    checkpoint = save_checkpoint(
        SHISRCNet(scale=2, **TINY_SHISRCNET),
        tmp_path / "lr-0.8um.safetensors",
        provenance={"hr_crop_px": 128, "hr_mpp": 0.4},  # LR 0.8 µm/px: level 0 x 1.6
    )
    _, widget = classify_widget
    widget.synchronous, widget.checkpoint.value, widget.level.value = True, checkpoint, 0
    widget.run()
    exported = Path(widget._export("csv", str(tmp_path / "t.csv")))
    rows = list(csv.DictReader(exported.read_text().splitlines()))
    for row in rows:  # 64 px tiles of the 0.8 µm/px image = 102.4 level-0 px
        assert float(row["x_px"]) == pytest.approx(int(row["column"]) * 64 * 1.6)
        assert float(row["x_um"]) == pytest.approx(int(row["column"]) * 64 * 0.8)


def test_a_saved_class_overlay_is_its_tile_map_and_reopens_in_place(classify_widget, tmp_path):
    from napari_shisrcnet.napari.reader import read_slides

    viewer, widget = classify_widget
    widget.synchronous, widget.heatmap.value = True, False
    widget.run()
    labels = viewer.layers["synthetic.tif classes"]
    from napari_shisrcnet.napari.writer import write_labels_layer

    [path] = write_labels_layer(str(tmp_path / "classes"), labels.data, labels._get_state())
    [(data, kwargs, kind)] = read_slides(path)
    assert kind == "labels"
    tiles = np.asarray(data[0] if isinstance(data, list) else data)
    np.testing.assert_array_equal(tiles, np.asarray(labels.data[-1]))  # not 600 x 800 pixels
    # Tile (0, 0)'s centre: 31.5 level-1 pixels in from the layer's first pixel centre.
    assert tuple(kwargs["scale"]) == pytest.approx(tuple(np.asarray(labels.scale) * 64))
    expected = np.asarray(labels.translate) + 31.5 * np.asarray(labels.scale)
    assert tuple(kwargs["translate"]) == pytest.approx(tuple(expected))
