""" "Use this model": the Train widget hands its best checkpoint to the job widgets.

An explicit signal instead of a list of widgets: job widgets connect to
``MODEL_HANDOVER.chosen`` when they are made (psygnal keeps weak references, so a closed
widget is dropped), and the Train widget emits the checkpoint's path.
"""

from __future__ import annotations

from psygnal import Signal


class ModelHandover:
    """Carries ``chosen(path)``: use this checkpoint from now on."""

    chosen = Signal(str)


MODEL_HANDOVER = ModelHandover()
