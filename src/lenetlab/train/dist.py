"""The process group the runner sees: :class:`SingleProcess`, or :class:`DistributedContext` (one process
of a torchrun job, DistributedDataParallel over gloo on CPU, ``cpu:gloo,cuda:nccl`` on CUDA, each
process on GPU ``LOCAL_RANK``). Every collective has a timeout (``$LENETLAB_DIST_TIMEOUT`` seconds,
default 1800: rank 0 may be downloading a dataset while the others wait)."""

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
    """One process, rank 0 of 1, which does all the writing; every collective is a no-op."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the process that prints, writes checkpoints, metrics and plots."""
        return self.rank == 0

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train (DDP wraps it)."""
        return model

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The plain model inside DDP and/or ``torch.compile``: what checkpoints store."""
        model = getattr(model, "_orig_mod", model)
        return getattr(model, "module", model)

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` with batch norm synchronised across processes."""
        return model

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes in place and return it."""
        return tensor

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (picklable) on every process."""
        return obj

    def barrier(self) -> None:
        """Wait for every process."""

    def close(self) -> None:
        """Tear the process group down."""


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
class DistributedContext(SingleProcess):
    """One process of a torchrun job, over a ``torch.distributed`` group created with ``backend``."""

    local_rank: int = 0
    backend: str = "gloo"
    timeout: timedelta = field(default_factory=lambda: timedelta(seconds=DEFAULT_TIMEOUT_S))
    _cuda_problem: str | None = None

    @classmethod
    def from_env(cls) -> "DistributedContext":
        """Join the process group of torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ...):
        gloo, and NCCL for CUDA tensors on a CUDA machine (each process on GPU ``LOCAL_RANK``)."""
        rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), int(os.environ.get("LOCAL_RANK", "0"))
        timeout = timeout_from_env()
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
        backend = "cpu:gloo,cuda:nccl" if cuda and dist.is_nccl_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=timeout)
        return cls(
            rank=rank, world_size=world, local_rank=local, backend=backend, timeout=timeout, _cuda_problem=problem
        )

    def describe(self, device: torch.device | None = None) -> str:
        """A short description, e.g. ``DDP over 2 processes (gloo, timeout 1800 s)``."""
        name = "nccl" if device is not None and device.type == "cuda" and "nccl" in self.backend else "gloo"
        return f"DDP over {self.world_size} processes ({name}, timeout {self.timeout.total_seconds():g} s)"

    def wrap_model(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` (on ``device``) in DistributedDataParallel, which gives every rank rank 0's weights."""
        device = torch.device(device)
        if device.type == "cuda" and self._cuda_problem:
            raise ConfigError(self._cuda_problem)
        if device.type == "mps":
            raise ConfigError(
                "device: mps cannot be used with several processes (no MPS backend in "
                "torch.distributed); use --device cpu"
            )
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            return DDP(model, device_ids=[index], output_device=index)
        return DDP(model)

    def sync_batchnorm(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` with its BatchNorm layers as :class:`torch.nn.SyncBatchNorm` (the same state-dict keys);
        CUDA only, as in PyTorch."""
        if torch.device(device).type != "cuda":
            raise ConfigError(
                f"field 'sync_bn': SyncBatchNorm needs CUDA devices (PyTorch has no CPU version); "
                f"this run is on {torch.device(device).type}: drop --sync-bn"
            )
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_object(self, obj):
        box = [obj if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        """Wait for every rank (rank 0 may still be writing plots), then destroy the group (idempotent)."""
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
