"""Sample data shipped with the package.

``CMU-1-Small-Region.svs``: a real Aperio SVS of H&E-stained tissue (2220 x 2967 px at
0.499 µm/px, JPEG tiles, 1.9 MB), a region cut from the OpenSlide project's CMU-1 test
slide and released by Carnegie Mellon University under CC0 1.0 (public domain dedication);
see https://openslide.cs.cmu.edu/download/openslide-testdata/Aperio/. It is the default
input of ``shisrcnet demo`` and the first napari sample.
"""

from __future__ import annotations

from pathlib import Path

CMU_SMALL_REGION = Path(__file__).with_name("CMU-1-Small-Region.svs")
CMU_SMALL_REGION_CREDIT = (
    "CMU-1-Small-Region.svs: Aperio H&E, OpenSlide test data (Carnegie Mellon University), CC0 1.0"
)
