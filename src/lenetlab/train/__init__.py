"""Training: :class:`RunConfig`, the :class:`Runner`, optimisers/schedules, devices, resume.

Quick start::

    from lenetlab.train import RunConfig, Runner
    result = Runner(RunConfig(epochs=10)).run()   # lenet5 on the embedded mnist-subset
    print(result.test.accuracy, result.best_path)

    Runner.resume("runs/lenet5-20260101-120000").run()   # continue from last.pt
"""

from __future__ import annotations

import importlib

# Names are imported on first use (PEP 562), so that importing ``lenetlab.train.config`` (the CLI
# does, to build ``lenet train``'s flags) does not pull in the Runner, the models and the data layer.
_EXPORTS = {
    "RunConfig": "lenetlab.train.config",
    "load_config_file": "lenetlab.train.config",
    "save_config": "lenetlab.train.config",
    "SingleProcess": "lenetlab.train.dist",
    "Runner": "lenetlab.train.runner",
    "RunResult": "lenetlab.train.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Import the public names lazily from their modules."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lenetlab.train' has no attribute {name!r}")
