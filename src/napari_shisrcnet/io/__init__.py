"""Slide and image I/O: lazy pyramids in, OME-Zarr results out."""
