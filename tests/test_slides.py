from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile
import zarr

from conftest import CMU_SVS, needs_cmu_svs
from napari_shisrcnet.engine.tiling import TileGrid, read_window
from napari_shisrcnet.geometry import Region
from napari_shisrcnet.io import tile_cache
from napari_shisrcnet.io.rgb_level import RGBLevel
from napari_shisrcnet.io.slides import SlideError, open_slide


def test_pyramidal_tiff_is_lazy_tiled_and_physical(pyramid_tiff):
    with open_slide(pyramid_tiff) as slide:
        assert slide.metadata.level_shapes == ((1200, 1600), (600, 800))
        assert slide.metadata.level_downsamples == (1.0, 2.0)
        assert slide.metadata.mpp == pytest.approx(0.5)
        assert slide.metadata.level_mpp(1) == pytest.approx(1.0)
        level0 = slide.levels[0]
        assert (level0.dtype, level0.chunksize) == (np.uint8, (256, 256, 3))
        assert level0[:256, :256].compute().std() > 0


@needs_cmu_svs
def test_cmu_aperio_svs():
    with open_slide(CMU_SVS) as slide:
        meta = slide.metadata
        assert (meta.format, meta.level_shapes[0]) == ("svs", (2967, 2220))
        assert meta.mpp == pytest.approx(0.499)
        assert meta.objective_power == 20
        assert slide.levels[0].chunksize == (240, 240, 3)  # the file's JPEG tiles
        assert slide.levels[0][1000:1100, 1000:1100].compute().mean() < 240  # tissue, decoded


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "image.ome.tif"
    tifffile.imwrite(
        path,
        np.full((64, 80, 3), 200, np.uint8),
        photometric="rgb",
        metadata={"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25},
    )
    with open_slide(path) as slide:
        assert slide.metadata.format == "ome-tiff"
        assert slide.metadata.mpp == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("pixels", "expected"),
    [
        (np.dstack([np.full((8, 8, 3), 90, np.uint8), np.zeros((8, 8, 1), np.uint8)]), 90),  # RGBA
        (np.full((8, 8), 77, np.uint8), 77),  # grey
        (np.full((8, 8, 3), 257 * 100, np.uint16), 100),  # 16-bit scaled
    ],
    ids=["rgba", "grey", "uint16"],
)
def test_channels_and_depths_become_rgb_uint8(tmp_path, pixels, expected):
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack")
    with open_slide(path) as slide:
        rgb = slide.levels[0].compute()
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert np.all(rgb == expected)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_png_and_jpeg(tmp_path, suffix):
    import imageio.v3 as iio

    pixels = np.zeros((50, 70, 3), np.uint8)
    pixels[..., 0] = 200
    iio.imwrite(tmp_path / f"image{suffix}", pixels)
    with open_slide(tmp_path / f"image{suffix}") as slide:
        assert slide.levels[0].shape == (50, 70, 3)
        assert abs(int(slide.levels[0][25, 35, 0].compute()) - 200) <= 3
        assert slide.metadata.mpp is None


def test_ome_zarr_written_by_us_reads_back(tmp_path):
    group = zarr.open_group(tmp_path / "x.ome.zarr", mode="w", zarr_format=2)
    group.create_array("0", data=np.full((3, 40, 30), 9, np.uint8))
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 0.3, 0.3]}],
                }
            ],
        }
    ]
    with open_slide(tmp_path / "x.ome.zarr") as slide:
        assert slide.levels[0].shape == (40, 30, 3)
        assert slide.metadata.mpp == pytest.approx(0.3)


