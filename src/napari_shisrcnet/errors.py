"""Errors the user can act on, naming the setting to change (a leaf module).

The core speaks of settings in words ("the SR halo", "overwrite it"), never as command-line
flags or widget labels: the same message reaches a napari notification and a terminal.
``options`` names the :class:`~napari_shisrcnet.settings.SlideJobSettings` fields (or the
call's arguments) involved, so each caller can point at them its own way (the CLI appends
its flags).
"""

from __future__ import annotations


class OptionError(ValueError):
    """A choice that cannot work; ``options`` are the settings or arguments to change."""

    def __init__(self, message: str, *options: str) -> None:
        super().__init__(message)
        self.options: tuple[str, ...] = options

    def __reduce__(self):  # keep ``options`` when sent back from a dask worker
        return (type(self), (str(self), *self.options))
