import dataclasses
import json
import struct
import subprocess
import sys
import time
import tracemalloc

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import napari_shisrcnet
from napari_shisrcnet.model import (
    CheckpointError,
    ClassifierConfig,
    SHISRCNet,
    SKNetFPNClassifier,
    SRMFENet,
    SRMFENetConfig,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from napari_shisrcnet.model.checkpoint_config import (
    BOOL_SETTINGS,
    CHOICE_SETTINGS,
    FLOAT_BOUNDS,
    INT_BOUNDS,
    INT_LIST_BOUNDS,
)
from napari_shisrcnet.model.checkpoint_file import MAX_HEADER_BYTES

TINY_SR = dict(channels=8, n_blocks=1)
TINY = dict(**TINY_SR, width=0.125, fpn_channels=64)


def _trained_like(model):
    """Random weights and BN statistics, so a round trip cannot pass by matching the init."""
    torch.manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor))
    return model


@pytest.mark.parametrize(
    "model",
    [
        SHISRCNet(scale=4, num_classes=8, **TINY),
        SRMFENet(scale=2, **TINY_SR),
        SKNetFPNClassifier(width=0.125, fpn_channels=64),
    ],
    ids=["SHISRCNet", "SRMFENet", "classifier"],
)
def test_round_trip_is_bit_exact(tmp_path, model):
    model = _trained_like(model)
    path = save_checkpoint(model, tmp_path / "model.safetensors", provenance={"epochs": 3})
    loaded, info = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name, tensor in original.items():
        assert restored[name].dtype == tensor.dtype
        assert torch.equal(restored[name], tensor), name
    assert info.provenance == {"epochs": 3}
    assert info.package_version == napari_shisrcnet.__version__
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left


def test_metadata_carries_scale_class_names_and_normalisation(tmp_path):
    model = SHISRCNet(scale=4, num_classes=2, **TINY)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    info = read_checkpoint_info(path)
    assert (info.architecture, info.scale, info.class_names) == (
        "SHISRCNet",
        4,
        ("benign", "malignant"),
    )
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    metadata = json.loads(header["__metadata__"]["napari_shisrcnet"])
    assert metadata["input_normalization"] == {"color": "RGB", "value_range": [0.0, 1.0]}


def test_fp16_weights_load_into_an_fp32_model(tmp_path):
    model = _trained_like(SRMFENet(scale=2, **TINY_SR))
    path = save_checkpoint(model, tmp_path / "half.safetensors", weights_dtype=torch.float16)
    loaded, _ = load_checkpoint(path)
    weight = loaded.head.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, model.head.weight.half().float())


def test_wrong_number_of_class_names_is_refused(tmp_path):
    with pytest.raises(ValueError, match="3 class names given for 2 classes"):
        save_checkpoint(SHISRCNet(**TINY), tmp_path / "m.safetensors", class_names=["a", "b", "c"])
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def good_checkpoint(tmp_path):
    return save_checkpoint(_trained_like(SHISRCNet(scale=2, **TINY)), tmp_path / "good.safetensors")


def _assert_one_line_error(path, match, **kwargs):
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(CheckpointError, match=match) as caught:
        load_checkpoint(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    if before is not None:
        assert path.read_bytes() == before  # loading never touches the file


def test_missing_file(tmp_path):
    _assert_one_line_error(tmp_path / "nope.safetensors", "checkpoint not found")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(bytes(range(7, 256)) * 10)
    _assert_one_line_error(path, "is not a safetensors checkpoint")


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are not weights")
    _assert_one_line_error(path, "is not a safetensors checkpoint")


def test_pytorch_pickle_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(SRMFENet(**TINY_SR).state_dict(), path)
    _assert_one_line_error(path, "is a PyTorch pickle, which can run code")


def test_truncated_file(good_checkpoint):
    blob = good_checkpoint.read_bytes()
    good_checkpoint.write_bytes(blob[:-100])
    _assert_one_line_error(good_checkpoint, "corrupt or truncated: its tensors need")
    good_checkpoint.write_bytes(blob[:1000])  # inside the header
    _assert_one_line_error(good_checkpoint, "is not a safetensors checkpoint, or it is truncated")


def test_flipped_weight_byte_is_caught_by_the_checksum(good_checkpoint):
    blob = bytearray(good_checkpoint.read_bytes())
    blob[-1] ^= 0xFF
    good_checkpoint.write_bytes(bytes(blob))
    _assert_one_line_error(good_checkpoint, "does not match its checksum")


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    _assert_one_line_error(path, "not a napari-shisrcnet checkpoint")


def _edit_header(path, edit):
    """Let ``edit(header, metadata)`` change a checkpoint's header in place; keep its data."""
    blob = path.read_bytes()
    header_len = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + header_len])
    metadata = json.loads(header["__metadata__"]["napari_shisrcnet"])
    edit(header, metadata)
    header["__metadata__"]["napari_shisrcnet"] = json.dumps(metadata)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + blob[8 + header_len :])


