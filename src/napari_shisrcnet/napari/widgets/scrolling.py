"""Dock widgets that scroll instead of growing the window."""

from __future__ import annotations

from typing import Any


class ScrollsInDock:
    """Mixin for a magicgui ``Container(scrollable=True)`` docked in napari.

    napari docks a magicgui widget's ``.native``; for a scrollable Container that is the form
    *inside* the QScrollArea, so the scroll area is dropped and the dock column grows taller
    than the screen (napari#4579, magicgui#431). Handing napari the scroll area itself keeps
    it; the form stays reachable as ``native.widget()``.
    """

    root_native_widget: Any

    @property
    def native(self) -> Any:
        return self.root_native_widget
