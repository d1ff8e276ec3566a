"""The "Classify tiles" dock widget."""

from __future__ import annotations

import napari
from magicgui.widgets import CheckBox, FloatSlider, FloatSpinBox, Label, PushButton, SpinBox

from ...settings import SlideJobSettings
from ..layers import class_summary, classification_layers
from .job_widget import JobWidget


class ClassifyTilesWidget(JobWidget):
    """Classify the tissue tiles of an extent; show a class overlay, a heatmap and a summary."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, "classification")
        defaults = SlideJobSettings()
        # 0: the model's training field of view (SlideJobSettings.classification_tile_px).
        self.tile_px = SpinBox(label="tile (px, 0 = model's)", min=0, max=4096, value=0)
        self.min_tissue = FloatSpinBox(
            label="min. tissue fraction",
            min=0.0,
            max=1.0,
            step=0.05,
            value=defaults.min_tissue_fraction,
        )
        self.heatmap = CheckBox(label="add probability heatmap", value=True)
        self.opacity = FloatSlider(label="overlay opacity", min=0.0, max=1.0, value=0.5)
        self.summary = Label(label="summary", value="")
        self.export_csv = PushButton(text="Export CSV…", enabled=False)
        self.export_geojson = PushButton(text="Export GeoJSON…", enabled=False)
        self.opacity.changed.connect(self._on_opacity)
        self.export_csv.changed.connect(lambda _: self._export("csv"))
        self.export_geojson.changed.connect(lambda _: self._export("geojson"))
        self.extend(
            [
                *self._common_widgets(),
                self.tile_px,
                self.min_tissue,
                self.heatmap,
                self.opacity,
                *self._control_widgets(),
                self.summary,
                self.export_csv,
                self.export_geojson,
            ]
        )
        self.result = None
        self._layers: list = []
        self._tile_um: float | None = None

    def prepare(self):
        from ...api import classify_tiles

        model = self.tile_model()
        if not model.can_classify:
            raise ValueError("this model has no classifier; choose a SHISRCNet checkpoint")
        source = self.source(model)
        settings = self.settings(source).replace(
            super_resolution=False,
            classification_tile_px=int(self.tile_px.value) or None,
            min_tissue_fraction=float(self.min_tissue.value),
        )
        heatmap, opacity = self.heatmap.value, self.opacity.value

        def job(progress, cancel):
            result = classify_tiles(source.slide, model, settings, progress=progress, cancel=cancel)
            # The layers are made here, off the GUI thread: the first napari Labels layer
            # of a session imports and sets up a good deal (pandas, scipy, pint).
            layers = [
                napari.layers.Layer.create(*t)
                for t in classification_layers(
                    result, source.grid, settings.region, source.layer.name, heatmap, opacity
                )
            ]
            return result, layers

        def on_done(outcome) -> None:
            result, layers = outcome
            self._show(result, layers, source)

        return job, on_done

    def _show(self, result, layers: list, source) -> None:
        """Add the overlay (and heatmap), and remember the result for the exports."""
        units = source.grid.units
        in_micrometres = units is not None and "micrometer" in str(units[-1])
        self.result = result
        self._level_downsample = source.downsample  # level-0 px per px read (resampled too)
        self._mpp = float(source.layer.scale[-1]) if in_micrometres else None
        self._tile_um = result.grid.tile_px * source.grid.scale[1] if in_micrometres else None
        self._layers = [self.viewer.add_layer(layer) for layer in layers]
        for layer in self._layers:  # the heatmap's scale, shown while the heatmap is
            if isinstance(layer, napari.layers.Image):
                layer.colorbar.visible = True
        self.summary.value = class_summary(result, self._tile_um)
        self.export_csv.enabled = self.export_geojson.enabled = True

    def _on_opacity(self, value: float) -> None:
        for layer in self._layers:
            if layer in self.viewer.layers:
                layer.opacity = value

    def _export(self, kind: str, path: str | None = None) -> str | None:
        """Write the last result's tiles as CSV or GeoJSON (asks for a path when not given)."""
        from ...classes import class_colors
        from ...results.tables import tile_rows, write_tile_csv, write_tile_geojson

        if self.result is None:
            return None
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            suffix = "csv" if kind == "csv" else "geojson"
            path, _ = QFileDialog.getSaveFileName(None, f"Export {suffix}", f"tiles.{suffix}")
            if not path:
                return None
        rows = tile_rows(self.result, self._level_downsample, self._mpp)
        names = self.result.class_names
        if kind == "csv":
            write_tile_csv(path, rows, names)
        else:
            write_tile_geojson(path, rows, dict(zip(names, class_colors(names), strict=True)))
        return path
