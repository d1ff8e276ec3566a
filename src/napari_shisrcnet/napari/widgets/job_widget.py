"""What the SR and classification widgets share: source, model, device, extent, run/cancel.

The widget only gathers choices into :class:`~napari_shisrcnet.settings.SlideJobSettings`
and shows progress; the work is a call into ``napari_shisrcnet.api`` run by a
:class:`~napari_shisrcnet.napari.job_state.JobRunner` in a napari worker (or synchronously,
for tests). Buttons and the status line follow the runner's evented state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info

from ...engine.runner import ProgressEvent
from ...geometry import PixelGrid, Region
from ...io.resampled import level_view
from ...io.slides import Slide, slide_from_arrays
from ...settings import SlideJobSettings, read_plan, read_shape, with_slide_mpp
from ..job_state import JobRunner, JobStatus, RunsJobs
from ..model_handover import MODEL_HANDOVER
from .choices import (
    CHECKPOINT_CHOICE,
    EXTENTS,
    device_choices,
    drawn_rectangle,
    field_of_view,
    model_choices,
)
from .fields import precise_float
from .scrolling import ScrollsInDock

READ_AT_MODEL_MPP = "model's µm/px"
READ_AT_LEVEL = "level as stored"
#: In-memory outputs above this many megapixels are refused (use `shisrcnet predict`).
MAX_OUTPUT_MEGAPIXELS = 256


@dataclass(frozen=True)
class JobSource:
    """The chosen image layer, the slide over its data, the level read, and where that
    level's pixel centres lie in the viewer's world."""

    layer: napari.layers.Image
    slide: Slide
    level: int
    grid: PixelGrid
    factor: float = 1.0  # the level's pixels per pixel read (1: read as stored)
    downsample: float = 1.0  # level-0 pixels per pixel read


def layer_grid(layer: napari.layers.Layer) -> PixelGrid:
    """Where the layer's data pixel centres lie (its scale, translate and units)."""
    units = getattr(layer, "units", None)
    sy, sx = (float(s) for s in layer.scale[-2:])
    ty, tx = (float(t) for t in layer.translate[-2:])
    return PixelGrid(
        (sy, sx), (ty, tx), (str(units[-2]), str(units[-1])) if units is not None else None
    )


def world_to_region(world: tuple[float, float, float, float], grid: PixelGrid) -> Region:
    """World (y0, y1, x0, x1) -> the level pixels it touches (pixel j spans j +- 0.5)."""
    y0, y1, x0, x1 = world
    (ty, tx), (sy, sx) = grid.translate, grid.scale
    top, left = (y0 - ty) / sy + 0.5, (x0 - tx) / sx + 0.5
    bottom, right = (y1 - ty) / sy + 0.5, (x1 - tx) / sx + 0.5
    return Region(
        int(np.floor(top)),
        int(np.floor(left)),
        int(np.ceil(bottom) - np.floor(top)),
        int(np.ceil(right) - np.floor(left)),
    )


