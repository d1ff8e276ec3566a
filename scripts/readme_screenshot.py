"""Make docs/images/napari-shisrcnet.png: the synthetic sample, an SR region and tile classes.

xvfb-run -a python scripts/readme_screenshot.py [--model CHECKPOINT]
"""

import argparse
import time

import napari
from qtpy.QtWidgets import QApplication

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="default")
parser.add_argument("--out", default="docs/images/napari-shisrcnet.png")
args = parser.parse_args()

viewer = napari.Viewer(show=True)
viewer.window.resize(1400, 900)
viewer.open_sample("napari-shisrcnet", "synthetic_he")
_, classify = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Classify tiles")
_, sr = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Super-resolve", tabify=True)
for widget in (classify, sr):
    widget.synchronous = True
    if args.model not in widget.model.choices:
        widget.model.value = "checkpoint file…"
        widget.checkpoint.value = args.model
    widget.device.value = "cpu"
classify.extent.value, classify.level.value = "whole level", 1
classify.run()
viewer.camera.center, viewer.camera.zoom = (1000, 700), 2.0  # zoom into tissue
sr.extent.value = "field of view"
sr.compare.value = False
sr.run()
viewer.layers.move(viewer.layers.index("synthetic H&E classes"), len(viewer.layers))
viewer.camera.center, viewer.camera.zoom = (1024, 1100), 0.36  # the whole sample
for _ in range(40):  # let napari load the pyramid level for this view
    QApplication.processEvents()
    time.sleep(0.05)
viewer.screenshot(args.out, canvas_only=False, flash=False)
print("wrote", args.out)