def _edit_metadata(path, **changes):
    """Rewrite fields of a checkpoint's napari_shisrcnet metadata, keeping its tensor bytes."""
    _edit_header(path, lambda header, metadata: metadata.update(changes))


def _edit_config(path, section, **changes):
    """Rewrite settings of one section ('sr' or 'classifier') of a checkpoint's config."""
    _edit_header(path, lambda header, metadata: metadata["config"][section].update(changes))


def test_weights_of_another_architecture(tmp_path):
    # x4 tensors behind metadata that describes a x2 model: the upsampler cannot match.
    x2_config = SHISRCNet(scale=2, **TINY).config.to_dict()
    path = save_checkpoint(SHISRCNet(scale=4, **TINY), tmp_path / "x4.safetensors")
    _edit_metadata(path, config=x2_config, scale=2)
    _assert_one_line_error(
        path, "does not match its weights: its metadata says x2, its upsampler weights are x4"
    )
    # Classifier weights behind SHISRCNet metadata.
    classifier = SKNetFPNClassifier(width=0.125, fpn_channels=64)
    path = save_checkpoint(classifier, tmp_path / "classifier.safetensors")
    _edit_metadata(path, architecture="SHISRCNet", config=x2_config, scale=2)
    _assert_one_line_error(path, "its metadata says x2, its upsampler weights are missing")


def test_requested_scale_and_architecture_are_checked(good_checkpoint):
    _assert_one_line_error(good_checkpoint, r"is a x2 model; x4 was requested", expected_scale=4)
    _assert_one_line_error(
        good_checkpoint,
        "holds a SHISRCNet; a SRMFENet was requested",
        expected_architecture="SRMFENet",
    )


def test_newer_format_is_refused(good_checkpoint):
    _edit_metadata(good_checkpoint, format_version=99)
    _assert_one_line_error(good_checkpoint, "checkpoint format 99, newer than")


def test_damaged_metadata(good_checkpoint):
    _edit_metadata(good_checkpoint, config=None, architecture="ResNet-1000")
    _assert_one_line_error(good_checkpoint, "unknown architecture 'ResNet-1000'")


# Nothing in a checkpoint is trusted: the scale, the class names, the config and the
# values are checked against the tensors, and the header is read first and bounded.


@pytest.mark.parametrize("config_too", [False, True], ids=["metadata", "metadata-and-config"])
def test_a_claimed_scale_must_be_the_weights_scale(good_checkpoint, config_too):
    # The file holds a x2 network; metadata claiming x4 used to load and pass --scale 4.
    _edit_metadata(good_checkpoint, scale=4)
    if config_too:
        _edit_config(good_checkpoint, "sr", scale=4)
    message = "does not match its weights: its metadata says x4, its upsampler weights are x2"
    _assert_one_line_error(good_checkpoint, message)
    _assert_one_line_error(good_checkpoint, message, expected_scale=4)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint_info(good_checkpoint)


def test_a_claimed_scale_in_the_config_alone(good_checkpoint):
    _edit_config(good_checkpoint, "sr", scale=8)
    _assert_one_line_error(good_checkpoint, "its config says x8, its upsampler weights are x2")


@pytest.mark.parametrize(
    ("class_names", "match"),
    [
        (["a", "b", "c"], r"names 3 classes \(\['a', 'b', 'c'\]\) but its classifier head has 2"),
        ([], r"names 0 classes \(\[\]\) but its classifier head has 2 outputs"),
        (["a", "a"], "has damaged class names"),
        (["a", 2], "has damaged class names"),
        ("ab", "has damaged class names"),
    ],
    ids=["three", "none", "repeated", "not-text", "a-string"],
)
def test_class_names_must_match_the_classifier_head(good_checkpoint, class_names, match):
    _edit_metadata(good_checkpoint, class_names=class_names)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint_info(good_checkpoint)  # known before any tensor is read
    _assert_one_line_error(good_checkpoint, match)


def test_an_sr_module_names_no_classes(tmp_path):
    path = save_checkpoint(SRMFENet(scale=2, **TINY_SR), tmp_path / "sr.safetensors")
    _edit_metadata(path, class_names=["benign", "malignant"])
    _assert_one_line_error(path, "names 2 classes .* but it has no classifier")


def _nan_in_head(model):
    model.sr_module.head.weight[0, 0, 0, 0] = float("nan")


def _inf_in_batch_norm(model):
    model.classifier.backbone.stem[1].running_var[0] = float("inf")


