import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from napari_shisrcnet.engine.inference import TileModel
from napari_shisrcnet.engine.super_resolution import array_core_writer, super_resolve_region
from napari_shisrcnet.engine.tiling import TileGrid, read_window
from napari_shisrcnet.geometry import Region


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    tile_px=st.integers(1, 128),
    halo_px=st.integers(0, 40),
    y=st.integers(0, 50),
    x=st.integers(0, 50),
)
def test_grid_covers_every_pixel_exactly_once(height, width, tile_px, halo_px, y, x):
    grid = TileGrid(Region(y, x, height, width), tile_px, halo_px)
    cover = np.zeros((y + height, x + width), np.int32)
    window_shapes = set()
    for tile in grid.tiles():
        y0, y1, x0, x1 = tile.core
        cover[y0:y1, x0:x1] += 1
        wy0, wy1, wx0, wx1 = tile.window
        window_shapes.add((wy1 - wy0, wx1 - wx0))
        # The window holds the core plus at least... the core, and stays within the halo band.
        assert wy0 <= y0 and y1 <= wy1 and wx0 <= x0 and x1 <= wx1
        assert wy0 >= y - halo_px and wy1 <= y + height + halo_px
        assert wx0 >= x - halo_px and wx1 <= x + width + halo_px
    assert np.all(cover[y:, x:] == 1) and cover.sum() == height * width
    assert window_shapes == {grid.window_shape}  # one shape: batches and compiles cleanly
    assert len(grid.tiles()) == grid.shape[0] * grid.shape[1]


def test_interior_cores_get_the_full_halo():
    grid = TileGrid(Region(0, 0, 100, 100), tile_px=32, halo_px=8)
    tile = next(t for t in grid.tiles() if (t.row, t.column) == (1, 1))
    assert tile.core == (32, 64, 32, 64) and tile.window == (24, 72, 24, 72)


def test_read_window_reflects_beyond_the_border():
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    padded = np.pad(image, ((6, 6), (6, 6), (0, 0)), mode="reflect")
    window = (-6, 20, 30, 56)
    expected = padded[0:26, 36:62]
    np.testing.assert_array_equal(read_window(image, window), expected)


class PlainCNN(nn.Module):
    """Convs only (receptive-field radius 4 LR px) + pixel shuffle: tiling must be exact."""

    scale = 2

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 5, padding=2),
            nn.ReLU(),
            nn.Conv2d(8, 12, 3, padding=1),
            nn.PixelShuffle(2),
        )

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def _tiled(model, image, tile_px, halo_px):
    region = Region.whole(image.shape[:2])
    out = np.zeros((image.shape[0] * 2, image.shape[1] * 2, 3), np.uint8)
    super_resolve_region(
        image,
        region,
        model,
        array_core_writer(out, region, 2),
        tile_px=tile_px,
        halo_px=halo_px,
        batch_size=3,
    )
    return out


def _whole(model, image, pad):
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = model.super_resolve(padded[None])[0]
    return out[2 * pad : 2 * (pad + image.shape[0]), 2 * pad : 2 * (pad + image.shape[1])]


def test_crop_and_stitch_reproduces_whole_image_inference_for_a_plain_cnn():
    image = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    model = TileModel(PlainCNN(), "cpu")
    difference = np.abs(_tiled(model, image, 32, 4).astype(int) - _whole(model, image, 4))
    # Same arithmetic per pixel; at most a rare 1-level rounding flip from float summation order.
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
    # With less halo than the receptive field, tiles visibly disagree: the test can fail.
    too_small = np.abs(_tiled(model, image, 32, 1).astype(int) - _whole(model, image, 4))
    assert too_small.max() >= 3 and (too_small > 0).mean() > 0.05


@pytest.mark.parametrize("scale", [2, 4])
def test_super_resolve_region_output_is_scale_times_input(scale):
    from napari_shisrcnet.model import BicubicSR

    image = np.random.default_rng(2).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    model = TileModel(BicubicSR(scale), "cpu")
    region = Region(5, 7, 30, 40)
    out = np.zeros((30 * scale, 40 * scale, 3), np.uint8)
    super_resolve_region(
        image, region, model, array_core_writer(out, region, scale), tile_px=16, halo_px=4
    )
    whole = model.super_resolve(np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")[None])[0]
    expected = whole[(4 + 5) * scale : (4 + 35) * scale, (4 + 7) * scale : (4 + 47) * scale]
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_srmfenet_tiles_stay_within_the_documented_bound():
    """docs/tiling.md: halo >= 16 LR px keeps tiled SR within 1 level of whole-image SR."""
    from skimage.data import immunohistochemistry

    from napari_shisrcnet.model import SRMFENet

    torch.manual_seed(0)
    model = TileModel(SRMFENet(scale=2), "cpu")  # the default 64-channel network
    image = immunohistochemistry()[200:296, 150:246]
    difference = np.abs(_tiled(model, image, 48, 32).astype(int) - _whole(model, image, 64))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_band_order_is_the_same_tiles_band_by_band_row_by_row():
    grid = TileGrid(Region(0, 0, 50, 70), tile_px=10)  # 5 rows x 7 columns
    banded = grid.tiles_in_bands(band_px=30)  # bands of 3 columns: 0-2, 3-5, 6
    assert sorted(t.index for t in banded) == list(range(35))
    assert [(t.row, t.column) for t in banded[:4]] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [(t.row, t.column) for t in banded[15:17]] == [(0, 3), (0, 4)]
    assert [(t.row, t.column) for t in banded[-2:]] == [(3, 6), (4, 6)]


def test_tile_and_batch_defaults_follow_the_device(monkeypatch):
    from types import SimpleNamespace

    from napari_shisrcnet.engine.classification import default_classification_batch_size
    from napari_shisrcnet.engine.super_resolution import default_batch_size, default_sr_tile_px

    cpu = SimpleNamespace(device=torch.device("cpu"), scale=2)
    assert default_sr_tile_px(cpu) == 256 and default_batch_size(cpu, (320, 320)) == 1
    assert default_classification_batch_size(cpu, 96) == 8
    # A CUDA device with 80 GB free (no GPU needed: only its free memory is asked).
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (80e9, 80e9))
    gpu = SimpleNamespace(device=torch.device("cuda"), scale=2)
    assert default_sr_tile_px(gpu) == 512
    # 576^2 windows x2: 1.33 M output px x 64 ch x fp16 x 8 live = 1.36 GB; half of 80 GB.
    assert default_batch_size(gpu, (576, 576)) == 29
    assert default_classification_batch_size(gpu, 96) == 64  # capped
