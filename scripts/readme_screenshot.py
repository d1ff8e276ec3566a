"""Make docs/images/napari-shisrcnet.png: the bundled real slide, its tile classes and an SR
region drawn as a rectangle.

xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python scripts/readme_screenshot.py \
    [--model CHECKPOINT] [--out PNG]
"""

import argparse
import time

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="default")
parser.add_argument("--out", default="docs/images/napari-shisrcnet.png")
args = parser.parse_args()

viewer = napari.Viewer(show=True)
viewer.window.resize(1700, 1050)
[slide] = viewer.open_sample("napari-shisrcnet", "cmu_he")
_, classify = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Classify tiles")
_, sr = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Super-resolve")
for widget in (classify, sr):
    widget.synchronous = True
    widget.image.value = slide
    if args.model not in widget.model.choices:
        widget.model.value = "checkpoint file…"
        widget.checkpoint.value = args.model
    widget.device.value = "cpu"
classify.extent.value = "whole level"
started = time.perf_counter()
classify.run()
print("classified:", classify.status.value, f"{time.perf_counter() - started:.1f} s")
corners_um = np.array([[560, 380], [560, 620], [760, 620], [760, 380]], float)  # (y, x)
viewer.add_shapes(
    [corners_um],
    shape_type="rectangle",
    edge_color="yellow",
    face_color="transparent",
    edge_width=3,
    name="region",
    units=("micrometer", "micrometer"),
)
sr.extent.value = "drawn rectangle"
sr.compare.value = False
sr.run()
viewer.camera.center, viewer.camera.zoom = (660, 500), 1.2
for _ in range(40):  # let napari load the pyramid level for this view
    QApplication.processEvents()
    time.sleep(0.05)
viewer.screenshot(args.out, canvas_only=False, flash=False)
print("wrote", args.out)
