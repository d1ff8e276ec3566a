"""``shisrcnet predict``: the flag table over :class:`~napari_shisrcnet.settings.SlideJobSettings`.

Each job setting has one row in :data:`SETTING_FLAGS` (flag, parsing, help); the parser
and the settings object are both built from it, with the defaults of
``SlideJobSettings()``, so the command line cannot drift from the scripting API.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .geometry import SUPPORTED_SCALES, Region
from .io.slides import slide_suffixes
from .results.paths import check_distinct_results
from .settings import SlideJobSettings


def _region(text: str) -> Region:
    try:
        x, y, width, height = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,WIDTH,HEIGHT in pixels, got '{text}'"
        ) from None
    return Region(y, x, height, width)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


@dataclass(frozen=True)
class SettingFlag:
    """One job setting on the command line: ``flag`` sets ``SlideJobSettings.<setting>``."""

    setting: str
    flag: str
    help: str
    parse: dict = field(default_factory=dict)  # argparse keywords: type, action, choices...
    to_setting: Callable = field(default=lambda value: value)
    dest: str = ""  # the parsed argument, when one flag sets several settings

    @property
    def argument(self) -> str:
        return self.dest or self.setting


def _mpp(text: str) -> str | float:
    if text in ("auto", "native"):
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, native or a pixel size in µm, got '{text}'"
        ) from None


MPP_HELP = (
    "the pixel size to read the slide at: auto (what the model was trained at, when it "
    "records it and the slide's pixel size is known; else --level as stored), native "
    "(--level as stored) or a value in µm/px (default: auto)"
)

SETTING_FLAGS = (
    SettingFlag("level", "--level", "pyramid level to read (0 = full resolution)", {"type": int}),
    SettingFlag(
        "target_mpp",
        "--mpp",
        MPP_HELP,
        {"type": _mpp, "metavar": "auto|native|UM", "default": "auto"},
        lambda value: value if isinstance(value, float) else None,
        dest="mpp",
    ),
    SettingFlag(
        "match_model_mpp", "--mpp", MPP_HELP, {}, lambda value: value == "auto", dest="mpp"
    ),
    SettingFlag(
        "slide_mpp",
        "--slide-mpp",
        "the slide's level-0 µm/px, for files that do not record it (or record it wrongly)",
        {"type": float, "metavar": "UM"},
    ),
    SettingFlag(
        "region",
        "--region",
        "region of the image as read (the level, resampled with --mpp), in its pixels "
        "(default: all of it)",
        {"type": _region, "metavar": "X,Y,W,H"},
    ),
    SettingFlag(
        "sr_tile_px",
        "--tile-px",
        "SR tile core size (default: 512 on a CUDA GPU, 256 on the CPU)",
        {"type": _positive, "metavar": "N"},
    ),
    SettingFlag("halo_px", "--halo-px", "SR context on each side", {"type": int, "metavar": "N"}),
    SettingFlag(
        "classification_tile_px",
        "--classify-tile-px",
        "classification tile size (default: the model's training field of view)",
        {"type": _positive, "metavar": "N"},
    ),
    SettingFlag(
        "batch_size",
        "--batch-size",
        "tiles per batch (default: from free GPU memory; 1 SR / 8 classification on a CPU)",
        {"type": _positive, "metavar": "N"},
    ),
    SettingFlag(
        "min_tissue_fraction",
        "--min-tissue",
        "classify tiles with at least this fraction of tissue (0: every tile)",
        {"type": float, "metavar": "FRACTION"},
    ),
    SettingFlag("super_resolution", "--no-sr", "classification only", {"action": "store_false"}),
    SettingFlag(
        "classification", "--no-classify", "super-resolution only", {"action": "store_false"}
    ),
    SettingFlag(
        "ome_tiff",
        "--format",
        "ome-tiff also writes a pyramidal OME-TIFF next to the OME-Zarr",
        {"choices": ("ome-zarr", "ome-tiff"), "default": "ome-zarr"},
        lambda value: value == "ome-tiff",
    ),
    SettingFlag(
        "geojson", "--geojson", "also write tile polygons as GeoJSON", {"action": "store_true"}
    ),
)

EXIT_STATUS = """exit status:
  0    every slide was processed (or was already complete)
  1    some slides failed (one line each on stderr); the others were processed
  2    bad options or input: nothing was computed or written
  130  interrupted: rerun the same command to resume"""

#: Names the core's errors use (settings and arguments) -> the flags that set them.
OPTION_FLAGS = {
    **{row.setting: row.flag for row in SETTING_FLAGS},
    "model": "--model",
    "scale": "--scale",
    "device": "--device",
    "out_dir": "--out",
    "inputs": "INPUT",
    "overwrite": "--overwrite",
}


def settings_from_args(args: argparse.Namespace) -> SlideJobSettings:
    """The job settings the parsed flags ask for."""
    return SlideJobSettings(
        **{row.setting: row.to_setting(getattr(args, row.argument)) for row in SETTING_FLAGS}
    )


def add_predict(commands) -> None:
    """The ``predict`` sub-command."""
    defaults = SlideJobSettings()
    predict = commands.add_parser(
        "predict",
        help="super-resolve and classify slides into OME-Zarr results",
        description=(
            "Super-resolve a region or level of each slide and classify its tissue tiles. "
            "Writes OUT/<name>.ome.zarr (NGFF image pyramid + tile-class labels), "
            "OUT/<name>.tiles.csv and optionally OUT/<name>.geojson (QuPath). Rerunning the "
            "same command resumes an interrupted run."
        ),
        epilog=EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="slide/image files or folders")
    predict.add_argument("--out", required=True, metavar="DIR", help="output folder")
    predict.add_argument(
        "--model",
        default="default",
        help="'default' (bundled), a .safetensors checkpoint, or 'bicubic'",
    )
    predict.add_argument(
        "--scale", type=int, choices=SUPPORTED_SCALES, help="check (or, for bicubic, set) the scale"
    )
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    flags_added = set()
    for row in SETTING_FLAGS:
        if row.flag in flags_added:  # a second setting of the same flag
            continue
        flags_added.add(row.flag)
        keywords = {"dest": row.argument, "help": row.help, **row.parse}
        if "action" not in keywords and "default" not in keywords:
            keywords["default"] = getattr(defaults, row.setting)
            if keywords["default"] is not None:
                keywords["help"] += f" (default: {keywords['default']})"
        predict.add_argument(row.flag, **keywords)
    _add_run_options(predict)
    predict.set_defaults(handler=run_predict)


def _add_run_options(predict: argparse.ArgumentParser) -> None:
    """How to run (not what to compute): overwrite, compilation, scale-out."""
    predict.add_argument(
        "--overwrite", action="store_true", help="replace results of a different run"
    )
    predict.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model with fixed tile shapes (faster on a GPU for whole "
        "slides; compiling delays the first batch)",
    )
    predict.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="with --compile on CUDA: also replay CUDA graphs (less launch overhead)",
    )
    predict.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on this dask.distributed scheduler"
    )
    predict.add_argument(
        "--workers", type=_positive, metavar="N", help="run on a local cluster of N processes"
    )


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files as given; folders replaced by the slides and images they hold."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir() and not item.name.lower().endswith(".zarr"):
            found = sorted(p for p in item.iterdir() if p.name.lower().endswith(slide_suffixes()))
            if not found:
                raise ValueError(f"{item}: folder holds no slides or images")
            paths += found
        else:
            paths.append(item)
    return paths


def _summary_line(path: Path, result) -> str:
    summary = result.summary
    parts = [f"{path.name}:"]
    if summary.get("scale"):
        height, width = summary["output_shape_yx"]
        parts.append(f"SR x{summary['scale']} {width}x{height} px;")
    if "tiles_per_class" in summary:
        classes = ", ".join(
            f"{k} {v}" for k, v in summary["tiles_per_class"].items() if k != "background"
        )
        parts.append(f"{summary['tissue_tiles']} tissue tiles ({classes});")
    parts.append("already complete" if result.resumed_complete else f"{summary['seconds']:.1f} s")
    parts.append(f"-> {result.zarr_path}")
    return " ".join(parts)


def error_line(error: BaseException, option_flags: dict[str, str] = OPTION_FLAGS) -> str:
    """``shisrcnet: error: ...`` with the flags that set the options the error names."""
    flags = [option_flags[o] for o in getattr(error, "options", ()) if o in option_flags]
    hint = f" ({', '.join(dict.fromkeys(flags))})" if flags else ""
    return f"shisrcnet: error: {error}{hint}"


def _progress_bars() -> tuple[dict, Callable[..., None]]:
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(event) -> None:
        bar = bars.get(event.stage)
        if bar is None:  # starts at the first event, so its rate counts only later tiles
            bar = bars[event.stage] = tqdm(
                total=event.total, initial=event.done, desc=event.stage, unit="tile", leave=False
            )
        bar.update(event.done - bar.n)
        bar.set_postfix_str(f"{event.megapixels_per_s:.2f} MP/s", refresh=True)

    return bars, progress


def run_predict(args: argparse.Namespace) -> int:
    from . import api

    settings = settings_from_args(args)  # checked before any file is touched
    paths = expand_inputs(args.inputs)
    check_distinct_results(args.out, paths)
    spec = api.ModelSpec(args.model, args.device, args.scale, args.compile, args.cuda_graphs)
    if args.scheduler or args.workers:
        return _predict_on_cluster(args, paths, spec, settings)
    model = spec.load()
    failures = 0
    for path in paths:
        bars, progress = _progress_bars()
        try:
            result = api.process_slide(
                path, args.out, model, settings, overwrite=args.overwrite, progress=progress
            )
        except (ValueError, LookupError, OSError) as error:
            failures += 1
            print(error_line(error), file=sys.stderr)
            continue
        finally:
            for bar in bars.values():
                bar.close()
        print(_summary_line(path, result))
    return 1 if failures else 0


def _predict_on_cluster(args, paths, spec, settings) -> int:
    from .cluster import connect, process_slides

    with connect(args.scheduler, args.workers) as client:
        print(f"dask cluster: {client.dashboard_link}", file=sys.stderr)
        results = process_slides(paths, args.out, spec, client, settings, overwrite=args.overwrite)
    for path, result in zip(paths, results, strict=True):
        print(_summary_line(path, result))
    return 0
