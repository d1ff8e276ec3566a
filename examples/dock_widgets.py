"""Add the plugin's dock widgets to a viewer programmatically and drive one from code.

python examples/dock_widgets.py
"""

import napari

viewer = napari.Viewer()
viewer.open_sample("napari-shisrcnet", "synthetic_he")
_, sr_widget = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Super-resolve")
_, classify_widget = viewer.window.add_plugin_dock_widget("napari-shisrcnet", "Classify tiles")

# Choose options as a user would, then press Run (the work runs in a background worker).
sr_widget.model.value = "bicubic"
sr_widget.extent.value = "field of view"
sr_widget.level.value = 2  # the overview level: quick on a CPU
sr_widget.run()

napari.run()
