"""A tensor-resident batch loader (airbench-style): the split lives on the device and batches are index
gathers from a permutation seeded by ``(seed, epoch)``, sharded across ranks like
:class:`torch.utils.data.DistributedSampler`.
"""

from collections.abc import Callable, Iterator

import torch

from lenetlab.data.transforms import InputSpec, prepare

Batch = tuple[torch.Tensor, torch.Tensor | None]


def batch_count(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches in an epoch of ``n`` examples: ``drop_last`` drops a partial final batch; otherwise a final
    batch of one example joins the one before (batch norm cannot normalise a single example)."""
    if drop_last:
        return n // batch_size
    return n // batch_size if n % batch_size == 1 and n > batch_size else -(-n // batch_size)


class TensorLoader:
    """``(x, y)`` batches (:func:`batch_count`) of ``x`` ``uint8 [N, C, H, W]`` kept on ``device``, through
    :func:`prepare` with ``spec`` (if any), and ``y`` ``int64 [N]`` or None; ``transform`` follows ``prepare``
    while :attr:`training`. :meth:`set_epoch` chooses the epoch and its first batch (mid-epoch resume)."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        rank: int = 0,
        world_size: int = 1,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        *,
        spec: InputSpec | None = None,
        pad: bool | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, world_size={world_size})")
        if y is not None and len(y) != len(x):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = None if y is None else y.to(self.device)
        self.batch_size, self.shuffle, self.seed, self.drop_last = int(batch_size), shuffle, int(seed), drop_last
        self.spec, self.transform, self.dtype = spec, transform, dtype
        self.rank, self.world_size = int(rank), int(world_size)
        self.pad = shuffle if pad is None else pad  # pad (DistributedSampler) for training, exact for eval
        self.training = shuffle
        self.epoch = self.start_batch = 0

    def __len__(self) -> int:
        """Batches per epoch on this rank (all ranks agree when ``pad`` is True)."""
        n, w = len(self.x), self.world_size
        per_rank = -(-n // w) if self.pad else len(range(self.rank, n, w))
        return batch_count(per_rank, self.batch_size, self.drop_last)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (it seeds the permutation) and skip its first ``start_batch`` batches."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def indices(self) -> torch.Tensor:
        """This rank's example indices (int64 on the device) for the current epoch."""
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(n, generator=g)
        else:
            perm = torch.arange(n)
        if self.pad and self.world_size > 1 and n:
            total = -(-n // self.world_size) * self.world_size
            perm = perm.repeat(-(-total // n))[:total]  # wrap around, as DistributedSampler does
        return perm[self.rank :: self.world_size].to(self.device)

    def batch(self, idx: torch.Tensor) -> Batch:
        """Gather and convert the examples at ``idx`` (int64 on the device)."""
        xb = self.x.index_select(0, idx)
        if self.spec is not None:
            xb = prepare(xb, self.spec, self.dtype)
        if self.transform is not None and self.training:
            xb = self.transform(xb)
        return xb, None if self.y is None else self.y.index_select(0, idx)

    def __iter__(self) -> Iterator[Batch]:
        idx = self.indices()
        nb, bs = len(self), self.batch_size
        start, self.start_batch = self.start_batch, 0  # the skip applies to one pass only
        for b in range(start, nb):
            last = b == nb - 1 and not self.drop_last  # takes the rest: a single leftover example joins it
            yield self.batch(idx[b * bs : None if last else (b + 1) * bs])
