"""Where a slide's results go: ``OUT/<name>.ome.zarr`` and the files beside it.

``<name>`` is the slide's file name without its slide suffix (``a.v2.svs`` -> ``a.v2``,
``slide.ome.tif`` -> ``slide``); two slides whose results would share a name are refused
before anything is computed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError
from ..io.slides import slide_suffixes


def result_name(slide_path: str | os.PathLike) -> str:
    """The slide's file name without its slide suffix (and an ``.ome`` before it)."""
    name = Path(slide_path).name
    suffix = next(
        (s for s in sorted(slide_suffixes(), key=len, reverse=True) if name.lower().endswith(s)),
        "",
    )
    name = name[: len(name) - len(suffix)]
    return name[:-4] if name.lower().endswith(".ome") else name


@dataclass(frozen=True)
class ResultPaths:
    """``OUT/<name>.ome.zarr`` and, beside it, ``.tiles.csv``, ``.geojson``, ``.ome.tif``."""

    zarr: Path

    @classmethod
    def for_slide(cls, out_dir: str | os.PathLike, slide_path: str | os.PathLike) -> ResultPaths:
        return cls(Path(out_dir) / f"{result_name(slide_path)}.ome.zarr")

    @property
    def stem(self) -> str:
        return self.zarr.name.removesuffix(".ome.zarr")

    @property
    def csv(self) -> Path:
        return self.zarr.with_name(f"{self.stem}.tiles.csv")

    @property
    def geojson(self) -> Path:
        return self.zarr.with_name(f"{self.stem}.geojson")

    @property
    def ome_tiff(self) -> Path:
        return self.zarr.with_name(f"{self.stem}.ome.tif")

    def remove_copies(self) -> None:
        """Delete the table and copies beside the OME-Zarr (when it is replaced)."""
        for path in (self.csv, self.geojson, self.ome_tiff):
            path.unlink(missing_ok=True)


def check_distinct_results(
    out_dir: str | os.PathLike, slide_paths: Iterable[str | os.PathLike]
) -> list[ResultPaths]:
    """Each slide's result paths; refuses two slides whose results would share a name."""
    seen: dict[Path, str | os.PathLike] = {}
    results = []
    for slide_path in slide_paths:
        paths = ResultPaths.for_slide(out_dir, slide_path)
        if paths.zarr in seen:
            raise OptionError(
                f"{seen[paths.zarr]} and {slide_path} would both be written to {paths.zarr}; "
                "rename one or process them into different output folders",
                "inputs",
                "out_dir",
            )
        seen[paths.zarr] = slide_path
        results.append(paths)
    return results
