"""Dock widgets (thin: they call napari_shisrcnet.api in workers)."""
