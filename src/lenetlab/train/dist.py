"""The process-group context the runner sees: one process, or DistributedDataParallel under torchrun.

Communication only: the :class:`~lenetlab.train.runner.Runner` asks this object who it is
(``rank``, ``world_size``, ``is_main``), to wrap the model, to sum tensors across processes and to
wait at a barrier. :class:`SingleProcess` does nothing; :class:`DistributedContext` (built by
:meth:`DistributedContext.from_env` when torchrun set ``WORLD_SIZE > 1``) provides the same methods
backed by ``torch.distributed``:

- backend chosen automatically: ``gloo`` on CPU-only machines; on CUDA machines the group is
  ``cpu:gloo,cuda:nccl`` so CUDA tensors go through NCCL and CPU tensors/objects through gloo;
- each process uses the GPU ``LOCAL_RANK`` (``torch.cuda.set_device``);
- every collective has a timeout (``LENETLAB_DIST_TIMEOUT`` seconds, default 1800: rank 0 may be
  downloading a dataset while the others wait), so a rank never waits forever for a hung peer;
  a rank that dies is noticed sooner by torchrun, which stops the whole job;
- evaluation is sharded exactly by :func:`lenetlab.inference.evaluate.evaluate_sharded` with this
  object's ``all_reduce_sum``.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from lenetlab.errors import ConfigError, first_line

TIMEOUT_ENV = "LENETLAB_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0


@dataclass
class SingleProcess:
    """The default context: one process, rank 0 of 1, which does all the writing."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that prints, writes checkpoints, metrics and plots."""
        return self.rank == 0

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train (DDP wraps it; here it is returned unchanged)."""
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain model inside a wrapper (for state dicts and evaluation)."""
        return getattr(model, "module", model)

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` with batch norm synchronised across processes (one process: unchanged)."""
        return model

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes in place and return it (a no-op for one process)."""
        return tensor

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process (identity for one process)."""
        return obj

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for here)."""

    def close(self) -> None:
        """Tear the process group down (nothing to do here)."""


def timeout_from_env() -> timedelta:
    """The collective timeout: ``$LENETLAB_DIST_TIMEOUT`` seconds (default 1800)."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"${TIMEOUT_ENV}: expected seconds, got {text!r}") from None
    if seconds <= 0:
        raise ConfigError(f"${TIMEOUT_ENV}: must be > 0 seconds, got {text!r}")
    return timedelta(seconds=seconds)


def _env_int(name: str) -> int:
    text = os.environ.get(name)
    if text is None:
        raise ConfigError(f"${name} is not set: start distributed training with torchrun (or `lenet train --nproc N`)")
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"${name}: expected an integer, got {text!r}") from None


@dataclass
class DistributedContext:
    """One process of a torchrun job: DistributedDataParallel over a ``torch.distributed`` group.

    Build it with :meth:`from_env` (reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT`` set by torchrun). ``backend`` is what the group was created
    with (``gloo`` or ``cpu:gloo,cuda:nccl``).
    """

    rank: int
    world_size: int
    local_rank: int = 0
    backend: str = "gloo"
    timeout: timedelta = field(default_factory=lambda: timedelta(seconds=DEFAULT_TIMEOUT_S))
    _cuda_problem: str | None = None

    @classmethod
    def from_env(cls, backend: str = "auto", timeout: timedelta | None = None) -> DistributedContext:
        """Join the process group described by torchrun's environment variables.

        ``backend="auto"``: ``gloo`` without CUDA, ``cpu:gloo,cuda:nccl`` with it (NCCL for the
        CUDA tensors DDP reduces; gloo for CPU tensors and pickled objects). On CUDA machines the
        process binds to GPU ``LOCAL_RANK``.
        """
        rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), int(os.environ.get("LOCAL_RANK", "0"))
        timeout = timeout or timeout_from_env()
        cuda = torch.cuda.is_available()
        problem = None
        if cuda:
            count = torch.cuda.device_count()
            if local < count:
                torch.cuda.set_device(local)
            else:
                problem = (
                    f"LOCAL_RANK {local} but this machine has {count} CUDA device(s): start at most "
                    f"{count} processes per node (--nproc_per_node) or train with --device cpu"
                )
        if backend == "auto":
            backend = "cpu:gloo,cuda:nccl" if cuda and dist.is_nccl_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timeout)
        return cls(
            rank=rank, world_size=world, local_rank=local, backend=backend, timeout=timeout, _cuda_problem=problem
        )

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that prints, writes checkpoints, metrics and plots."""
        return self.rank == 0

    def describe(self, device: torch.device | None = None) -> str:
        """A short human description, e.g. ``DDP 2 processes (gloo)``."""
        name = "nccl" if device is not None and device.type == "cuda" and "nccl" in self.backend else "gloo"
        return f"DDP over {self.world_size} processes ({name}, timeout {self.timeout.total_seconds():g} s)"

    def _check_device(self, device: torch.device) -> None:
        if device.type == "cuda" and self._cuda_problem:
            raise ConfigError(self._cuda_problem)
        if device.type == "mps":
            raise ConfigError(
                "device: mps cannot be used with several processes (no MPS backend in "
                "torch.distributed); use --device cpu"
            )

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` (already on ``device``) wrapped in DistributedDataParallel; DDP broadcasts rank
        0's parameters and buffers, so every rank starts from the same weights."""
        device = torch.device(device)
        self._check_device(device)
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            return DDP(model, device_ids=[index], output_device=index)
        return DDP(model)

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain model inside DDP (and/or ``torch.compile``): what checkpoints store."""
        model = getattr(model, "_orig_mod", model)
        return getattr(model, "module", model)

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` with every BatchNorm layer converted to :class:`torch.nn.SyncBatchNorm`
        (statistics over the global batch). The state-dict keys are unchanged, so checkpoints load
        into the plain model. PyTorch implements SyncBatchNorm only on GPUs."""
        device = torch.device(device)
        if device.type != "cuda":
            raise ConfigError(
                f"field 'sync_bn': SyncBatchNorm needs CUDA devices (PyTorch has no CPU version); "
                f"this run is on {device.type}: drop --sync-bn"
            )
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all ranks in place and return it."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (picklable) on every rank."""
        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank gets here (or fail after the timeout)."""
        dist.barrier()

    def close(self) -> None:
        """Wait for every rank (rank 0 may still be writing plots), then destroy the process group, so
        no rank tears its connections down while a peer still uses them (idempotent)."""
        if dist.is_initialized():
            gc.collect()  # free DDP reducers (reference cycles) while the group still exists
            dist.barrier()
            dist.destroy_process_group()


def in_torchrun() -> bool:
    """True when this process was started by torchrun (or anything setting ``WORLD_SIZE``/``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def failure_line(ctx, exc: BaseException) -> str:
    """One line naming the failing rank of ``ctx``, so a torchrun log says who failed and why."""
    msg = first_line(exc, 300)
    peer = any(s in msg for s in ("Connection closed by peer", "Connection reset by peer", "Broken pipe"))
    hint = " [probably because another rank failed first: see its message and torchrun's report]" if peer else ""
    return f"[rank {ctx.rank}/{ctx.world_size}] failed: {type(exc).__name__}: {msg}{hint}"
