"""The split a checkpoint was trained with, stored in the checkpoint itself.

``evaluate`` must never report on data a model (or a model it was initialised from) was
trained or validated on, and must not rebuild a split from a seed: the same seed gives
another split on another copy of the data, another class scheme or another magnification.
So every checkpoint stores its split by patient id (image names too for the paper's
image-level ``leaky`` split), the patients and images it has *seen* (its own training and
validation ones plus its parents'), and a fingerprint of the data index it was made on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .breakhis import ImageRecord
from .splits import Split

SPLIT_NAMES = ("train", "val", "test")
PROVENANCE_KEY = "split"


def data_fingerprint(records: Sequence[ImageRecord], root: str | Path) -> str:
    """sha256 of the sorted relative paths of an index (names, not pixels: quick, and a
    renamed or missing file changes it)."""
    names = sorted(str(Path(r.path).relative_to(root)) for r in records)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def inherited(
    parents: Iterable[tuple[str, SplitRecord | None]],
) -> tuple[set[str], set[str], list[str]]:
    """What ``parents`` ((name, stored record or None)) have seen: patients, images, and
    the names of ancestors that record no split."""
    patients: set[str] = set()
    images: set[str] = set()
    unrecorded: list[str] = []
    for name, parent in parents:
        if parent is None:
            unrecorded.append(name)
            continue
        patients |= set(parent.seen_patients)
        images |= set(parent.seen_images)
        unrecorded += parent.unrecorded_parents
    return patients, images, unrecorded


@dataclass(frozen=True)
class SplitRecord:
    """What a checkpoint trained on and what it held out."""

    kind: str  # "patient", "leaky" or "fold i of k"
    patients: dict[str, list[str]]
    images: dict[str, list[str]] | None  # image names; only for the leaky split
    seen_patients: list[str]  # trained or validated on, here or by a parent
    seen_images: list[str]  # leaky: the images themselves (patients are on both sides)
    data_fingerprint: str
    unrecorded_parents: list[str] = field(default_factory=list)  # parents without a record

    @classmethod
    def of_training(
        cls,
        records: Sequence[ImageRecord],
        split: Split,
        kind: str,
        fingerprint: str,
        parents: Iterable[tuple[str, SplitRecord | None]] = (),
    ) -> SplitRecord:
        """The record of a run on ``records`` split by ``split``, initialised from
        ``parents`` ((name, their record or None))."""
        by_name = {name: [records[i] for i in split.named(name)] for name in SPLIT_NAMES}
        patients = {name: sorted({r.patient for r in rs}) for name, rs in by_name.items()}
        own = by_name["train"] + by_name["val"]
        seen_patients, seen_images, unrecorded = inherited(parents)
        if split.leaky:
            seen_images |= {r.path.name for r in own}
        else:
            seen_patients |= {r.patient for r in own}
        images = None
        if split.leaky:
            images = {name: sorted(r.path.name for r in rs) for name, rs in by_name.items()}
        return cls(
            kind,
            patients,
            images,
            sorted(seen_patients),
            sorted(seen_images),
            fingerprint,
            unrecorded,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_provenance(cls, provenance: dict) -> SplitRecord | None:
        """The record a checkpoint's provenance holds; None when it has none."""
        stored = provenance.get(PROVENANCE_KEY)
        if not isinstance(stored, dict) or "seen_patients" not in stored:
            return None
        optional: dict = {"images": None, "seen_images": []}
        return cls(
            **{**optional, **{f.name: stored[f.name] for f in fields(cls) if f.name in stored}}
        )

    def select(self, records: Sequence[ImageRecord], name: str) -> list[int]:
        """Indices of ``records`` in the stored split ``name`` (by image for leaky splits)."""
        if self.images is not None:
            wanted = set(self.images[name])
            return [i for i, r in enumerate(records) if r.path.name in wanted]
        wanted = set(self.patients[name])
        return [i for i, r in enumerate(records) if r.patient in wanted]

    def seen(self, records: Sequence[ImageRecord]) -> list[int]:
        """Indices of ``records`` this model or a parent trained or validated on."""
        patients, images = set(self.seen_patients), set(self.seen_images)
        return [i for i, r in enumerate(records) if r.patient in patients or r.path.name in images]
