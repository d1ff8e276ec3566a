"""Training, metrics and evaluation (no Qt, no napari)."""
