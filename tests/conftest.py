"""Shared fixtures: generated slides, a tiny checkpoint, and where ../shared/data is."""

from pathlib import Path

import pytest
import torch

from napari_shisrcnet.io.synthetic import write_synthetic_slide
from napari_shisrcnet.model import SHISRCNet, save_checkpoint
from napari_shisrcnet.samples import CMU_SMALL_REGION

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CMU_SVS = CMU_SMALL_REGION  # the real Aperio slide shipped with the package
BREAKHIS = SHARED_DATA / "breakhis"

TINY_SHISRCNET = dict(channels=8, n_blocks=1, width=0.125, fpn_channels=64)

needs_cmu_svs = pytest.mark.skipif(not CMU_SVS.exists(), reason="the bundled sample is absent")
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


@pytest.fixture(scope="session")
def tiny_checkpoint_1um(tmp_path_factory) -> Path:
    """The tiny checkpoint recording its training HR pixel size, 0.5 µm/px: slides are read
    at its LR 1.0 µm/px (the CMU scan's level 0 resampled by 1 / 0.499)."""
    torch.manual_seed(0)
    model = SHISRCNet(scale=2, **TINY_SHISRCNET)
    path = tmp_path_factory.mktemp("models") / "tiny-1um.safetensors"
    return save_checkpoint(model, path, provenance={"hr_crop_px": 128, "hr_mpp": 0.5})


def make_breakhis_tree(root: Path, images_per_patient: int = 3, side_px=(72, 96)) -> Path:
    """A miniature BreaKHis tree in the official layout, with small generated images."""
    import imageio.v3 as iio

    from napari_shisrcnet.io.synthetic import synthetic_he_tile

    layout = {  # (group letter, code, folder name) -> slides (patient ids with slide letters)
        ("B", "A", "adenosis"): ["22549AB", "22549CD", "29960CD"],
        ("B", "F", "fibroadenoma"): ["14134E", "29960AB"],
        ("M", "DC", "ductal_carcinoma"): ["10926", "11031", "13412"],
        ("M", "LC", "lobular_carcinoma"): ["12204", "16196"],
    }
    group_names = {"B": "benign", "M": "malignant"}
    seed = 0
    for (letter, code, folder), slides in layout.items():
        for slide in slides:
            for magnification in (100, 200):
                base = (
                    root
                    / "BreaKHis_v1"
                    / "histology_slides"
                    / "breast"
                    / group_names[letter]
                    / "SOB"
                    / folder
                    / f"SOB_{letter}_{code}_14-{slide}"
                    / f"{magnification}X"
                )
                base.mkdir(parents=True, exist_ok=True)
                for index in range(1, images_per_patient + 1):
                    seed += 1
                    pixels = synthetic_he_tile(seed * 500, 0, *side_px, seed=seed % 7)
                    if letter == "M":  # make malignant visibly different, so it is learnable
                        pixels = (pixels * [0.8, 0.7, 1.0]).astype("uint8")
                    name = f"SOB_{letter}_{code}-14-{slide}-{magnification}-{index:03d}.png"
                    iio.imwrite(base / name, pixels)
    return root


@pytest.fixture(scope="session")
def breakhis_tree(tmp_path_factory) -> Path:
    return make_breakhis_tree(tmp_path_factory.mktemp("breakhis"))
