"""What the SR and classification widgets share: source, model, device, extent, run/cancel.

The widget only gathers choices and shows progress; the work is a call into
``napari_shisrcnet.api`` running in a napari worker (or synchronously, for tests).
"""

from __future__ import annotations

import weakref
from types import SimpleNamespace

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

from ...engine.runner import CancelToken, ProgressEvent
from ...engine.tiling import Region
from ...io.slides import slide_from_arrays
from ..workers import CANCELLED, progress_generator, start_job

EXTENTS = ("field of view", "drawn rectangle", "whole level")
CHECKPOINT_CHOICE = "checkpoint file…"
#: In-memory outputs above this many megapixels are refused (use `shisrcnet predict`).
MAX_OUTPUT_MEGAPIXELS = 256
#: Live job widgets, so the training widget's "Use this model" can reach them.
LIVE_JOB_WIDGETS: weakref.WeakSet = weakref.WeakSet()


def model_choices() -> list[str]:
    from ...model.bundled import BundledModelMissing, bundled_weights_path

    choices = []
    try:
        bundled_weights_path("default")
        choices.append("default")
    except BundledModelMissing:
        pass
    return [*choices, "bicubic", CHECKPOINT_CHOICE]


def device_choices() -> list[tuple[str, str]]:
    import torch

    choices = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            choices.append(
                (f"{props.name} ({props.total_memory / 2**30:.0f} GiB)", f"cuda:{index}")
            )
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append(("Apple GPU (MPS)", "mps"))
    choices.append(("CPU", "cpu"))
    return choices


def field_of_view(viewer: napari.viewer.Viewer) -> tuple[float, float, float, float]:
    """World-coordinate (y0, y1, x0, x1) of what the canvas shows."""
    center_y, center_x = viewer.camera.center[-2:]
    height, width = viewer.canvas.size
    half_h, half_w = height / (2 * viewer.camera.zoom), width / (2 * viewer.camera.zoom)
    return (center_y - half_h, center_y + half_h, center_x - half_w, center_x + half_w)


def drawn_rectangle(viewer: napari.viewer.Viewer) -> tuple[float, float, float, float]:
    """World (y0, y1, x0, x1) of the last shape drawn in the top-most Shapes layer."""
    shapes = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Shapes)]
    if not shapes or not len(shapes[-1].data):
        raise ValueError("draw a rectangle in a Shapes layer first (or choose another extent)")
    layer = shapes[-1]
    corners = np.asarray(layer.data[-1])[:, -2:] * layer.scale[-2:] + layer.translate[-2:]
    (y0, x0), (y1, x1) = corners.min(axis=0), corners.max(axis=0)
    return (y0, y1, x0, x1)


