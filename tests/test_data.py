import numpy as np
import pytest
import torch
from skimage.data import immunohistochemistry

from conftest import BREAKHIS, needs_breakhis
from napari_shisrcnet.data.breakhis import (
    DataError,
    class_names_for,
    dataset_mpp,
    index_dataset,
    labels_for,
    parse_breakhis_name,
)
from napari_shisrcnet.data.pairs import (
    ColourJitter,
    PairDataset,
    StainJitter,
    degrade,
    full_image_pair,
    load_rgb,
)
from napari_shisrcnet.data.splits import leaky_image_split, patient_folds, patient_split


def test_file_names_are_parsed():
    from pathlib import Path

    record = parse_breakhis_name(Path("SOB_M_PC-14-15687B-100-008.png"))
    assert (record.group, record.subtype, record.patient, record.magnification) == (
        "malignant",
        "papillary_carcinoma",
        "14-15687",
        100,
    )
    assert parse_breakhis_name(Path("holiday.png")) is None


def test_generated_tree_is_indexed_with_patients_grouped(breakhis_tree):
    records = index_dataset(breakhis_tree)
    assert len(records) == 10 * 2 * 3
    # 22549AB and 22549CD are one patient; 29960AB/29960CD too (across subtypes).
    assert len({r.patient for r in records}) == 8
    at_100x = index_dataset(breakhis_tree, magnification=100)
    assert len(at_100x) == 30 and {r.magnification for r in at_100x} == {100}
    assert class_names_for(records, "binary") == ("benign", "malignant")
    labels = labels_for(records, "subtype")
    assert set(labels.tolist()) == {0, 1, 4, 5}  # adenosis, fibroadenoma, ductal, lobular


@needs_breakhis
def test_the_real_breakhis_sample():
    records = index_dataset(BREAKHIS)
    assert len(records) == 168 and {r.magnification for r in records} == {100}
    assert len({r.subtype for r in records}) == 8
    assert len({r.patient for r in records}) == 19  # 22 slides folders, 3 shared patient numbers


