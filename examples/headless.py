"""Super-resolve a region and classify tiles without napari, through the Python API.

    python examples/headless.py [SLIDE] [--model default|bicubic|CHECKPOINT]

Without SLIDE, an H&E-like sample slide is generated first.
"""

import argparse
import tempfile
from pathlib import Path

import napari_shisrcnet as shisrcnet
from napari_shisrcnet.io.synthetic import write_synthetic_slide

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("slide", nargs="?")
parser.add_argument("--model", default="default")
parser.add_argument("--sample-px", type=int, default=2048, help="side of the generated sample")
parser.add_argument("--out", default="shisrcnet-example")
args = parser.parse_args()

slide_path = args.slide or write_synthetic_slide(
    Path(tempfile.mkdtemp()) / "sample.tif", (args.sample_px, args.sample_px)
)
model = shisrcnet.load_model(args.model)  # loaded once, reused for every call

# 1. A region into memory: (512, 512, 3) uint8 for a 256 px region at x2.
side = args.sample_px
region = shisrcnet.Region(y=side // 2 - 128, x=side // 2 - 128, height=256, width=256)
sr = shisrcnet.super_resolve(slide_path, model, region=region)
print("SR region:", sr.shape, sr.dtype)

# 2. Tile classification (background skipped) with progress.
if model.can_classify:
    result = shisrcnet.classify_tiles(
        slide_path, model, progress=lambda e: print(f"\r{e.done}/{e.total} tiles", end="")
    )
    print("\ntiles per class:", result.counts())

# 3. The whole slide to OME-Zarr + CSV (+ GeoJSON for QuPath); rerun to resume.
done = shisrcnet.process_slide(
    slide_path, args.out, model, classification=model.can_classify, geojson=model.can_classify
)
print("results:", done.zarr_path, done.summary)
