"""The "Super-resolve" dock widget."""

from __future__ import annotations

import napari
from magicgui.widgets import CheckBox, ComboBox, SpinBox

from ...engine.super_resolution import DEFAULT_HALO_PX
from ..layers import sr_layer
from .common import JobWidget


class SuperResolveWidget(JobWidget):
    """Super-resolve the field of view, a drawn rectangle or a whole level of an image."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, "super-resolution")
        self.scale = ComboBox(label="scale (bicubic)", choices=[2, 4, 8], value=2)
        # 0: what suits the device (engine.super_resolution.default_sr_tile_px).
        self.tile_px = SpinBox(label="tile (px, 0 = auto)", min=0, max=2048, step=32, value=0)
        self.compare = CheckBox(label="add bicubic layer", value=True)
        self.extend(
            [
                *self._common_widgets(),
                self.scale,
                self.tile_px,
                self.compare,
                *self._control_widgets(),
            ]
        )

    def prepare(self):
        from ...api import load_model, super_resolve

        layer, slide, level, grid = self.source()
        region = self.region(slide, level, grid)
        bicubic_only = self.model_spec() == "bicubic"
        model = self.tile_model(int(self.scale.value) if bicubic_only else None)
        if not model.can_super_resolve:
            raise ValueError("this checkpoint has no SR module")
        scale = model.scale
        self.check_output_size(region, scale)
        comparison = (
            load_model("bicubic", "cpu", scale) if self.compare.value and not bicubic_only else None
        )

        tile_px = int(self.tile_px.value) or None  # read widgets here, never in the worker

        def job(progress, cancel):
            common = dict(
                level=level, region=region, tile_px=tile_px, halo_px=DEFAULT_HALO_PX, cancel=cancel
            )
            sr = super_resolve(slide, model, progress=progress, **common)
            bicubic = super_resolve(slide, comparison, **common) if comparison else None
            return sr, bicubic

        def on_done(result) -> None:
            sr, bicubic = result
            name = f"{layer.name} SR x{scale}"
            if bicubic is not None:
                self.viewer.add_layer(
                    _as_layer(
                        sr_layer(bicubic, grid, region, scale, f"{layer.name} bicubic x{scale}")
                    )
                )
            self.viewer.add_layer(_as_layer(sr_layer(sr, grid, region, scale, name)))

        return job, on_done


def _as_layer(layer_tuple):
    from napari.layers import Layer

    return Layer.create(*layer_tuple)
