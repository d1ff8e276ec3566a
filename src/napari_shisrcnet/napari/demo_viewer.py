"""Open the demo's results in napari (``shisrcnet demo --open``)."""

from __future__ import annotations


def open_demo(summary: dict) -> None:
    """The slide, the SR result and the tile classes, each where it belongs."""
    import napari

    viewer = napari.Viewer(title="SHISRCNet demo")
    viewer.open(summary["input"], plugin="napari-shisrcnet")
    viewer.open(summary["sr_ome_zarr"], plugin="napari-shisrcnet")
    if "classification_ome_zarr" in summary:
        viewer.open(summary["classification_ome_zarr"], plugin="napari-shisrcnet")
    napari.run()
