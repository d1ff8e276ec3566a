"""Shared fixtures: generated slides, a tiny checkpoint, and where ../shared/data is."""

from pathlib import Path

import pytest
import torch

from napari_shisrcnet.io.synthetic import write_synthetic_slide
from napari_shisrcnet.model import SHISRCNet, save_checkpoint

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CMU_SVS = SHARED_DATA / "slides" / "CMU-1-Small-Region.svs"
BREAKHIS = SHARED_DATA / "breakhis"

TINY_SHISRCNET = dict(channels=8, n_blocks=1, width=0.125, fpn_channels=64)

needs_cmu_svs = pytest.mark.skipif(not CMU_SVS.exists(), reason="../shared/data/slides absent")
needs_breakhis = pytest.mark.skipif(not BREAKHIS.exists(), reason="../shared/data/breakhis absent")


@pytest.fixture(scope="session")
def pyramid_tiff(tmp_path_factory) -> Path:
    """A 1200 x 1600 px, 2-level tiled TIFF at 0.5 µm/px with tissue and glass."""
    path = tmp_path_factory.mktemp("slides") / "synthetic.tif"
    return write_synthetic_slide(path, (1200, 1600), mpp=0.5, tile_px=256, n_levels=2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """An untrained, tiny x2 binary SHISRCNet checkpoint (fast on a CPU)."""
    torch.manual_seed(0)
    model = SHISRCNet(scale=2, **TINY_SHISRCNET)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    return save_checkpoint(model, path, provenance={"hr_crop_px": 128})
