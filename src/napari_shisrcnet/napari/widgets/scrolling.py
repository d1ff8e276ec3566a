"""Dock widgets that scroll instead of growing the window."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject


class _FitWidth(QObject):
    """Keeps a scroll area as wide as its form's minimum whenever the form's layout changes
    (a summary line written after a run would otherwise be cut off on the right)."""

    def __init__(self, area) -> None:
        super().__init__(area)
        self.area = area

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:
            bar = self.area.verticalScrollBar().sizeHint().width()
            self.area.setMinimumWidth(watched.minimumSizeHint().width() + bar + 4)
        return False


class ScrollsInDock:
    """Mixin that makes a magicgui ``Container`` scrollable when docked in napari.

    napari docks a magicgui widget's ``.native``; for a scrollable Container that is the form
    *inside* the QScrollArea, so the scroll area is dropped and the dock column grows taller
    than the screen (napari#4579, magicgui#431). Handing napari the scroll area itself keeps
    it; the form stays reachable as ``native.widget()``. Only the height scrolls: the area
    keeps the form's width.
    """

    root_native_widget: Any

    def __init__(self, **container_options: Any) -> None:
        super().__init__(scrollable=True, **container_options)  # type: ignore[call-arg]
        area = self.root_native_widget
        area.widget().installEventFilter(_FitWidth(area))

    @property
    def native(self) -> Any:
        return self.root_native_widget
