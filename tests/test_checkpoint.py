import json
import struct

import pytest
import torch
from safetensors.torch import save_file

import napari_shisrcnet
from napari_shisrcnet.model import (
    CheckpointError,
    SHISRCNet,
    SKNetFPNClassifier,
    SRMFENet,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)

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
    good_checkpoint.write_bytes(good_checkpoint.read_bytes()[:-100])
    _assert_one_line_error(good_checkpoint, "corrupt")


def test_flipped_weight_byte_is_caught_by_the_checksum(good_checkpoint):
    blob = bytearray(good_checkpoint.read_bytes())
    blob[-1] ^= 0xFF
    good_checkpoint.write_bytes(bytes(blob))
    _assert_one_line_error(good_checkpoint, "does not match its checksum")


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    _assert_one_line_error(path, "not a napari-shisrcnet checkpoint")


def _edit_metadata(path, **changes):
    """Rewrite fields of a checkpoint's napari_shisrcnet metadata, keeping its tensor bytes."""
    blob = path.read_bytes()
    header_len = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + header_len])
    metadata = json.loads(header["__metadata__"]["napari_shisrcnet"])
    header["__metadata__"]["napari_shisrcnet"] = json.dumps({**metadata, **changes})
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + blob[8 + header_len :])


def test_weights_of_another_architecture(tmp_path):
    # x4 tensors behind metadata that describes a x2 model: the upsampler cannot match.
    x2_config = SHISRCNet(scale=2, **TINY).config.to_dict()
    path = save_checkpoint(SHISRCNet(scale=4, **TINY), tmp_path / "x4.safetensors")
    _edit_metadata(path, config=x2_config, scale=2)
    _assert_one_line_error(
        path, "does not match the SHISRCNet its metadata describes: .*unexpected"
    )


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
