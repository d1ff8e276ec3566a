"""Form fields with the precision their values need."""

from __future__ import annotations

from magicgui.widgets import FloatSpinBox


def precise_float(decimals: int, **options) -> FloatSpinBox:
    """A FloatSpinBox showing ``decimals`` decimals. Qt's default is 2, which silently
    rounds what is set: a classifier width of 0.125 to 0.13, a slide's 0.499 µm/px to
    0.50; a learning rate of 5e-5 to 0.0001 even at the 4 decimals magicgui gives a step of
    1e-4 (it widens the default only for steps below 0.01)."""
    value = options.pop("value", None)
    field = FloatSpinBox(**options)
    field.native.setDecimals(decimals)
    if value is not None:  # set after the decimals, or it is rounded to the old ones
        field.value = value
    return field
