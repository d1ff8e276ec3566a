"""The example scripts run (napari.run() is a no-op here so they return)."""

import runpy
import sys
from pathlib import Path

import napari
import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


@pytest.fixture
def no_event_loop(monkeypatch):
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)
    yield
    napari.Viewer.close_all()


def _run(monkeypatch, script, *arguments):
    monkeypatch.setattr(sys, "argv", [script, *arguments])
    return runpy.run_path(str(EXAMPLES / script), run_name="__main__")


def test_headless_example(monkeypatch, tmp_path, tiny_checkpoint):
    arguments = ["--model", str(tiny_checkpoint), "--out", str(tmp_path), "--sample-px", "768"]
    namespace = _run(monkeypatch, "headless.py", *arguments)
    assert namespace["sr"].shape == (512, 512, 3)
    assert namespace["done"].zarr_path.exists()


@pytest.mark.gui
def test_napari_script_example(monkeypatch, no_event_loop, tiny_checkpoint):
    namespace = _run(
        monkeypatch, "napari_script.py", "--model", str(tiny_checkpoint), "--sample-px", "512"
    )
    names = [layer.name for layer in namespace["viewer"].layers]
    assert names[1:] == ["SR", "slide classes", "slide p(malignant)"]


@pytest.mark.gui
def test_dock_widget_example(monkeypatch, no_event_loop, qtbot):
    namespace = _run(monkeypatch, "dock_widgets.py")
    widget = namespace["sr_widget"]
    qtbot.waitUntil(lambda: widget.status.value == "done", timeout=60_000)
    assert any(layer.name.endswith("SR x2") for layer in namespace["viewer"].layers)
