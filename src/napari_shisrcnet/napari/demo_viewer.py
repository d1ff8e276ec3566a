"""Open the demo's results in napari (``shisrcnet demo --open``)."""

from __future__ import annotations

import zarr

from ..io.zarr_nodes import array_at, attributes, group_at


def labels_layer_from_result(zarr_path: str):
    """The tile-class labels of a result folder as a napari Labels layer (colours, names, place)."""
    import napari
    from napari.utils.colormaps import DirectLabelColormap

    group = group_at(zarr.open_group(zarr_path, mode="r"), "labels/tile_classes")
    attrs = attributes(group)
    transforms = attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"]
    scale = next(t["scale"] for t in transforms if t["type"] == "scale")[-2:]
    translate = next(t["translation"] for t in transforms if t["type"] == "translation")[-2:]
    label_info = attrs["image-label"]
    colors = {0: (0, 0, 0, 0), None: (0, 0, 0, 0)}
    colors.update({c["label-value"]: [v / 255 for v in c["rgba"]] for c in label_info["colors"]})
    names = ["background"] + [p["class"] for p in label_info["properties"]]
    return napari.layers.Labels(
        array_at(group, "0")[0],
        name="tile classes",
        scale=scale,
        translate=translate,
        opacity=0.5,
        colormap=DirectLabelColormap(color_dict=colors),
        features={"index": list(range(len(names))), "class": names},
    )


def open_demo(summary: dict) -> None:
    import napari

    viewer = napari.Viewer(title="SHISRCNet demo")
    viewer.open(summary["input"], plugin="napari-shisrcnet")
    viewer.open(summary["sr_ome_zarr"], plugin="napari-shisrcnet")
    if "classification_ome_zarr" in summary:
        viewer.add_layer(labels_layer_from_result(summary["classification_ome_zarr"]))
    napari.run()