def _assert_slide_error(path, match):
    with pytest.raises(SlideError, match=match) as caught:
        open_slide(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    _assert_slide_error(tmp_path / "slide.svs", "file not found")


def test_unsupported_type(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    _assert_slide_error(tmp_path / "notes.txt", "unsupported file type")


def test_corrupt_tiff(tmp_path):
    (tmp_path / "broken.svs").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    _assert_slide_error(tmp_path / "broken.svs", "not a readable TIFF|cannot read")


def test_five_channels(tmp_path):
    path = tmp_path / "multiplex.tif"
    tifffile.imwrite(path, np.zeros((5, 16, 16), np.uint8), photometric="minisblack")
    _assert_slide_error(path, "has 5 image planes")


def test_folder_that_is_not_a_slide(tmp_path):
    _assert_slide_error(tmp_path, "is a folder, not a slide")


def _expected_rgb(yxc: np.ndarray) -> np.ndarray:
    """The conversion spelled out for one (Y, X, C) array: grey -> RGB, alpha off, to uint8."""
    rgb = np.repeat(yxc[..., :1], 3, -1) if yxc.shape[-1] < 3 else yxc[..., :3]
    if rgb.dtype == np.uint16:
        return (rgb // 257).astype(np.uint8)
    if rgb.dtype.kind == "f":
        return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    return rgb


@pytest.mark.parametrize(
    ("axes", "shape", "dtype"),
    [
        ("YXS", (37, 45, 4), np.uint8),
        ("YXS", (37, 45, 2), np.uint8),  # grey + alpha
        ("YXC", (37, 45, 3), np.float64),
        ("CYX", (3, 37, 45), np.uint16),
        ("SYX", (2, 37, 45), np.uint8),
        ("YX", (37, 45), np.float32),
        ("TCZYX", (1, 3, 1, 37, 45), np.uint16),
    ],
)
def test_rgb_level_windows_match_the_dask_level(axes, shape, dtype):
    rng = np.random.default_rng(0)
    stored = (
        rng.random(shape) * (1.2 if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).max)
    ).astype(dtype)
    level = RGBLevel(zarr.array(stored, chunks=tuple(min(s, 16) for s in shape)), axes, "x.tif")
    yxc = np.moveaxis(stored.squeeze(), 0, -1) if axes[0] in "CST" else stored
    expected = _expected_rgb(yxc if yxc.ndim == 3 else yxc[..., None])
    window = level[5:30, 7:41]
    assert window.shape == (25, 34, 3) and window.dtype == np.uint8
    np.testing.assert_array_equal(window, expected[5:30, 7:41])
    np.testing.assert_array_equal(level.as_dask(16).compute(), expected)
    assert level.as_dask(16).chunksize == (16, 16, 3)  # the stored chunks


@pytest.fixture
def store_reads(monkeypatch) -> list[str]:
    """Keys the TIFF zarr store is asked for, i.e. file tiles decoded (plus metadata)."""
    pytest.importorskip("zarr.experimental.cache_store")  # without it: correct, only slower
    from tifffile.zarr import ZarrTiffStore

    fetched = []
    original_get = ZarrTiffStore.get

    async def counted_get(self, key, *args, **kwargs):
        fetched.append(key)
        return await original_get(self, key, *args, **kwargs)

    monkeypatch.setattr(ZarrTiffStore, "get", counted_get)
    return fetched


def test_overlapping_windows_decode_each_file_tile_once(pyramid_tiff, store_reads):
    with open_slide(pyramid_tiff) as slide:  # level 0: 1200 x 1600 px in 256 px file tiles
        tiles = TileGrid(Region(0, 0, 1200, 1600), tile_px=128, halo_px=32).tiles()
        windows = [read_window(slide.tile_sources[0], tile.window) for tile in tiles]
        reference = slide.levels[0].compute()
    chunk_reads = [key for key in store_reads if key.startswith("0/") and key[2] != "."]
    assert len(windows) == 130  # every 192 px window overlaps up to 4 file tiles...
    assert len(chunk_reads) == len(set(chunk_reads)) == 5 * 7  # ...each decoded once
    tile = tiles[17]
    np.testing.assert_array_equal(windows[17], read_window(reference, tile.window))


def test_reopened_files_get_new_dask_names_and_close_empties_the_tile_cache(pyramid_tiff):
    first = open_slide(pyramid_tiff)
    first.levels[0][:300, :300].compute()
    assert first._tile_cache.cache_info()["current_size"] > 0
    first.close()
    assert first._tile_cache.cache_info()["current_size"] == 0
    with open_slide(pyramid_tiff) as second:  # napari caches dask chunks by name
        assert second.levels[0].name != first.levels[0].name
        np.testing.assert_array_equal(np.asarray(second.tile_sources[1]), second.levels[1])
        with pytest.raises(IndexError, match="3 dimensions"):
            second.tile_sources[0][0:5, 0:5, :, 0:1]


def test_band_order_keeps_a_wide_level_inside_a_small_tile_cache(
    pyramid_tiff, store_reads, monkeypatch
):
    # Room for 10 of the level's 35 file tiles (256 px): less than the two rows of 7 that
    # windows in row order need, more than a 512 px band's ~4 columns x 2 rows.
    monkeypatch.setattr(tile_cache, "DECODED_TILE_CACHE_BYTES", 10 * 256 * 256 * 3)
    grid = TileGrid(Region(0, 0, 1200, 1600), tile_px=128, halo_px=32)
    decodes = {}
    for order, tiles in (("rows", grid.tiles()), ("bands", grid.tiles_in_bands(512))):
        store_reads.clear()
        with open_slide(pyramid_tiff) as slide:
            for tile in tiles:
                read_window(slide.tile_sources[0], tile.window)
        decodes[order] = sum(key.startswith("0/") and key[2] != "." for key in store_reads)
    assert decodes["bands"] <= 2 * 35 < 3 * 35 <= decodes["rows"]


def test_threads_missing_one_file_tile_at_once_share_its_decode(
    pyramid_tiff, store_reads, monkeypatch
):
    # As on a many-core machine: tifffile decodes in worker threads, so misses overlap.
    aszarr = tifffile.TiffPageSeries.aszarr
    monkeypatch.setattr(
        tifffile.TiffPageSeries, "aszarr", lambda self, **kw: aszarr(self, maxworkers=4, **kw)
    )
    tiles = TileGrid(Region(0, 0, 1200, 1600), tile_px=128, halo_px=32).tiles()
    with open_slide(pyramid_tiff) as slide, ThreadPoolExecutor(4) as readers:
        windows = list(readers.map(lambda t: read_window(slide.tile_sources[0], t.window), tiles))
        reference = slide.levels[0].compute()
    chunk_reads = [key for key in store_reads if key.startswith("0/") and key[2] != "."]
    assert len(chunk_reads) == len(set(chunk_reads)) == 5 * 7
    for index in (0, 64, 129):
        np.testing.assert_array_equal(windows[index], read_window(reference, tiles[index].window))
