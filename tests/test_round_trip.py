"""Every result the project writes reopens in place through the plugin's reader."""

import numpy as np
import pytest

from napari_shisrcnet import api
from napari_shisrcnet.io.slides import open_slide
from napari_shisrcnet.napari.reader import get_reader, read_slides
from napari_shisrcnet.napari.writer import write_image_layer, write_labels_layer

REGION = api.Region(128, 192, 256, 320)


@pytest.fixture(scope="module")
def result(tmp_path_factory, pyramid_tiff, tiny_checkpoint):
    out = tmp_path_factory.mktemp("round-trip")
    return api.process_slide(
        pyramid_tiff,
        out,
        tiny_checkpoint,
        region=REGION,
        classification_tile_px=64,
        ome_tiff=True,
        device="cpu",
    )


def _placement(layer_tuple) -> tuple:
    kwargs = layer_tuple[1]
    return (tuple(kwargs["scale"]), tuple(kwargs["translate"]), tuple(kwargs.get("units", ())))


def test_a_result_reopens_over_its_slide_with_labels_and_heatmap(result, pyramid_tiff):
    [slide_layer] = read_slides(str(pyramid_tiff))
    image, labels, heatmap = read_slides(str(result.zarr_path))
    with open_slide(pyramid_tiff) as slide:
        grid = slide.metadata.grid  # 0.5 µm/px from the origin
    sr_grid = grid.coarser(0.5, (REGION.y, REGION.x))  # x2: pixels of half a source pixel
    assert _placement(image) == (sr_grid.scale, sr_grid.translate, grid.units)
    assert _placement(slide_layer) == (grid.scale, grid.translate, grid.units)
    # Tile classes on the region's read pixels: a pyramid whose level 0 has the region's
    # shape, so partial edge tiles end at the region's edge instead of overhanging it.
    pixels = grid.coarser(1, (REGION.y, REGION.x))
    assert labels[2] == "labels"
    assert _placement(labels) == (pixels.scale, pixels.translate, grid.units)
    assert labels[0][-1].shape == (4, 5) and labels[0][0].shape == (256, 320)
    assert labels[1]["features"]["class"] == ["background", "benign", "malignant"]
    colours = labels[1]["colormap"].color_dict
    assert tuple(np.round(np.asarray(colours[2]) * 255)) == (213, 94, 0, 255)  # malignant
    assert heatmap[2] == "image" and heatmap[1]["name"].endswith("p(malignant)")
    assert _placement(heatmap) == _placement(labels) and heatmap[0][-1].shape == (4, 5)


def test_the_ome_tiff_copy_carries_its_position(result):
    [from_zarr] = read_slides(str(result.zarr_path))[:1]
    [from_tiff] = read_slides(str(result.ome_tiff_path))
    (scale, translate, units), expected = _placement(from_tiff), _placement(from_zarr)
    assert scale == pytest.approx(expected[0]) and translate == pytest.approx(expected[1])
    assert units == expected[2] == ("micrometer", "micrometer")


def test_the_label_image_folder_itself_opens_as_labels(result):
    folder = str(result.zarr_path / "labels" / "tile_classes")
    assert get_reader(folder) is not None
    [(data, kwargs, kind)] = read_slides(folder)
    assert kind == "labels" and data.shape == (4, 5) and "class" in kwargs["features"]


def test_labels_saved_by_the_writer_reopen_in_place(tmp_path):
    labels = np.arange(20, dtype=np.uint8).reshape(4, 5)
    meta = {"name": "classes", "scale": (32.0, 32.0), "translate": (15.75, 40.25)}
    meta["units"] = ("micrometer", "micrometer")
    [path] = write_labels_layer(str(tmp_path / "saved"), labels, meta)
    [(data, kwargs, kind)] = read_slides(path)
    assert kind == "labels" and kwargs["name"].endswith("classes")
    np.testing.assert_array_equal(data[0] if isinstance(data, list) else data, labels)
    assert tuple(kwargs["scale"]) == (32.0, 32.0)
    assert tuple(kwargs["translate"]) == (15.75, 40.25)


def test_saved_images_reopen_in_place(tmp_path):
    image = np.zeros((300, 200, 3), np.uint8)
    meta = {"rgb": True, "scale": (0.25, 0.25), "translate": (100.0, 40.0)}
    meta["units"] = ("micrometer", "micrometer")
    [path] = write_image_layer(str(tmp_path / "saved"), image, meta)
    [reopened] = read_slides(path)
    assert _placement(reopened) == ((0.25, 0.25), (100.0, 40.0), ("micrometer", "micrometer"))


def test_without_a_pixel_size_no_unit_is_invented(tmp_path):
    import imageio.v3 as iio

    png = tmp_path / "scan.png"
    iio.imwrite(png, np.full((96, 128, 3), 200, np.uint8))
    result = api.process_slide(png, tmp_path / "out", "bicubic", classification=False)
    [source] = read_slides(str(png))
    [sr] = read_slides(str(result.zarr_path))
    assert "units" not in source[1] and "units" not in sr[1]
    assert tuple(sr[1]["scale"]) == (0.5, 0.5) and tuple(sr[1]["translate"]) == (-0.25, -0.25)
