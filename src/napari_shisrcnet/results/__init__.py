"""What the engine writes: the OME-Zarr result and its resume state, the output pyramid,
tile tables (CSV, GeoJSON) and OME-TIFF copies. Imports run one way: slide readers ->
engine -> results -> api."""