@pytest.mark.parametrize("weights_dtype", [None, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize(
    ("spoil", "name"),
    [
        (_nan_in_head, "sr_module.head.weight"),
        (_inf_in_batch_norm, "classifier.backbone.stem.1.running_var"),
    ],
    ids=["nan-weight", "inf-buffer"],
)
def test_non_finite_weights_are_refused(tmp_path, spoil, name, weights_dtype):
    # Such a file used to load, and a run on it exited 0 with a black image.
    model = _trained_like(SHISRCNet(scale=2, **TINY))
    with torch.no_grad():
        spoil(model)
    path = save_checkpoint(model, tmp_path / "m.safetensors", weights_dtype=weights_dtype)
    assert read_checkpoint_info(path).scale == 2  # the header alone is sound
    _assert_one_line_error(path, rf"holds non-finite weights \(NaN or Inf\) in {name}$")


def _assert_refused_quickly(path, match, seconds=1.0):
    start = time.perf_counter()
    _assert_one_line_error(path, match)
    assert time.perf_counter() - start < seconds


@pytest.mark.parametrize(
    ("section", "setting", "value", "match"),
    [
        # Used to cost 2.8 GB and 11 s (2000) or a raw traceback allocating 130 GB (60000).
        ("sr", "channels", 2000, "sr.channels is 2000; expected a whole number 1-1024"),
        ("sr", "channels", 60000, "sr.channels is 60000; expected a whole number 1-1024"),
        ("sr", "n_blocks", 10**9, "sr.n_blocks is 1000000000; expected a whole number 1-16"),
        ("sr", "channels", 8.0, "sr.channels is 8.0; expected a whole number"),
        ("sr", "dilation_rates", [], r"sr.dilation_rates is \[\]; expected 1-8 whole numbers"),
        ("sr", "bicubic_residual", 1, "sr.bicubic_residual is 1; expected true or false"),
        ("sr", "scale", 3, r"sr.scale is 3; supported scales are \(2, 4, 8\)"),
        ("classifier", "width", 1e6, "classifier.width is 1000000.0; expected 0.015625-4"),
        ("classifier", "width", float("nan"), "classifier.width is nan; expected"),
        (
            "classifier",
            "stage_blocks",
            [2, 2, 2],
            r"classifier.stage_blocks is \[2, 2, 2\]; expected 4 whole numbers 1-24",
        ),
        ("classifier", "num_classes", "two", "classifier.num_classes is 'two'; expected"),
        ("classifier", "layers", 152, "unknown setting 'classifier.layers'"),
    ],
)
def test_config_out_of_bounds_is_refused_before_anything_is_built(
    good_checkpoint, section, setting, value, match
):
    _edit_config(good_checkpoint, section, **{setting: value})
    _assert_refused_quickly(good_checkpoint, "has an invalid SHISRCNet config: " + match)


#: The largest network the config bounds allow (9 G parameters): described, never built.
LARGEST = dict(
    sr=dict(channels=1024, n_blocks=16, dilation_rates=[1, 2, 4, 8, 16, 32, 64, 64]),
    classifier=dict(width=4.0, stage_blocks=[24] * 4, fpn_channels=4096, fpn_levels=4),
)


def _claim_largest(path):
    for section, settings in LARGEST.items():
        _edit_config(path, section, **settings)


def test_a_config_within_bounds_must_match_the_tensors(good_checkpoint):
    # The shapes are compared on the meta device, so this lie costs no memory (see below);
    # describing 9 G parameters takes ~0.3 s, so allow a loaded machine some slack.
    _claim_largest(good_checkpoint)
    _assert_refused_quickly(
        good_checkpoint,
        r"does not match the SHISRCNet its metadata describes: \d+ missing tensor.* "
        r"\d+ tensor\(s\) with the wrong shape \(e.g. .* in file, .* expected\)",
        seconds=2.0,
    )


def _replace_tensors(path, **replacements):
    """Rewrite a checkpoint with some tensors replaced, keeping its metadata."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    save_file({**tensors, **replacements}, str(path), metadata=metadata)


def test_tensor_types_are_checked(good_checkpoint):
    _replace_tensors(good_checkpoint, **{"sr_module.head.bias": torch.zeros(8, dtype=torch.int32)})
    _assert_one_line_error(
        good_checkpoint, r"1 tensor\(s\) of the wrong type \(e.g. sr_module.head.bias: torch.int32"
    )


def test_every_config_setting_has_a_bound():
    bounded = {
        "scale",
        *INT_BOUNDS,
        *INT_LIST_BOUNDS,
        *FLOAT_BOUNDS,
        *BOOL_SETTINGS,
        *CHOICE_SETTINGS,
    }
    for config_class in (SRMFENetConfig, ClassifierConfig):
        assert {f.name for f in dataclasses.fields(config_class)} <= bounded


def _sparse_file(path, first_bytes, size=200_000_000):
    """A file of ``size`` bytes (sparse: it costs no disk) that starts with ``first_bytes``."""
    with open(path, "wb") as handle:
        handle.write(first_bytes)
        handle.truncate(size)
    return path


@pytest.mark.parametrize(
    ("first_bytes", "match"),
    [
        # Used to be read whole (a 3 GB file: 3.4 GB of memory) before it was refused.
        (b"\xd3\x1f\x8b\xee\x00\x17\x42\x99", r"announce a [\d,]+-byte header; at most"),
        (struct.pack("<Q", 160_000_000), "announce a 160,000,000-byte header; at most"),
        (struct.pack("<Q", MAX_HEADER_BYTES) + b"{", "unreadable header"),
        (struct.pack("<Q", 2) + b"{}", r"is corrupt: 199,999,990 bytes follow its last tensor"),
    ],
    ids=["random", "huge-header", "largest-header", "no-tensors"],
)
def test_a_large_junk_file_is_refused_without_reading_it(tmp_path, first_bytes, match):
    path = _sparse_file(tmp_path / "junk.safetensors", first_bytes)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=match) as caught:
            load_checkpoint(path)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)
    assert peak_bytes < 3 * MAX_HEADER_BYTES  # at most the bounded header, never the file


def _rewrite_entries(path, edit):
    def edit_tensors(header, metadata):
        edit({name: value for name, value in header.items() if name != "__metadata__"})

    _edit_header(path, edit_tensors)


def _shift(entries):
    entry = entries["sr_module.head.bias"]
    entry["data_offsets"] = [entry["data_offsets"][0] + 4, entry["data_offsets"][1] + 4]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda e: e["sr_module.head.bias"].update(dtype="F8_E4M3"), "of unknown type 'F8_E4M3'"),
        (lambda e: e["sr_module.head.bias"].update(shape=[9]), "does not fit its shape"),
        (lambda e: e["sr_module.head.bias"].update(shape=[-8]), "header entry of .* is damaged"),
        (lambda e: e["sr_module.head.bias"].update(data_offsets=[0]), "entry of .* is damaged"),
        (_shift, "its tensors overlap or leave gaps"),
    ],
    ids=["dtype", "shape", "negative", "offsets", "overlap"],
)
def test_lying_tensor_entries_are_refused_from_the_header(good_checkpoint, edit, match):
    _rewrite_entries(good_checkpoint, edit)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint_info(good_checkpoint)
    _assert_one_line_error(good_checkpoint, match)


def test_messages_stay_on_one_line_whatever_the_file_says(good_checkpoint):
    _edit_metadata(good_checkpoint, architecture="Res\nNet")
    _assert_one_line_error(good_checkpoint, r"unknown architecture 'Res\\nNet'")


_PEAK_MEMORY_PROBE = """
import resource, sys
from napari_shisrcnet.model import CheckpointError, load_checkpoint
good, *bad = sys.argv[1:]
load_checkpoint(good)  # imports and first use of the meta device, before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for path in bad:
    try:
        load_checkpoint(path)
    except CheckpointError:
        pass
    else:
        raise SystemExit(f"{path} loaded")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_lying_and_junk_files_cost_no_memory(tmp_path):
    # A fresh process, so the peak (ru_maxrss) is not an earlier test's.
    model = _trained_like(SHISRCNet(scale=2, **TINY))
    good = save_checkpoint(model, tmp_path / "good.safetensors")
    bad = []
    for name, edit in [
        ("2000", lambda path: _edit_config(path, "sr", channels=2000)),
        ("60000", lambda path: _edit_config(path, "sr", channels=60000)),
        ("largest", _claim_largest),
    ]:
        bad.append(save_checkpoint(model, tmp_path / f"{name}.safetensors"))
        edit(bad[-1])
    bad.append(_sparse_file(tmp_path / "junk.safetensors", b"\x00\x00\x10\x00\x00\x00\x00\x00"))
    probe = [sys.executable, "-c", _PEAK_MEMORY_PROBE, str(good), *map(str, bad)]
    growth_mb = int(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)
    assert growth_mb < 100


def test_a_header_whose_length_starts_with_the_pickle_byte_is_still_read(tmp_path):
    # 0x80 is also a pickle's first byte; only the byte after the length tells them apart.
    import struct

    model = SRMFENet(**TINY_SR)
    for padding in range(256):
        path = save_checkpoint(
            model, tmp_path / "m.safetensors", provenance={"note": "x" * padding}
        )
        (length,) = struct.unpack("<Q", path.read_bytes()[:8])
        if length % 256 == 0x80:
            break
    assert path.read_bytes()[:1] == b"\x80"
    loaded, _ = load_checkpoint(path)
    assert loaded.config.channels == TINY_SR["channels"]
