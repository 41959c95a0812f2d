"""Forward-hook tracing: what chosen modules of a model receive and return during a forward pass
(:class:`Tracer`, and :func:`trace` for one ``with`` block), and the one rule for "the first
convolution" (:func:`first_conv`).
"""

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from lenetlab.errors import LenetlabError


@dataclass
class Call:
    """One call of a traced module: positional ``inputs`` (None unless kept) and ``output`` (None if it raised)."""

    name: str
    module: nn.Module
    inputs: tuple | None = None
    output: Any = None


class Tracer:
    """Forward hooks on ``(name, module)`` pairs until :meth:`remove`: inside :meth:`record`, in that thread
    only, each call is a :class:`Call` (in the order the calls start; inputs only with ``keep_inputs``)."""

    def __init__(self, modules: Iterable[tuple[str, nn.Module]], keep_inputs: bool = False) -> None:
        self._local = threading.local()
        self._handles = []
        for name, module in modules:
            self._handles += [
                module.register_forward_pre_hook(self._pre(name, keep_inputs)),
                module.register_forward_hook(self._post),
            ]

    def _pre(self, name: str, keep_inputs: bool):
        def hook(module, inputs) -> None:
            calls = getattr(self._local, "calls", None)
            if calls is not None:
                self._local.open.append(len(calls))  # the index its output goes to: calls nest
                calls.append(Call(name, module, inputs if keep_inputs else None))

        return hook

    def _post(self, module, inputs, output) -> None:
        calls = getattr(self._local, "calls", None)
        if calls is not None and self._local.open:
            calls[self._local.open.pop()].output = output

    @contextmanager
    def record(self) -> Iterator[list[Call]]:
        """Record this thread's calls of the hooked modules while the block runs; yields the list."""
        calls: list[Call] = []
        self._local.calls, self._local.open = calls, []
        try:
            yield calls
        finally:
            self._local.calls = None

    def remove(self) -> None:
        """Uninstall the hooks."""
        for h in self._handles:
            h.remove()


@contextmanager
def trace(modules: Iterable[tuple[str, nn.Module]], keep_inputs: bool = False) -> Iterator[list[Call]]:
    """Record the calls of ``modules`` during the ``with`` block (see :class:`Tracer`); the hooks are
    removed on exit, also when the block raises."""
    tracer = Tracer(modules, keep_inputs)
    try:
        with tracer.record() as calls:
            yield calls
    finally:
        tracer.remove()


def first_conv(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module, torch.Tensor]:
    """The first module with a 4-D ``weight`` to return a 4-D tensor on ``x``, in execution order:
    ``(name, module, output [N, C_out, H', W'])``; a :class:`LenetlabError` when there is none."""
    convs = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 4
    ]
    with trace(convs) as calls, torch.no_grad():
        model(x)
    for call in calls:
        if isinstance(call.output, torch.Tensor) and call.output.dim() == 4:
            return call.name, call.module, call.output.detach()
    raise LenetlabError(f"model {type(model).__name__} has no convolution layer to show")
