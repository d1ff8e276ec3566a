"""Splits bound to checkpoints: evaluate never reports on what a model has seen."""

import json

import numpy as np
import pytest

from napari_shisrcnet.cli import main
from napari_shisrcnet.data.split_record import SplitRecord
from napari_shisrcnet.model import SHISRCNet, load_checkpoint
from napari_shisrcnet.model.bundled import checkpoint_path
from napari_shisrcnet.model.checkpoint import read_checkpoint_info
from napari_shisrcnet.train.config import TrainConfig
from napari_shisrcnet.train.loop import Trainer
from napari_shisrcnet.train.metrics import classification_report, patient_bootstrap
from test_training import TINY

ONE_STEP = dict(epochs=1, max_steps=1, magnification=100, **TINY)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, breakhis_tree):
    out = tmp_path_factory.mktemp("run")
    trainer = Trainer(breakhis_tree, out, TrainConfig(seed=1, **ONE_STEP))
    trainer.run()
    return trainer, out / "best.safetensors"


def _evaluate(data, checkpoint, *flags):
    return main(["evaluate", str(data), "--checkpoint", str(checkpoint), *flags])


def test_the_checkpoint_stores_its_split_and_what_it_saw(trained):
    trainer, checkpoint = trained
    record = SplitRecord.from_provenance(read_checkpoint_info(checkpoint).provenance)
    assert record is not None and record.kind == "patient"
    assert set(record.seen_patients) == set(record.patients["train"]) | set(record.patients["val"])
    assert not set(record.seen_patients) & set(record.patients["test"])
    assert record.patients["test"] == sorted({trainer.patients[i] for i in trainer.split.test})


def test_evaluate_reports_the_stored_test_split_with_intervals(
    trained, breakhis_tree, tmp_path, capsys
):
    _, checkpoint = trained
    report_file = tmp_path / "report.json"
    assert _evaluate(breakhis_tree, checkpoint, "--json", str(report_file)) == 0
    report = json.loads(report_file.read_text())
    assert "includes_seen" not in report
    for key in ("accuracy_image", "balanced_accuracy_image", "accuracy_patient", "psnr_gain"):
        low, high = report["ci95"][key]
        assert low <= high
    gain = report["psnr"] - report["psnr_bicubic"]
    assert report["ci95"]["psnr_gain"][0] <= gain <= report["ci95"]["psnr_gain"][1]
    line = capsys.readouterr().out
    assert "balanced" in line and "recall benign" in line and "[95% CI" in line
    # Figures beside --json; nothing beside the checkpoint.
    assert (tmp_path / "report-figures" / "comparison.png").exists()
    assert not list(checkpoint.parent.glob("eval-*"))


@pytest.mark.parametrize("split", ["all", "val", "train"])
def test_evaluate_refuses_seen_patients_and_writes_nothing(
    trained, breakhis_tree, tmp_path, capsys, split
):
    _, checkpoint = trained
    out, report_file = tmp_path / "eval", tmp_path / "report.json"
    flags = ["--split", split, "--out", str(out), "--json", str(report_file)]
    assert _evaluate(breakhis_tree, checkpoint, *flags) == 2
    error = capsys.readouterr().err
    assert "trained or validated on" in error and "--include-seen" in error
    assert not out.exists() and not report_file.exists()


def test_include_seen_reports_and_labels_it(trained, breakhis_tree, tmp_path, capsys):
    _, checkpoint = trained
    report_file = tmp_path / "report.json"
    flags = ["--split", "all", "--include-seen", "--json", str(report_file)]
    assert _evaluate(breakhis_tree, checkpoint, *flags) == 0
    report = json.loads(report_file.read_text())
    assert report["includes_seen"] is True and report["seen_images"] > 0
    assert capsys.readouterr().out.startswith("all: INCLUDES SEEN DATA")
    assert "INCLUDES SEEN DATA" in (tmp_path / "report-figures" / "report.md").read_text()


def test_a_checkpoint_without_a_split_is_never_reported_on_silently(
    breakhis_tree, tiny_checkpoint, tmp_path, capsys
):
    checkpoint = tiny_checkpoint  # saved by hand: no split recorded
    assert _evaluate(breakhis_tree, checkpoint) == 2
    assert "stores no training split" in capsys.readouterr().err
    assert _evaluate(breakhis_tree, checkpoint, "--split", "all", "--out", str(tmp_path / "e")) == 2
    assert "does not record what it was trained on" in capsys.readouterr().err


