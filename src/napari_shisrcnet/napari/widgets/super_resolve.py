"""The "Super-resolve" dock widget."""

from __future__ import annotations

import napari
from magicgui.widgets import CheckBox, ComboBox, SpinBox

from ...geometry import SUPPORTED_SCALES
from ..layers import sr_layer
from .job_widget import JobWidget


class SuperResolveWidget(JobWidget):
    """Super-resolve the field of view, a drawn rectangle or a whole level of an image."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, "super-resolution")
        self.scale = ComboBox(
            label="scale",
            choices=list(SUPPORTED_SCALES),
            value=SUPPORTED_SCALES[0],
            tooltip="bicubic takes any scale; a trained model has its own (shown, fixed)",
        )
        # 0: what suits the device (SlideJobSettings.sr_tile_px = None).
        self.tile_px = SpinBox(label="tile (px, 0 = auto)", min=0, max=2048, step=32, value=0)
        self.compare = CheckBox(label="add bicubic layer", value=True)
        self.checkpoint.changed.connect(lambda _: self._show_model_scale())
        self._show_model_scale()
        self.extend(
            [
                *self._common_widgets(),
                self.scale,
                self.tile_px,
                self.compare,
                *self._control_widgets(),
            ]
        )

    def _on_model_changed(self, value) -> None:
        super()._on_model_changed(value)
        self._show_model_scale()

    def _show_model_scale(self) -> None:
        """Bicubic takes any supported scale; a trained model has its own, shown fixed."""
        scale = None if self.model.value == "bicubic" else self._checkpoint_scale()
        self.scale.enabled = scale is None
        if scale is not None:
            self.scale.value = scale

    def _checkpoint_scale(self) -> int | None:
        from ...model.bundled import checkpoint_path
        from ...model.checkpoint import read_checkpoint_info

        try:
            spec = self.model_spec()
            return read_checkpoint_info(checkpoint_path(spec)).scale
        except (ValueError, LookupError, OSError):
            return None  # no or a bad checkpoint: Run will say why

    def prepare(self):
        from ...api import load_model, super_resolve

        # Read every widget here, never in the worker thread.
        bicubic_only = self.model_spec() == "bicubic"
        model = self.tile_model(int(self.scale.value) if bicubic_only else None)
        if not model.can_super_resolve:
            raise ValueError("this checkpoint has no SR module")
        source = self.source(model)
        settings = self.settings(source).replace(
            classification=False, sr_tile_px=int(self.tile_px.value) or None
        )
        scale, region, name = model.scale, settings.region, source.layer.name
        self.check_output_size(region, scale)
        comparison = (
            load_model("bicubic", "cpu", scale) if self.compare.value and not bicubic_only else None
        )

        def job(progress, cancel):
            sr = super_resolve(source.slide, model, settings, progress=progress, cancel=cancel)
            if comparison is None:
                return sr, None
            return sr, super_resolve(source.slide, comparison, settings, cancel=cancel)

        def add(pixels, kind: str) -> None:
            layer = sr_layer(pixels, source.grid, region, scale, f"{name} {kind} x{scale}")
            self.viewer.add_layer(_as_layer(layer))

        def on_done(result) -> None:
            sr, bicubic = result
            if bicubic is not None:
                add(bicubic, "bicubic")
            add(sr, "SR")

        return job, on_done


def _as_layer(layer_tuple):
    from napari.layers import Layer

    return Layer.create(*layer_tuple)
