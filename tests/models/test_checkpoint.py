"""Checkpoints rebuild registered models; malformed ones give one-line errors."""

from __future__ import annotations

import pytest
import torch

import lenetlab.models as M
from lenetlab.errors import CheckpointError, LenetlabError
from lenetlab.models.checkpoint import FORMAT


def _ckpt(name="lenet5", **kwargs):
    return {"model": {"name": name, "kwargs": kwargs}, "state_dict": M.create(name, **kwargs).state_dict()}


def test_round_trip_every_small_model(tmp_path):
    for info in M.list_models():
        if info.input_size[1] > 32:
            continue
        model = M.create(info.name).eval()
        path = M.save_checkpoint(
            tmp_path / f"{info.name}.pt", {"model": {"name": info.name, "kwargs": {}}, "state_dict": model.state_dict()}
        )
        back = M.build_model(M.load_checkpoint(path))
        x = torch.randn(2, *info.input_size)
        torch.testing.assert_close(back(x), model(x), msg=info.name)


def test_kwargs_are_kept(tmp_path):
    path = M.save_checkpoint(tmp_path / "m.pt", _ckpt("lenet5-modern", width=8))
    assert M.build_model(M.load_checkpoint(path)).C1.out_channels == 8


@pytest.mark.parametrize(
    "ckpt, needle, kind",
    [
        ({"state_dict": {}}, "no 'model' entry", CheckpointError),
        ({"model": {"name": "lenet5"}}, "no 'state_dict'", CheckpointError),
        (
            {"model": {"name": "lenet5", "kwargs": {"depth": 3}}, "state_dict": {}},
            "arguments do not fit",
            CheckpointError,
        ),
        (
            {"model": {"name": "lenet5-mini", "kwargs": {}}, "state_dict": _ckpt("lenet5")["state_dict"]},
            "weights do not fit model 'lenet5-mini'",
            CheckpointError,
        ),
        ({"model": {"name": "lenet9"}, "state_dict": {}}, "unknown model 'lenet9'", LenetlabError),
    ],
)
def test_bad_checkpoints_raise_one_line(ckpt, needle, kind):
    with pytest.raises(kind) as e:
        M.build_model(ckpt)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_saved_checkpoint_has_plain_file_permissions(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the final file must be readable like any other."""
    import os
    import stat

    from lenetlab.models.checkpoint import save_checkpoint

    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "c.pt", {"x": 1})
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_unreadable_checkpoint_files_name_the_problem(tmp_path, capsys):
    """A JSON file, a pickled object and a truncated archive each get their own one-line error."""
    import torch

    from lenetlab.cli import main
    from lenetlab.models.checkpoint import save_checkpoint

    not_torch = tmp_path / "config.json"
    not_torch.write_text('{"a": 1}')
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"x": open}, unsafe)
    good = save_checkpoint(tmp_path / "good.pt", {"x": torch.zeros(1000)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    for path, needle in [
        (not_torch, "not a PyTorch checkpoint"),
        (unsafe, "cannot be loaded safely"),
        (truncated, "corrupt or truncated"),
    ]:
        assert main(["eval", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {path}") and needle in err and "\n" not in err


# ----------------------------------------------------------------------------- checksums and field checks
SPEC = {"channels": 1, "size": 32, "resize": "pad", "mean": [0.5], "std": [0.5]}


def _full(**changes):
    """A complete lenet5 checkpoint payload (as lenet train writes best.pt), with ``changes`` applied
    (a value of ``...`` removes the field)."""
    ck = {
        "model": {"name": "lenet5", "kwargs": {}},
        "state_dict": M.create("lenet5").state_dict(),
        "class_names": [str(i) for i in range(10)],
        "input_spec": dict(SPEC),
        "config": {},
    }
    for key, value in changes.items():
        if value is ...:
            ck.pop(key)
        else:
            ck[key] = value
    return ck


def test_checksum_is_written_and_a_flipped_weight_byte_is_refused(tmp_path):
    path = M.save_checkpoint(tmp_path / "best.pt", _full())
    ck = torch.load(path, weights_only=True)
    assert ck["checksum"].startswith("sha256:") and len(ck["checksum"]) == 7 + 64
    M.load_checkpoint(path)  # intact: loads
    raw = bytearray(path.read_bytes())
    weights = ck["state_dict"]["F6.weight"].numpy().tobytes()
    at = bytes(raw).find(weights[:64])
    assert at > 0
    raw[at + 5] ^= 0x40  # one bit of one float, as a bad disk sector or a hostile edit would
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(raw))
    assert torch.load(bad, weights_only=True)["state_dict"]["F6.weight"].shape  # torch itself notices nothing
    with pytest.raises(CheckpointError) as e:
        M.load_checkpoint(bad)
    assert str(e.value).startswith(f"{bad}: field 'checksum' does not match") and "\n" not in str(e.value)


def test_checkpoints_without_checksum_are_refused(tmp_path):
    """A plain torch.save of a checkpoint dict, without the checksum: no exemption (issue 31), even with
    400 flipped weight bytes nothing else could tell."""
    old = tmp_path / "old.pt"
    torch.save({"format": FORMAT, **_full()}, old)
    with pytest.raises(CheckpointError) as e:
        M.load_model(old)
    assert str(e.value).startswith(f"{old}: field 'checksum' is missing") and "\n" not in str(e.value)


def test_shipped_model_has_a_checksum():
    from lenetlab.inference.predictor import default_checkpoint

    ck = M.load_checkpoint(default_checkpoint(), need=M.checkpoint.MODEL_FIELDS)
    assert ck["checksum"] == M.checkpoint.content_checksum(ck)


def test_checksum_survives_round_trip_of_every_field_type(tmp_path):
    payload = _full(
        extra={"a": [1, 2.5, None, True, "x", (3, 4)], "t": torch.tensor([True, False])},
        step=7,
        dev_accuracy=float("nan"),
    )
    path = M.save_checkpoint(tmp_path / "c.pt", payload)
    assert M.load_checkpoint(path)["step"] == 7
    payload2 = dict(payload, class_names=[str(i) for i in range(9)] + ["ten"])
    assert M.checkpoint.content_checksum(payload2) != M.checkpoint.content_checksum(payload)


BAD_FIELDS = [  # (changes, what the one-line error must name)
    ({"input_spec": ...}, "field 'input_spec' is missing"),
    ({"input_spec": dict(SPEC, size=100_000)}, "field 'input_spec.size' must be an integer from 8 to 512"),
    ({"input_spec": dict(SPEC, size=-1)}, "field 'input_spec.size'"),
    ({"input_spec": dict(SPEC, channels=2)}, "field 'input_spec.channels' must be 1 or 3"),
    ({"input_spec": dict(SPEC, resize="crop")}, "field 'input_spec.resize'"),
    ({"input_spec": dict(SPEC, mean=[0.5, 0.5])}, "field 'input_spec.mean' must list 1 number"),
    ({"input_spec": dict(SPEC, std=[0.0])}, "field 'input_spec.std' must be positive"),
    ({"input_spec": dict(SPEC, std=[float("nan")])}, "field 'input_spec.std' must hold finite numbers"),
    ({"input_spec": "32x32"}, "field 'input_spec' must be a dict"),
    ({"input_spec": dict(SPEC, digit_width=-4)}, "field 'input_spec.digit_width' must be 0 (off) or a whole number"),
    ({"input_spec": dict(SPEC, digit_width="wide")}, "field 'input_spec.digit_width'"),
    ({"input_spec": dict(SPEC, size=8)}, "field 'input_spec': lenet5 cannot take 1x8x8 inputs"),
    ({"class_names": ["0", "1", "2"]}, "field 'class_names' lists 3 classes but the model gives 10 outputs"),
    ({"class_names": []}, "field 'class_names' must be a non-empty list"),
    ({"class_names": list(range(10))}, "field 'class_names' must hold non-empty strings"),
    ({"class_names": ["7"] * 10}, "field 'class_names' names '7' twice"),
    (
        {"model": {"name": "lenet5", "kwargs": {"num_classes": -3}}},
        "field 'model.kwargs.num_classes' must be a positive",
    ),
    ({"model": {"name": "lenet5", "kwargs": {"num_classes": 10**12}}}, "weights do not fit model 'lenet5'"),
    ({"model": "lenet5"}, "field 'model' must be {'name': str"),
    ({"model": ...}, "field 'model' is missing"),
    ({"state_dict": [1, 2]}, "field 'state_dict' must be a non-empty dict of tensors"),
    ({"config": [1]}, "field 'config' must be a dict"),
]


@pytest.mark.parametrize("changes, needle", BAD_FIELDS)
def test_malformed_fields_are_refused_at_load_by_eval_predict_export(tmp_path, capsys, changes, needle):
    """Each bad field: `lenet eval`, `lenet predict`, `lenet export` and `lenet serve` refuse the file at
    load with one line naming it and the field (no 500 per request, no 40 GB allocation per request)."""
    from PIL import Image

    from lenetlab.cli import main

    path = M.save_checkpoint(tmp_path / "bad.pt", _full(**changes))
    img = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(img)
    for argv in (
        ["eval", str(path), "--device", "cpu"],
        ["predict", str(path), str(img), "--device", "cpu"],
        ["export", str(path), "--out", str(tmp_path / "m.onnx")],
        ["serve", str(path), "--port", "0", "--host", "127.0.0.1"],
    ):  # refused before it listens
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and needle in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "m.onnx").exists()


def test_a_huge_model_in_the_kwargs_is_refused_before_it_is_allocated(tmp_path):
    """lenet5-modern's width sizes every layer: 10**6 would be terabytes. The meta-device check refuses it
    from the weights' shapes without allocating anything."""
    ck = _full(
        model={"name": "lenet5-modern", "kwargs": {"width": 10**6}}, state_dict=M.create("lenet5-modern").state_dict()
    )
    with pytest.raises(CheckpointError, match="weights do not fit model 'lenet5-modern': "):
        M.build_model(ck, source="x.pt")


def test_input_spec_from_dict_accepts_what_to_dict_writes():
    from lenetlab.data.transforms import InputSpec

    for spec in (InputSpec(), InputSpec(channels=3, size=224, resize="resize", mean=(0.1, 0.2, 0.3), std=(1, 2, 3))):
        assert InputSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()
