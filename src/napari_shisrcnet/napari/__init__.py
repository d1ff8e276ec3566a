"""The thin napari layer: manifest contributions that call the core."""
