"""Bundled model weights (safetensors) live here."""
