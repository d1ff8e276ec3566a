"""The ``shisrcnet`` command line."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__


def _device_lines() -> list[str]:
    import torch

    lines = [f"cpu: {torch.get_num_threads()} threads"]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            lines.append(
                f"cuda:{index}: {properties.name}, {total / 2**30:.1f} GiB "
                f"({free / 2**30:.1f} GiB free)"
            )
    else:
        lines.append("cuda: not available")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        lines.append("mps: available")
    return lines


def _parameter_lines() -> list[str]:
    from .model import SUPPORTED_SCALES, SKNetFPNClassifier, SRMFENet

    lines = []
    for scale in SUPPORTED_SCALES:
        count = sum(p.numel() for p in SRMFENet(scale=scale).parameters())
        lines.append(f"SRMFENet x{scale} (64 ch, 3 MFE blocks): {count:,} parameters")
    for width in (1.0, 0.25):
        count = sum(p.numel() for p in SKNetFPNClassifier(width=width).parameters())
        lines.append(f"SKNet-26 + FPN/CSF classifier, width {width}: {count:,} parameters")
    return lines


def run_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    print(f"napari-shisrcnet {__version__}")
    print(f"python {platform.python_version()} ({platform.platform()})")
    print(f"torch {torch.__version__}, numpy {numpy.__version__}")
    for line in _device_lines():
        print(line)
    if args.models:
        for line in _parameter_lines():
            print(line)
    return 0


def _region(text: str):
    from .engine.tiling import Region

    try:
        x, y, width, height = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y,WIDTH,HEIGHT in pixels, got '{text}'"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError("region width and height must be >= 1")
    return Region(y, x, height, width)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_predict(commands) -> None:
    from .engine.super_resolution import DEFAULT_HALO_PX

    predict = commands.add_parser(
        "predict",
        help="super-resolve and classify slides into OME-Zarr results",
        description=(
            "Super-resolve a region or level of each slide and classify its tissue tiles. "
            "Writes OUT/<name>.ome.zarr (NGFF image pyramid + tile-class labels), "
            "OUT/<name>.tiles.csv and optionally OUT/<name>.geojson (QuPath). Rerunning the "
            "same command resumes an interrupted run."
        ),
    )
    predict.add_argument("inputs", nargs="+", metavar="INPUT", help="slide/image files or folders")
    predict.add_argument("--out", required=True, metavar="DIR", help="output folder")
    predict.add_argument(
        "--model",
        default="default",
        help="'default' (bundled), a .safetensors checkpoint, or 'bicubic'",
    )
    predict.add_argument(
        "--scale", type=int, choices=(2, 4, 8), help="check (or, for bicubic, set) the scale"
    )
    predict.add_argument(
        "--level", type=int, default=0, help="pyramid level to read (0 = full resolution)"
    )
    predict.add_argument(
        "--region", type=_region, metavar="X,Y,W,H", help="region of that level, in its pixels"
    )
    predict.add_argument(
        "--tile-px",
        type=_positive,
        help="SR tile core size (default: 512 on a CUDA GPU, 256 on the CPU)",
    )
    predict.add_argument(
        "--halo-px", type=int, default=DEFAULT_HALO_PX, help="SR context on each side"
    )
    predict.add_argument(
        "--classify-tile-px",
        type=_positive,
        help="classification tile size (default: the model's training field of view)",
    )
    predict.add_argument(
        "--batch-size", type=_positive, help="tiles per batch (default: from free memory)"
    )
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
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
    predict.add_argument("--no-sr", action="store_true", help="classification only")
    predict.add_argument("--no-classify", action="store_true", help="super-resolution only")
    predict.add_argument(
        "--format",
        choices=("ome-zarr", "ome-tiff"),
        default="ome-zarr",
        help="ome-tiff also writes a pyramidal OME-TIFF next to the OME-Zarr",
    )
    predict.add_argument(
        "--geojson", action="store_true", help="also write tile polygons as GeoJSON"
    )
    predict.add_argument(
        "--overwrite", action="store_true", help="replace results of a different run"
    )
    predict.add_argument(
        "--scheduler", metavar="ADDRESS", help="run on this dask.distributed scheduler"
    )
    predict.add_argument(
        "--workers", type=_positive, metavar="N", help="run on a local cluster of N processes"
    )
    predict.set_defaults(handler=run_predict)


def _expand_inputs(inputs: list[str]) -> list[Path]:
    from .io.slides import PLAIN_IMAGE_SUFFIXES, TIFF_SUFFIXES

    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir() and not item.name.lower().endswith(".zarr"):
            found = sorted(
                p
                for p in item.iterdir()
                if p.name.lower().endswith(TIFF_SUFFIXES + PLAIN_IMAGE_SUFFIXES + (".zarr",))
            )
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


def run_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import api

    paths = _expand_inputs(args.inputs)
    if args.scheduler or args.workers:
        return _predict_on_cluster(args, paths)
    model = api.load_model(
        args.model, args.device, args.scale, compile=args.compile, cuda_graphs=args.cuda_graphs
    )
    failures = 0
    for path in paths:
        bars: dict[str, tqdm] = {}

        def progress(event, bars=bars) -> None:
            bar = bars.get(event.stage) or bars.setdefault(
                event.stage, tqdm(total=event.total, desc=event.stage, unit="tile", leave=False)
            )
            bar.n = event.done
            bar.set_postfix_str(f"{event.megapixels_per_s:.2f} MP/s", refresh=True)

        try:
            result = api.process_slide(
                path, args.out, model, progress=progress, **_process_options(args)
            )
            if args.format == "ome-tiff":
                _write_tiff_copy(result)
        except (ValueError, LookupError, OSError) as error:
            failures += 1
            print(f"shisrcnet: error: {error}", file=sys.stderr)
            continue
        finally:
            for bar in bars.values():
                bar.close()
        print(_summary_line(path, result))
    return 1 if failures else 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    summary = demo(args.out, args.input, args.model, args.device)
    print(f"demo finished in {summary['seconds']} s; results in {Path(args.out).resolve()}:")
    for key, value in summary.items():
        if key.endswith(("_png", "_zarr", "_csv", "geojson", "json")):
            print(f"  {key}: {value}")
    if "tiles_per_class" in summary:
        print(f"  tiles per class: {summary['tiles_per_class']}")
    if args.open:
        from .napari.demo_viewer import open_demo

        open_demo(summary)
    return 0


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the main job on built-in defaults (no data or display needed)",
        description="Generate an H&E-like sample (or use --input), classify its tiles and "
        "super-resolve a region with the default model; write OME-Zarr results, figures and "
        "a JSON summary.",
    )
    demo.add_argument("--out", default="shisrcnet-demo", help="output folder")
    demo.add_argument("--input", help="a slide or image instead of the generated sample")
    demo.add_argument("--model", default="default", help="'default', a checkpoint, or 'bicubic'")
    demo.add_argument("--device", default="auto")
    demo.add_argument("--open", action="store_true", help="open the results in napari")
    demo.set_defaults(handler=run_demo)


def _process_options(args: argparse.Namespace) -> dict:
    """``process_slide`` keywords from the predict arguments (one place for both paths)."""
    return dict(
        level=args.level,
        region=args.region,
        super_resolution=not args.no_sr,
        classification=not args.no_classify,
        tile_px=args.tile_px,
        halo_px=args.halo_px,
        classification_tile_px=args.classify_tile_px,
        batch_size=args.batch_size,
        geojson=args.geojson,
        overwrite=args.overwrite,
    )


def _predict_on_cluster(args: argparse.Namespace, paths: list[Path]) -> int:
    from .cluster import connect, process_slides

    options = _process_options(args)
    with connect(args.scheduler, args.workers) as client:
        print(f"dask cluster: {client.dashboard_link}", file=sys.stderr)
        results = process_slides(
            paths,
            args.out,
            args.model,
            client,
            args.device,
            args.scale,
            compile=args.compile,
            cuda_graphs=args.cuda_graphs,
            **options,
        )
    for path, result in zip(paths, results, strict=True):
        if args.format == "ome-tiff":
            _write_tiff_copy(result)
        print(_summary_line(path, result))
    return 0


def _write_tiff_copy(result) -> None:
    from .io.ome_tiff import write_ome_tiff

    name = result.zarr_path.name.replace(".ome.zarr", ".ome.tif")
    write_ome_tiff(result.zarr_path, result.zarr_path.with_name(name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shisrcnet",
        description=(
            "Super-resolution and tile classification of low-resolution histopathology "
            "images (SHISRCNet, MICCAI 2023). Research use only, not for diagnosis."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="print versions, devices and GPU memory")
    info.add_argument(
        "--models", action="store_true", help="also print the parameter counts of the networks"
    )
    info.set_defaults(handler=run_info)
    _add_demo(commands)
    _add_predict(commands)
    from .train.commands import add_commands as add_training_commands

    add_training_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("shisrcnet: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, LookupError, OSError) as error:
        print(f"shisrcnet: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
