"""The npe2 manifest, plugin discovery, and a real viewer under Xvfb."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from npe2 import PluginManager, PluginManifest

REPO_MANIFEST = Path(__file__).parents[1] / "napari.yaml"


def test_installed_manifest_is_the_top_level_one_and_validates():
    manifest = PluginManifest.from_distribution("napari-shisrcnet")
    assert manifest.name == "napari-shisrcnet"
    assert manifest == PluginManifest.from_file(REPO_MANIFEST)
    # Every contributed command must import and resolve to a callable.
    manifest.validate_imports()


def test_npe2_validate_cli_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    result = subprocess.run(
        [str(npe2), "validate", "napari-shisrcnet"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_napari_discovers_the_plugin():
    manager = PluginManager()
    manager.discover()
    assert "napari-shisrcnet" in {manifest.name for manifest in manager.iter_manifests()}


def test_core_imports_neither_qt_nor_napari():
    code = (
        "import sys, napari_shisrcnet.model, napari_shisrcnet.cli;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui'});"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.gui
def test_viewer_opens_with_the_plugin_and_its_sample(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open_sample("napari-shisrcnet", "ihc")
    assert len(layers) == 1 and layers[0].rgb
    assert layers[0].data.shape == (512, 512, 3)
    screenshot = viewer.screenshot(canvas_only=True, flash=False)
    assert screenshot.ndim == 3 and np.ptp(screenshot[..., :3]) > 50  # the image was really drawn


@pytest.mark.gui
def test_the_real_slide_sample_opens_in_micrometres_with_its_credit(make_napari_viewer):
    viewer = make_napari_viewer()
    [layer] = viewer.open_sample("napari-shisrcnet", "cmu_he")
    assert layer.rgb and layer.multiscale and layer.data[0].shape == (2967, 2220, 3)
    assert tuple(layer.scale) == pytest.approx((0.499, 0.499))
    assert [str(u) for u in layer.units] == ["micrometer", "micrometer"]
    assert "CC0" in layer.metadata["napari_shisrcnet"]["credit"]