class JobWidget(Container):
    """Base widget: choose an image, model, device, extent; run with progress; cancel."""

    needs_classifier = False

    def __init__(self, viewer: napari.viewer.Viewer, title: str) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        LIVE_JOB_WIDGETS.add(self)
        self.synchronous = False  # True: run in the calling thread (tests, scripts)
        self._models: dict = {}
        self._token: CancelToken | None = None
        self._progress = None
        self.worker = None
        self.image = ComboBox(label="image", choices=self._image_layers, nullable=True)
        self.model = ComboBox(label="model", choices=model_choices())
        self.checkpoint = FileEdit(label="checkpoint", filter="*.safetensors", visible=False)
        self.device = ComboBox(label="device", choices=device_choices())
        self.extent = ComboBox(label="extent", choices=EXTENTS)
        self.level = SpinBox(label="level", min=0, max=20, value=0)
        self.run_button = PushButton(text=f"Run {title}")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress_bar = ProgressBar(label="progress", min=0, max=100, value=0)
        self.status = Label(label="status", value="idle")
        self.model.changed.connect(self._on_model_changed)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        viewer.layers.events.inserted.connect(self._refresh_images)
        viewer.layers.events.removed.connect(self._refresh_images)
        self._refresh_images()

    def _common_widgets(self) -> list:
        return [self.image, self.model, self.checkpoint, self.device, self.extent, self.level]

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

    def source(self):
        """(layer, the Slide behind it, level, the level pixel grid (scale, translate, units)).

        A level-L pixel spans ``downsample`` level-0 pixels, so its centre lies
        (downsample - 1) / 2 level-0 pixels in from the level-0 pixel centre.
        """
        layer = self.image.value
        if layer is None:
            raise ValueError("open an RGB image or slide first")
        # The layer's data already are the lazy pyramid (our reader) or plain arrays: use
        # them as they are, rather than opening and parsing the file again on every Run.
        levels = list(layer.data) if layer.multiscale else [layer.data]
        mpp = layer.metadata.get("napari_shisrcnet", {}).get("mpp")
        slide = slide_from_arrays(levels, mpp=mpp, name=layer.name)
        level = int(self.level.value)
        if level >= len(slide.levels):
            raise ValueError(f"level {level} requested; '{layer.name}' has {len(slide.levels)}")
        downsample = slide.metadata.level_downsamples[level]
        scale0 = np.asarray(layer.scale[-2:], float)
        grid = SimpleNamespace(
            scale=scale0 * downsample,
            translate=np.asarray(layer.translate[-2:], float) + (downsample - 1) / 2 * scale0,
            units=getattr(layer, "units", None),
        )
        return layer, slide, level, grid

    def region(self, slide, level, grid) -> Region:
        """The chosen extent in level pixels, clipped to the level."""
        shape = slide.levels[level].shape[:2]
        if self.extent.value == "whole level":
            return Region.whole(shape)
        world = (
            field_of_view(self.viewer)
            if self.extent.value == "field of view"
            else drawn_rectangle(self.viewer)
        )
        y0, y1, x0, x1 = world
        # World edges -> level pixel edges (pixel j spans [j - 0.5, j + 0.5) around its centre).
        (ty, tx), (sy, sx) = grid.translate, grid.scale
        top, left = (y0 - ty) / sy + 0.5, (x0 - tx) / sx + 0.5
        bottom, right = (y1 - ty) / sy + 0.5, (x1 - tx) / sx + 0.5
        region = Region(
            int(np.floor(top)),
            int(np.floor(left)),
            int(np.ceil(bottom) - np.floor(top)),
            int(np.ceil(right) - np.floor(left)),
        )
        return region.clipped_to(shape)

    # -- running -----------------------------------------------------------------------
    def prepare(self):
        """Subclasses: return (job(progress, cancel) -> result, on_done(result))."""
        raise NotImplementedError

    def run(self, _=None) -> None:
        try:
            job, on_done = self.prepare()
        except (ValueError, LookupError, OSError) as error:
            show_error(str(error))
            self.status.value = f"error: {error}"
            return
        self._token = CancelToken()
        token = self._token
        generator = progress_generator(lambda progress: job(progress, token))
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = "running…"
        self.worker = start_job(
            generator,
            self._on_progress,
            lambda result: self._on_finished(result, on_done),
            self._on_error,
            self.synchronous,
        )

    def cancel(self, _=None) -> None:
        if self._token is not None:
            self._token.cancel()
            self.status.value = "cancelling after the current batch…"

    def _on_progress(self, event: ProgressEvent) -> None:
        from napari.utils import progress

        if self._progress is None:
            self._progress = progress(total=event.total, desc=f"SHISRCNet: {event.stage}")
        self._progress.total = event.total
        self._progress.n = event.done
        self._progress.refresh()
        self.progress_bar.value = int(100 * event.fraction)
        eta = "" if event.eta_s is None else f", ETA {event.eta_s:.0f} s"
        self.status.value = (
            f"{event.stage}: {event.done}/{event.total}, {event.megapixels_per_s:.2f} MP/s{eta}"
        )

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.run_button.enabled, self.cancel_button.enabled = True, False

    def _on_finished(self, result, on_done) -> None:
        if result is CANCELLED:
            self._on_cancelled()
            return
        self._close_progress()
        on_done(result)
        self.progress_bar.value = 100
        self.status.value = "done"

    def _on_cancelled(self) -> None:
        self._close_progress()
        self.progress_bar.value = 0
        self.status.value = "cancelled; nothing was added"
        show_info("SHISRCNet: cancelled; nothing was added")

    def _on_error(self, error: BaseException) -> None:
        self._close_progress()
        self.status.value = f"error: {error}"
        show_error(f"SHISRCNet: {error}")

    def check_output_size(self, region: Region, scale: int) -> None:
        megapixels = region.height * region.width * scale * scale / 1e6
        if megapixels > MAX_OUTPUT_MEGAPIXELS:
            raise ValueError(
                f"the result would be {megapixels:.0f} MP; choose a smaller extent or a higher "
                "level, or use `shisrcnet predict` (streams to OME-Zarr)"
            )
