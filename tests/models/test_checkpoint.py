"""Checkpoints rebuild registered models; malformed ones give one-line errors."""

from __future__ import annotations

import pytest
import torch

import lenetlab.models as M
from lenetlab.errors import CheckpointError, LenetlabError


def _ckpt(name="lenet5", **kwargs):
    return {"model": {"name": name, "kwargs": kwargs}, "state_dict": M.create(name, **kwargs).state_dict()}


def test_round_trip_every_small_model(tmp_path):
    for info in M.list_models():
        if info.input_size[1] > 32:
            continue
        model = M.create(info.name).eval()
        path = M.save_checkpoint(tmp_path / f"{info.name}.pt", {"model": {"name": info.name, "kwargs": {}},
                                                               "state_dict": model.state_dict()})
        back = M.build_model(M.load_checkpoint(path))
        x = torch.randn(2, *info.input_size)
        torch.testing.assert_close(back(x), model(x), msg=info.name)


def test_kwargs_are_kept(tmp_path):
    path = M.save_checkpoint(tmp_path / "m.pt", _ckpt("lenet5-modern", width=8))
    assert M.build_model(M.load_checkpoint(path)).C1.out_channels == 8


@pytest.mark.parametrize("ckpt, needle, kind", [
    ({"state_dict": {}}, "no 'model' entry", CheckpointError),
    ({"model": {"name": "lenet5"}}, "no 'state_dict'", CheckpointError),
    ({"model": {"name": "lenet5", "kwargs": {"depth": 3}}, "state_dict": {}}, "arguments do not fit", CheckpointError),
    ({"model": {"name": "lenet5-mini", "kwargs": {}}, "state_dict": _ckpt("lenet5")["state_dict"]},
     "weights do not fit model 'lenet5-mini'", CheckpointError),
    ({"model": {"name": "lenet9"}, "state_dict": {}}, "unknown model 'lenet9'", LenetlabError),
])
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
    for path, needle in [(not_torch, "not a PyTorch checkpoint"), (unsafe, "cannot be loaded safely"),
                         (truncated, "corrupt or truncated")]:
        assert main(["eval", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {path}") and needle in err and "\n" not in err
