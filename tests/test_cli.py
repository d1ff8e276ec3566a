import pytest
import zarr

from napari_shisrcnet.cli import main


def test_help_reads_like_a_science_tool(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--out",
        "--model",
        "--level",
        "--region",
        "--tile-px",
        "--halo-px",
        "--batch-size",
        "--device",
        "--no-sr",
        "--no-classify",
        "--format",
        "--geojson",
    ):
        assert option in text


def test_info_prints_versions_and_devices(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "napari-shisrcnet" in text and "torch" in text and "cpu:" in text


def test_predict_writes_results_and_one_summary_line(tmp_path, pyramid_tiff, capsys):
    code = main(
        [
            "predict",
            str(pyramid_tiff),
            "--out",
            str(tmp_path),
            "--model",
            "bicubic",
            "--no-classify",
            "--region",
            "0,0,200,100",
            "--format",
            "ome-tiff",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("synthetic.tif: SR x2 400x200 px")
    assert zarr.open_group(tmp_path / "synthetic.ome.zarr", mode="r")["0"].shape == (3, 200, 400)
    import tifffile

    with tifffile.TiffFile(tmp_path / "synthetic.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].shape == (200, 400, 3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.svs", "--model", "bicubic", "--no-classify"], "missing.svs: file not found"),
        (["{slide}", "--model", "bicubic"], "has no classifier"),
        (["{slide}", "--model", "nothing.safetensors"], "checkpoint not found"),
        (["{slide}", "--model", "bicubic", "--no-classify", "--level", "9"], "level 9 requested"),
        (["{slide}", "--model", "no-such-model"], "checkpoint not found"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(tmp_path, pyramid_tiff, capsys, arguments, message):
    out = tmp_path / "out"
    arguments = [a.replace("{slide}", str(pyramid_tiff)) for a in arguments]
    code = main(["predict", *arguments, "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert code != 0
    assert (
        message in error and len(error.splitlines()) == 1 and error.startswith("shisrcnet: error:")
    )
    assert not out.exists() or not any(out.iterdir())


def test_bad_region_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "x.svs", "--out", "o", "--region", "1,2,3"])
    assert exit_info.value.code == 2
    assert "expected X,Y,WIDTH,HEIGHT" in capsys.readouterr().err


def test_missing_bundled_model_is_a_one_line_error(tmp_path, pyramid_tiff, capsys, monkeypatch):
    from napari_shisrcnet.model import bundled

    monkeypatch.setattr(bundled, "BUNDLED_WEIGHTS", {"default": "absent.safetensors"})
    code = main(
        ["predict", str(pyramid_tiff), "--out", str(tmp_path / "out"), "--model", "default"]
    )
    error = capsys.readouterr().err.strip()
    assert code != 0 and "no bundled 'default' model" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_every_job_setting_has_one_flag_and_the_same_defaults():
    from dataclasses import fields

    from napari_shisrcnet.cli import build_parser
    from napari_shisrcnet.predict_cli import SETTING_FLAGS, settings_from_args
    from napari_shisrcnet.settings import SlideJobSettings

    settings = [f.name for f in fields(SlideJobSettings)]
    assert sorted(row.setting for row in SETTING_FLAGS) == sorted(settings)
    args = build_parser().parse_args(["predict", "slide.svs", "--out", "o"])
    assert settings_from_args(args) == SlideJobSettings()
    args = build_parser().parse_args(
        ["predict", "s.svs", "--out", "o", "--no-sr", "--format", "ome-tiff", "--tile-px", "96"]
    )
    assert settings_from_args(args) == SlideJobSettings(
        super_resolution=False, ome_tiff=True, sr_tile_px=96
    )


@pytest.mark.parametrize(
    ("arguments", "line"),
    [
        (["--halo-px", "-5"], "the SR halo must be an integer >= 0, got -5 (--halo-px)"),
        (["--no-sr", "--no-classify"], "both off (--no-sr, --no-classify)"),
        (["--min-tissue", "2"], "must be in [0, 1], got 2.0 (--min-tissue)"),
    ],
)
def test_setting_errors_name_their_flag_and_write_nothing(
    tmp_path, pyramid_tiff, capsys, arguments, line
):
    out = tmp_path / "out"
    code = main(["predict", str(pyramid_tiff), "--out", str(out), "--model", "bicubic", *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("shisrcnet: error: ") and error.endswith(line)
    assert not out.exists()


def test_a_different_run_is_refused_with_the_flags_that_resolve_it(tmp_path, pyramid_tiff, capsys):
    common = ["predict", str(pyramid_tiff), "--out", str(tmp_path), "--model", "bicubic"]
    common += ["--no-classify", "--region", "0,0,64,64"]
    assert main(common) == 0
    assert main([*common, "--tile-px", "32"]) == 1
    error = capsys.readouterr().err.strip()
    assert "holds a result of a different run" in error
    assert error.endswith("overwrite it or choose another output folder (--overwrite, --out)")
    assert main([*common, "--tile-px", "32", "--overwrite"]) == 0
