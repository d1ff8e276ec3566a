"""``shisrcnet evaluate-pyramid``: SR of a slide's level L+1 against its level L."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..figures import pyplot, save
from .pyramid_evaluation import evaluate_regions, slide_regions, summarise

TABLE_COLUMNS = ("psnr", "psnr_bicubic", "psnr_y", "psnr_y_bicubic", "ssim", "ssim_bicubic")
FIGURE_ROWS = 4


def add_command(commands) -> None:
    parser = commands.add_parser(
        "evaluate-pyramid",
        help="SR of a slide's level L+1 against its level L (real scanner degradation)",
        description="Super-resolve tissue regions of pyramid level L+1 of SLIDE and compare "
        "them with the same regions of level L (RGB and Y PSNR/SSIM, a border of `scale` px "
        "cropped), next to bicubic of the same input. Prints a table; writes JSON and an "
        "LR / bicubic / SR / reference figure.",
    )
    parser.add_argument("slide", type=Path, metavar="SLIDE")
    parser.add_argument(
        "--checkpoint", default="default", help="a .safetensors file, 'default' or 'bicubic'"
    )
    parser.add_argument("--level", type=int, default=0, help="reference level L (default 0)")
    parser.add_argument(
        "--scale", type=int, help="bicubic's factor (default 2); a checkpoint has its own"
    )
    parser.add_argument("--regions", type=int, default=8, help="tissue regions (default 8)")
    parser.add_argument("--region-px", type=int, default=256, help="LR region side (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="which tissue regions (seeded)")
    parser.add_argument("--json", type=Path, help="write the JSON report here")
    parser.add_argument("--out", type=Path, help="figure folder (default: beside --json, else .)")
    parser.set_defaults(handler=run_evaluate_pyramid)


def _model(name: str, scale: int | None):
    """(model or None for bicubic, its scale, checkpoint path or 'bicubic')."""
    if name == "bicubic":
        return None, scale or 2, "bicubic"
    from ..model import load_checkpoint
    from ..model.bundled import checkpoint_path

    path = checkpoint_path(name, scale)  # "default" with --scale 4: the x4 bundled model
    model, info = load_checkpoint(path, expected_scale=scale)
    return model.float(), info.scale or 2, str(path)


def run_evaluate_pyramid(args) -> int:
    from ..io.slides import open_slide

    model, scale, checkpoint = _model(args.checkpoint, args.scale)
    with open_slide(args.slide) as slide:  # the regions are read into memory, then closed
        ratio, block, regions = slide_regions(
            slide, args.level, scale, args.region_px, args.regions, args.seed
        )
    rows = evaluate_regions(model, regions, scale)
    report = {
        "slide": str(args.slide),
        "checkpoint": checkpoint,
        "scale": scale,
        "level": args.level,
        "lr_level": args.level + 1,
        "level_ratio": ratio,
        "reference_block_mean": block,
        "region_px": args.region_px,
        "summary": summarise(rows),
        "regions": [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
    }
    out = args.out or (args.json.parent if args.json else Path.cwd())
    report["figure"] = str(_figure(rows, scale, out / f"{args.slide.stem}-pyramid-sr.png"))
    print(_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _table(report: dict) -> str:
    header = f"{'region (y, x)':>16} " + " ".join(f"{c:>15}" for c in TABLE_COLUMNS)
    lines = [
        f"{report['slide']}: x{report['scale']} SR of level {report['lr_level']} vs level "
        f"{report['level']} ({report['checkpoint']})",
        header,
    ]
    for row in report["regions"]:
        values = " ".join(f"{row[c]:>15.4f}" for c in TABLE_COLUMNS)
        origin = f"({row['y']}, {row['x']})"
        lines.append(f"{origin:>16} {values}")
    summary = report["summary"]
    lines.append(f"{'mean':>16} " + " ".join(f"{summary[c]:>15.4f}" for c in TABLE_COLUMNS))
    low, high = summary["psnr_gain_ci95"]
    lines.append(
        f"PSNR gain over bicubic {summary['psnr_gain']:+.3f} dB [95% CI {low:+.3f}, "
        f"{high:+.3f}] (Y {summary['psnr_y_gain']:+.3f} dB); better than bicubic on "
        f"{summary['regions_better_than_bicubic']} of {len(report['regions'])} regions"
    )
    return "\n".join(lines)


def detailed_window(reference: np.ndarray, size: int) -> tuple[slice, slice]:
    """The ``size`` px window of ``reference`` (of a 3 x 3 grid of candidates) with the most
    fine detail (mean difference between neighbouring pixels): a region counts as tissue
    when half of it is, and its centre can be blank glass, which shows nothing of what SR
    did. Chosen on the reference alone, not on how SR did. (Not the largest spread of
    values: that picks a tissue edge, half of it glass.)"""
    starts = [int(start) for start in np.linspace(0, reference.shape[0] - size, 3)]
    windows = [np.s_[y : y + size, x : x + size] for y in starts for x in starts]
    return max(windows, key=lambda window: _fine_detail(reference[window]))


def _fine_detail(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def _figure(rows: list[dict], scale: int, path: Path) -> Path:
    """LR (nearest), bicubic, SR and reference for the first regions, 128 px of each."""
    plt = pyplot()
    shown = rows[:FIGURE_ROWS]
    figure, axes = plt.subplots(len(shown), 4, figsize=(12, 3.1 * len(shown)), squeeze=False)
    for row_axes, row in zip(axes, shown, strict=True):
        lr, bicubic, sr, reference = row["_images"]
        crop = detailed_window(reference, min(128, reference.shape[0]))
        panels = {
            "LR (level L+1)": np.repeat(np.repeat(lr / 255, scale, 0), scale, 1)[crop],
            f"bicubic {row['psnr_bicubic']:.2f} dB": bicubic[crop],
            f"SR {row['psnr']:.2f} dB": sr[crop],
            "level L": reference[crop],
        }
        for axis, (title, image) in zip(row_axes, panels.items(), strict=True):
            axis.imshow(np.clip(image, 0, 1), interpolation="nearest")
            axis.set_title(f"{title} ({row['y']}, {row['x']})", fontsize=9)
            axis.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(figure, path, dpi=100)
