import json
from pathlib import Path

from napari_shisrcnet.cli import main


def test_demo_writes_results_figures_and_summary(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--out", str(out), "--model", str(tiny_checkpoint), "--device", "cpu"]) == 0
    )
    printed = capsys.readouterr().out
    assert "demo finished" in printed and "overlay_png" in printed
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "sr_ome_zarr",
        "classification_ome_zarr",
        "comparison_png",
        "overlay_png",
        "tiles_csv",
        "geojson",
    ):
        assert Path(summary[key]).exists(), key
    assert sum(v for k, v in summary["tiles_per_class"].items() if k != "background") > 0
    from napari_shisrcnet.io.slides import open_slide

    with open_slide(summary["sr_ome_zarr"]) as sr:
        assert sr.levels[0].shape == (512, 512, 3)  # the 256 px region at x2


def test_demo_without_bundled_weights_falls_back_to_bicubic(tmp_path, capsys, monkeypatch):
    from napari_shisrcnet.model import bundled

    monkeypatch.setattr(bundled, "BUNDLED_WEIGHTS", {"default": "absent.safetensors"})
    assert main(["demo", "--out", str(tmp_path), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "falls back to bicubic" in printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "bicubic" and "overlay_png" not in summary