def test_empty_folder_and_unknown_names(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        index_dataset(tmp_path)
    (tmp_path / "benign").mkdir()
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "benign" / "SOB_B_A-14-1-100-001.png", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / "benign" / "holiday.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"holiday\.png: not a BreaKHis file name"):
        index_dataset(tmp_path)


def test_generic_class_folders(tmp_path):
    import imageio.v3 as iio

    for name in ("tumour", "normal"):
        (tmp_path / name).mkdir()
        for i in range(2):
            iio.imwrite(tmp_path / name / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    records = index_dataset(tmp_path)
    assert class_names_for(records, "binary") == ("normal", "tumour")
    assert labels_for(records, "binary").tolist() == [0, 0, 1, 1]
    assert dataset_mpp(records) is None  # no magnification, no pixel size


def test_breakhis_pixel_size_follows_the_magnification(breakhis_tree):
    # The 100X calibration (docs/breakhis-pixel-size.json), scaled by the objective.
    assert dataset_mpp(index_dataset(breakhis_tree, 100)) == pytest.approx(0.5)
    assert dataset_mpp(index_dataset(breakhis_tree, 200)) == pytest.approx(0.25)
    # Two magnifications have no single pixel size: none is made up.
    assert dataset_mpp(index_dataset(breakhis_tree)) is None


def test_unreadable_image_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png: cannot read the image"):
        load_rgb(path)


def _patients_of(split, patients, name):
    return {patients[i] for i in split.named(name)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_patient_is_in_two_splits(breakhis_tree, seed):
    records = index_dataset(breakhis_tree)
    labels, patients = labels_for(records, "binary"), [r.patient for r in records]
    split = patient_split(labels, patients, val_fraction=0.25, test_fraction=0.25, seed=seed)
    train, val, test = (_patients_of(split, patients, n) for n in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert sorted(split.named("all").tolist()) == list(range(len(records)))
    for fold in patient_folds(labels, patients, k=4, seed=seed):
        parts = [_patients_of(fold, patients, n) for n in ("train", "val", "test")]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    tests = [
        _patients_of(f, patients, "test") for f in patient_folds(labels, patients, 4, seed=seed)
    ]
    assert set().union(*tests) == set(patients)  # every patient is tested exactly once
    assert sum(len(t) for t in tests) == len(set(patients))


def test_splits_are_seeded(breakhis_tree):
    records = index_dataset(breakhis_tree)
    labels, patients = labels_for(records, "binary"), [r.patient for r in records]
    a, b = (
        patient_split(labels, patients, 0.25, 0.25, 7),
        patient_split(labels, patients, 0.25, 0.25, 7),
    )
    assert all(np.array_equal(a.named(n), b.named(n)) for n in ("train", "val", "test"))


def test_leaky_split_is_labelled_and_mixes_patients(breakhis_tree):
    records = index_dataset(breakhis_tree)
    patients = [r.patient for r in records]
    split = leaky_image_split(len(records), seed=0)  # the paper's 7:3, validation from the 7
    assert split.leaky and len(records) == 60 and len(split.test) == 18
    assert len(split.train) + len(split.val) == 42 and len(split.val) == 8
    everything = np.concatenate([split.train, split.val, split.test])
    assert sorted(everything) == list(range(60))  # disjoint and complete
    assert _patients_of(split, patients, "train") & _patients_of(split, patients, "test")


def test_pairs_are_deterministic_and_lr_is_degraded_hr(breakhis_tree):
    paths = [r.path for r in index_dataset(breakhis_tree)][:4]
    dataset = PairDataset(paths, [0, 1, 0, 1], scale=2, hr_crop_px=48, seed=3)
    lr, hr, label = dataset[1]
    assert lr.shape == (3, 24, 24) and hr.shape == (3, 48, 48) and label == 1
    torch.testing.assert_close(lr, degrade(hr, 2))  # augmentation happened before degradation
    again = PairDataset(paths, [0, 1, 0, 1], scale=2, hr_crop_px=48, seed=3)[1]
    assert torch.equal(again[1], hr)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[1][1], hr)  # a new epoch, new crops
    assert torch.equal(hr * 255, (hr * 255).round())  # 8-bit like a real scan


def test_crop_must_be_a_multiple_of_the_scale(breakhis_tree):
    with pytest.raises(DataError, match="not a multiple of the scale"):
        PairDataset([], [], scale=4, hr_crop_px=50)


def test_full_image_pair_crops_to_the_scale(breakhis_tree):
    path = index_dataset(breakhis_tree)[0].path
    lr, hr = full_image_pair(path, 8)
    assert hr.shape == (3, 72, 96) and lr.shape == (3, 9, 12)


def test_repeats_give_distinct_crops_of_each_image(breakhis_tree):
    paths = [r.path for r in index_dataset(breakhis_tree)][:3]
    dataset = PairDataset(paths, [0, 1, 1], scale=2, hr_crop_px=32, seed=0, repeats=4)
    assert len(dataset) == 12
    assert [dataset[i][2] for i in (1, 4, 7, 10)] == [1, 1, 1, 1]  # sample i is image i % 3
    crops = [dataset[i][1] for i in (1, 4, 7, 10)]
    assert all(not torch.equal(crops[0], other) for other in crops[1:])


def test_stain_jitter_is_identity_at_zero_and_keeps_pixels_in_range():
    image = torch.from_numpy(immunohistochemistry()[:64, :64]).permute(2, 0, 1).float() / 255
    image = image.clamp_min(1 / 255)  # OD is defined from one grey level up
    same = StainJitter(scale=0, shift=0)(image, np.random.default_rng(0))
    torch.testing.assert_close(same, image, atol=1e-5, rtol=0)
    changed = StainJitter()(image, np.random.default_rng(0))
    change = (changed - image).abs().mean().item() * 255
    assert 1 < change < 20 and changed.min() >= 0 and changed.max() <= 1


def _colour_jitter_step_by_step(image, rng, jitter):
    """The four colour changes one after another (the written-out definition)."""
    image = image * (1 + rng.uniform(-jitter.brightness, jitter.brightness))
    mean = image.mean()
    image = mean + (image - mean) * (1 + rng.uniform(-jitter.contrast, jitter.contrast))
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    image = grey + (image - grey) * (1 + rng.uniform(-jitter.saturation, jitter.saturation))
    angle = 2 * np.pi * rng.uniform(-jitter.hue, jitter.hue)
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rotation = torch.tensor(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]],
        dtype=torch.float32,
    )
    matrix = torch.linalg.inv(yiq) @ rotation @ yiq
    return torch.einsum("ij,jhw->ihw", matrix, image).clamp(0, 1)


def _stain_jitter_step_by_step(image, rng, jitter):
    from skimage.color import hed_from_rgb, rgb_from_hed

    density = -torch.log(image.clamp_min(1 / 255)).permute(1, 2, 0).double()
    stains = density @ torch.from_numpy(hed_from_rgb)
    stains = stains * torch.from_numpy(rng.uniform(1 - jitter.scale, 1 + jitter.scale, 3))
    stains = stains + torch.from_numpy(rng.uniform(-jitter.shift, jitter.shift, 3))
    rgb = torch.exp(-(stains @ torch.from_numpy(rgb_from_hed))).float()
    return rgb.permute(2, 0, 1).clamp(0, 1)


@pytest.mark.parametrize("seed", range(5))
def test_fused_colour_and_stain_jitter_equal_their_step_by_step_definitions(seed):
    image = torch.from_numpy(immunohistochemistry()[:96, :128]).permute(2, 0, 1).float() / 255
    for jitter, reference in (
        (ColourJitter(), _colour_jitter_step_by_step),
        (StainJitter(), _stain_jitter_step_by_step),
    ):
        fused = jitter(image, np.random.default_rng(seed))
        expected = reference(image, np.random.default_rng(seed), jitter)
        assert torch.allclose(fused, expected, atol=2e-5), type(jitter).__name__
        assert not torch.allclose(fused, image, atol=1e-3)  # it did change the colours
