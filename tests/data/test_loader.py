"""TensorLoader: seeded permutations, epochs, mid-epoch resume, DDP sharding, transforms."""

from __future__ import annotations

import pytest
import torch

from lenetlab.data import InputSpec, TensorLoader, prepare
from lenetlab.data.loader import batch_count


def _data(n=103):
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 28, 28).contiguous()
    return x, torch.arange(n)


def _ids(loader):
    return torch.cat([yb for _, yb in loader]).tolist()


def test_one_epoch_is_a_permutation_and_len():
    x, y = _data()
    loader = TensorLoader(x, y, 10, shuffle=True, seed=3)
    assert len(loader) == 11
    ids = _ids(loader)
    assert sorted(ids) == list(range(103)) and ids != list(range(103))
    assert len(TensorLoader(x, y, 10, drop_last=True)) == 10
    assert sum(len(b) for _, b in TensorLoader(x, y, 10, drop_last=True)) == 100


def test_seeded_by_seed_and_epoch():
    x, y = _data()
    a, b, c = TensorLoader(x, y, 16, seed=1), TensorLoader(x, y, 16, seed=1), TensorLoader(x, y, 16, seed=2)
    assert _ids(a) == _ids(b) != _ids(c)
    e0 = _ids(a)
    a.set_epoch(1)
    e1 = _ids(a)
    assert e0 != e1
    b.set_epoch(1)
    assert _ids(b) == e1  # epoch e is reproducible on its own, without replaying epochs before it


def test_resume_mid_epoch_matches_tail():
    x, y = _data()
    loader = TensorLoader(x, y, 8, seed=5)
    loader.set_epoch(4)
    full = [yb.tolist() for _, yb in loader]
    loader.set_epoch(4, start_batch=6)
    assert [yb.tolist() for _, yb in loader] == full[6:]
    assert [yb.tolist() for _, yb in loader] == full  # the skip applies to one pass only


def test_batches_are_prepared_on_device():
    x, y = _data()
    spec = InputSpec()
    xb, yb = next(iter(TensorLoader(x, y, 4, shuffle=False, spec=spec)))
    assert xb.shape == (4, 1, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    torch.testing.assert_close(xb, prepare(x[:4], spec))
    raw, _ = next(iter(TensorLoader(x, y, 4, shuffle=False)))
    assert raw.dtype == torch.uint8  # no spec: uint8 as stored


def test_transform_only_when_training():
    x, y = _data()
    loader = TensorLoader(x, y, 4, shuffle=True, transform=lambda t: t + 1000, spec=InputSpec())
    assert next(iter(loader))[0].min() > 900
    loader.training = False
    assert next(iter(loader))[0].max() < 10
    assert next(iter(TensorLoader(x, y, 4, shuffle=False, transform=lambda t: t + 1000)))[0].max() < 255


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ddp_padded_shards(world):
    x, y = _data(103)
    loaders = [TensorLoader(x, y, 8, seed=7, rank=r, world_size=world) for r in range(world)]
    lens = {len(ld) for ld in loaders}
    assert len(lens) == 1  # every rank runs the same number of steps
    shards = [_ids(ld) for ld in loaders]
    assert {len(s) for s in shards} == {-(-103 // world)}
    assert set().union(*map(set, shards)) == set(range(103))
    assert sum(len(s) for s in shards) - 103 < world  # padding only wraps a few examples


@pytest.mark.parametrize("world", [2, 3, 5])
def test_ddp_exact_eval_partition(world):
    x, y = _data(103)
    shards = [_ids(TensorLoader(x, y, 10, shuffle=False, rank=r, world_size=world, pad=False)) for r in range(world)]
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(103))  # each example exactly once: exact metrics under DDP


def test_ddp_same_permutation_across_ranks():
    x, y = _data(40)
    whole = TensorLoader(x, y, 40, seed=9).indices().tolist()
    r0 = TensorLoader(x, y, 40, seed=9, rank=0, world_size=2).indices().tolist()
    r1 = TensorLoader(x, y, 40, seed=9, rank=1, world_size=2).indices().tolist()
    assert r0 == whole[0::2] and r1 == whole[1::2]


def test_unlabelled_and_bad_args():
    x, _ = _data(10)
    xb, yb = next(iter(TensorLoader(x, None, 4, shuffle=False)))
    assert yb is None and len(xb) == 4
    with pytest.raises(ValueError):
        TensorLoader(x, None, 0)
    with pytest.raises(ValueError):
        TensorLoader(x, None, 2, rank=2, world_size=2)
    with pytest.raises(ValueError):
        TensorLoader(x, torch.arange(3), 2)


def test_empty_split():
    x = torch.zeros(0, 1, 28, 28, dtype=torch.uint8)
    loader = TensorLoader(x, torch.zeros(0, dtype=torch.long), 4, world_size=2, rank=1)
    assert len(loader) == 0 and list(loader) == []


@pytest.mark.parametrize("world", [1, 2])
def test_a_final_batch_of_one_joins_the_one_before(world):
    """Batch norm cannot train on one example: 64k+1 images in batches of 64 give k batches, the last of 65."""
    n = 64 * 3 * world + world
    x, y = torch.zeros(n, 1, 28, 28, dtype=torch.uint8), torch.arange(n)
    loaders = [TensorLoader(x, y, 64, seed=1, rank=r, world_size=world) for r in range(world)]
    for ld in loaders:
        sizes = [len(xb) for xb, _ in ld]
        assert sizes == [64, 64, 65] and len(ld) == 3
    assert sorted(i for ld in loaders for i in _ids(ld)) == list(range(len(x)))  # every example, once
    assert batch_count(1000, 999) == 1 and batch_count(1001, 999) == 2 and batch_count(1, 64) == 1
    assert batch_count(65, 64, drop_last=True) == 1 and batch_count(130, 64) == 3