class JobWidget(ScrollsInDock, RunsJobs, Container):
    """Base widget: choose an image, model, device, extent; run with progress; cancel."""

    def __init__(self, viewer: napari.viewer.Viewer, title: str) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.runner = JobRunner()
        self._models: dict = {}
        self._progress: napari.utils.progress | None = None
        defaults = SlideJobSettings()
        self.image = ComboBox(label="image", choices=self._image_layers, nullable=True)
        self.model = ComboBox(label="model", choices=model_choices())
        self.checkpoint = FileEdit(label="checkpoint", filter="*.safetensors", visible=False)
        self.device = ComboBox(label="device", choices=device_choices())
        self.extent = ComboBox(label="extent", choices=EXTENTS)
        self.level = SpinBox(label="level", min=0, max=20, value=defaults.level)
        self.read_at = ComboBox(
            label="read at",
            choices=[READ_AT_MODEL_MPP, READ_AT_LEVEL],
            value=READ_AT_MODEL_MPP if defaults.match_model_mpp else READ_AT_LEVEL,
            tooltip="the µm/px the model was trained at (when it records it and the slide's "
            "pixel size is known), or the level as stored",
        )
        self.slide_mpp = precise_float(
            4, label="slide µm/px (0 = file's)", min=0.0, max=100.0, step=0.01, value=0.0
        )
        self.run_button = PushButton(text=f"Run {title}")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(label="progress", min=0, max=100, value=0)
        self.status = Label(label="status", value=self.runner.state.message)
        self.model.changed.connect(self._on_model_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self._attach_runner(self.runner)
        MODEL_HANDOVER.chosen.connect(self.use_checkpoint)
        viewer.layers.events.inserted.connect(self._refresh_images)
        viewer.layers.events.removed.connect(self._refresh_images)
        self._refresh_images()

    def _common_widgets(self) -> list:
        return [
            self.image,
            self.model,
            self.checkpoint,
            self.device,
            self.extent,
            self.read_at,
            self.level,
            self.slide_mpp,
        ]

    def _control_widgets(self) -> list:
        return [self.run_button, self.cancel_button, self.progress_bar, self.status]

    def _image_layers(self, _=None) -> list:
        return [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, napari.layers.Image) and layer.rgb
        ]

    def _refresh_images(self, _=None) -> None:
        """Keep the image list current; select the newest image when none is selected."""
        self.image.reset_choices()
        if self.image.value is None and self.image.choices[-1] is not None:
            self.image.value = self.image.choices[-1]

    def _on_model_changed(self, value) -> None:
        self.checkpoint.visible = value == CHECKPOINT_CHOICE

    def use_checkpoint(self, path: str) -> None:
        """Use the checkpoint at ``path`` from now on (the Train widget's "Use this model")."""
        try:
            self.model.value = CHECKPOINT_CHOICE
            self.checkpoint.value = Path(path)
        except RuntimeError:  # this dock was closed and its Qt widgets deleted
            MODEL_HANDOVER.chosen.disconnect(self.use_checkpoint)

    # -- gathering what to run ----------------------------------------------------------
    def model_spec(self) -> str:
        if self.model.value == CHECKPOINT_CHOICE:
            path = str(self.checkpoint.value)
            if not path or path == ".":
                raise ValueError("choose a checkpoint file (.safetensors)")
            return path
        return self.model.value

    def tile_model(self, scale: int | None = None):
        from ...api import load_model

        key = (self.model_spec(), self.device.value, scale)
        if key not in self._models:
            self._models[key] = load_model(key[0], key[1], scale)
        return self._models[key]

    def _read_settings(self) -> SlideJobSettings:
        """How to read the slide: at the model's µm/px or a level as stored."""
        return SlideJobSettings(
            level=int(self.level.value),
            match_model_mpp=self.read_at.value == READ_AT_MODEL_MPP,
            slide_mpp=float(self.slide_mpp.value) or None,
        )

    def source(self, model=None) -> JobSource:
        """The chosen layer as a slide, the level read (at the ``model``'s µm/px where it
        records one and that is chosen), and where the pixels read lie in the viewer."""
        layer = self.image.value
        if layer is None:
            raise ValueError("open an RGB image or slide first")
        # The layer's data already are the lazy pyramid (our reader) or plain arrays: use
        # them as they are, rather than opening and parsing the file again on every Run.
        levels = list(layer.data) if layer.multiscale else [layer.data]
        ours = layer.metadata.get("napari_shisrcnet", {})
        # Not the reader's display-only /2 levels: jobs read what the file stores, as the
        # CLI and the API do, so that all three give the same result for the same file.
        levels = levels[: ours.get("stored_levels", len(levels))]
        mpp = ours.get("mpp")
        read = self._read_settings()
        slide = with_slide_mpp(slide_from_arrays(levels, mpp=mpp, name=layer.name), read.slide_mpp)
        if model is None:
            level, factor = read.level, 1.0
        else:
            level, factor, _ = read_plan(read, slide.metadata, model)
        if level >= len(slide.levels):
            raise ValueError(f"level {level} requested; '{layer.name}' has {len(slide.levels)}")
        view = level_view(slide, level, factor)  # the pixels the job will read
        grid = layer_grid(layer).coarser(view.downsample)
        return JobSource(layer, slide, level, grid, view.factor, view.downsample)

    def region(self, source: JobSource) -> Region:
        """The chosen extent in the pixels read, clipped to them."""
        shape = read_shape(source.slide.metadata, source.level, source.factor)
        if self.extent.value == "whole level":
            return Region.whole(shape)
        if self.extent.value == "field of view":
            world = field_of_view(self.viewer)
        else:
            world = drawn_rectangle(self.viewer)
        return world_to_region(world, source.grid).clipped_to(shape)

    def settings(self, source: JobSource) -> SlideJobSettings:
        """Subclasses add their own fields to these (how to read, and the region)."""
        return self._read_settings().replace(level=source.level, region=self.region(source))

    # -- running -----------------------------------------------------------------------
    def prepare(self):
        """Subclasses: return (job(progress, cancel) -> result, on_done(result))."""
        raise NotImplementedError

    def run(self, _=None) -> None:
        """Start the job with the current choices (refused while one runs)."""
        if self.runner.state.status.busy:
            show_info("SHISRCNet: a job is running; cancel it or wait for it to finish")
            return
        try:
            job, on_done = self.prepare()
        except (ValueError, LookupError, OSError) as error:
            self.runner.fail(error)
            return
        self.runner.start(job, self._on_progress, on_done)

    def cancel(self, _=None) -> None:
        self.runner.cancel()

    def _on_progress(self, event: ProgressEvent) -> None:
        from napari.utils import progress

        if self._progress is None:
            self._progress = progress(total=event.total, desc=f"SHISRCNet: {event.stage}")
        self._progress.total = event.total
        self._progress.n = event.done
        self._progress.refresh()
        self.progress_bar.value = int(100 * event.fraction)
        eta = "" if event.eta_s is None else f", ETA {event.eta_s:.0f} s"
        self.runner.state.message = (
            f"{event.stage}: {event.done}/{event.total}, {event.megapixels_per_s:.2f} MP/s{eta}"
        )

    def _on_status(self, status: JobStatus) -> None:
        self.run_button.enabled = not status.busy
        self.cancel_button.enabled = status is JobStatus.RUNNING
        if status.busy:
            return
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if status is JobStatus.DONE:
            self.progress_bar.value = 100
        elif status is JobStatus.CANCELLED:
            self.progress_bar.value = 0
            show_info(f"SHISRCNet: {self.runner.state.message}")
        elif status is JobStatus.FAILED:
            show_error(f"SHISRCNet: {self.runner.state.message.removeprefix('error: ')}")

    def check_output_size(self, region: Region, scale: int) -> None:
        megapixels = region.height * region.width * scale * scale / 1e6
        if megapixels > MAX_OUTPUT_MEGAPIXELS:
            raise ValueError(
                f"the result would be {megapixels:.0f} MP; choose a smaller extent or a higher "
                "level, or process the slide to OME-Zarr (`shisrcnet predict`)"
            )
