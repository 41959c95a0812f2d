"""Training: :class:`RunConfig` and the :class:`Runner` (``Runner(RunConfig(epochs=10)).run()``,
``Runner.resume(RUN_DIR).run()``), optimisers, schedules, recipes, run directories."""

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
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lenetlab.train' has no attribute {name!r}")
