"""Tiled inference: grids with halos, the batched device pipeline, tissue detection."""
