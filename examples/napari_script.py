"""Open a slide in napari, super-resolve the centre and overlay tile classes, from a script.

python examples/napari_script.py [SLIDE] [--model default|CHECKPOINT]
"""

import argparse
import tempfile
from pathlib import Path

import napari

import napari_shisrcnet as shisrcnet
from napari_shisrcnet.io.synthetic import write_synthetic_slide
from napari_shisrcnet.napari.layers import classification_layers, sr_layer
from napari_shisrcnet.napari.reader import layer_tuple
from napari_shisrcnet.napari.widgets.job_widget import layer_grid

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("slide", nargs="?")
parser.add_argument("--model", default="default")
parser.add_argument("--sample-px", type=int, default=2048, help="side of the generated sample")
args = parser.parse_args()

slide_path = args.slide or write_synthetic_slide(
    Path(tempfile.mkdtemp()) / "sample.tif", (args.sample_px, args.sample_px)
)
viewer = napari.Viewer()
source = viewer.add_layer(napari.layers.Layer.create(*layer_tuple(slide_path)))
model = shisrcnet.load_model(args.model)
grid = layer_grid(source)  # where level-0 pixels lie in the viewer (µm when known)

with shisrcnet.open_slide(slide_path) as slide:
    height, width = slide.shape
    region = shisrcnet.Region(height // 2 - 128, width // 2 - 128, 256, 256)
    sr = shisrcnet.super_resolve(slide, model, region=region)
    viewer.add_layer(napari.layers.Layer.create(*sr_layer(sr, grid, region, model.scale, "SR")))
    if model.can_classify:
        result = shisrcnet.classify_tiles(slide, model)
        whole = shisrcnet.Region(0, 0, height, width)
        for layer_data in classification_layers(result, grid, whole, "slide"):
            viewer.add_layer(napari.layers.Layer.create(*layer_data))

napari.run()