def test_fine_tuning_inherits_what_its_parent_saw(trained, breakhis_tree, tmp_path):
    _, parent = trained
    parent_record = SplitRecord.from_provenance(read_checkpoint_info(parent).provenance)
    # Seed 2 splits the patients differently: two the parent trained on fall in its test.
    config = TrainConfig(seed=2, init_checkpoints=(str(parent),), **ONE_STEP)
    child = Trainer(breakhis_tree, tmp_path, config)
    child.run()
    record = SplitRecord.from_provenance(
        read_checkpoint_info(tmp_path / "best.safetensors").provenance
    )
    assert set(parent_record.seen_patients) <= set(record.seen_patients)
    assert not set(parent_record.seen_patients) & set(record.patients["test"])
    assert child.moved_from_test > 0  # seed 2 put two of them in test; they moved


def test_the_bundled_model_stores_the_split_it_was_trained_with():
    record = SplitRecord.from_provenance(
        read_checkpoint_info(checkpoint_path("default")).provenance
    )
    assert record is not None
    assert len(record.patients["test"]) == 4 and len(record.seen_patients) == 15
    assert not set(record.seen_patients) & set(record.patients["test"])


def test_patient_bootstrap_resamples_patients_not_images():
    # Patient "a": 10 images, all wrong; nine patients with one right image each.
    patients = ["a"] * 10 + [f"p{i}" for i in range(9)]
    labels = np.zeros(19, int)
    probabilities = np.array([[0.2, 0.8]] * 10 + [[0.9, 0.1]] * 9)
    ci = patient_bootstrap(patients, labels, probabilities)
    low, high = ci["accuracy_image"]
    assert low < 9 / 19 < high
    # Whether "a" is drawn dominates: resampling images would give a far narrower interval.
    assert high - low > 0.5
    assert ci == patient_bootstrap(patients, labels, probabilities)  # seeded
    right = patient_bootstrap(patients, labels, np.tile([1.0, 0.0], (19, 1)))
    assert right["accuracy_image"] == right["accuracy_patient"] == [1.0, 1.0]


def test_roc_auc_is_reported_for_two_classes_with_a_patient_interval():
    # Malignant probabilities 0.6, 0.7 (benign) and 0.65, 0.9 (malignant): of the four
    # benign/malignant pairs, three are ranked right, so AUC 0.75, though argmax calls all
    # four malignant (balanced accuracy 0.5).
    probabilities = np.array([[0.4, 0.6], [0.3, 0.7], [0.35, 0.65], [0.1, 0.9]])
    labels, patients = [0, 0, 1, 1], ["a", "b", "c", "d"]
    report = classification_report(probabilities, labels, patients, ("benign", "malignant"))
    assert report["roc_auc_image"] == 0.75 and report["balanced_accuracy_image"] == 0.5
    low, high = patient_bootstrap(patients, np.array(labels), probabilities)["roc_auc_image"]
    assert low <= 0.75 <= high
    three = np.array([[0.5, 0.3, 0.2]] * 4)
    assert "roc_auc_image" not in classification_report(three, [0, 1, 2, 2], patients, "abc")


def test_a_patient_with_mixed_labels_is_left_out_of_patient_accuracy():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]])
    report = classification_report(
        probabilities, [0, 1, 1], ["mixed", "mixed", "b"], ("benign", "malignant")
    )
    assert report["n_patients_mixed_labels"] == 1
    assert report["accuracy_patient"] == 1.0  # only patient "b", predicted right


def test_a_loaded_model_is_unchanged_by_the_record(trained):
    _, checkpoint = trained
    model, info = load_checkpoint(checkpoint)
    assert isinstance(model, SHISRCNet) and info.provenance["split"]["kind"] == "patient"


def test_evaluate_can_make_lr_with_another_degradation(trained, breakhis_tree, tmp_path):
    _, checkpoint = trained
    files = {}
    for name in ("bicubic", "scanner"):
        files[name] = tmp_path / f"{name}.json"
        flags = ["--degradation", name, "--json", str(files[name])]
        assert _evaluate(breakhis_tree, checkpoint, *flags) == 0
    bicubic, scanner = (json.loads(f.read_text()) for f in files.values())
    assert bicubic["degradation"] == "bicubic" and scanner["degradation"] == "scanner"
    assert bicubic["psnr_bicubic"] != scanner["psnr_bicubic"]  # other LR, other baseline
