"""Training: :class:`RunConfig`, the :class:`Runner`, optimisers/schedules, devices, resume.

Quick start::

    from lenetlab.train import RunConfig, Runner
    result = Runner(RunConfig(epochs=10)).run()   # lenet5 on the embedded mnist-subset
    print(result.test.accuracy, result.best_path)

    Runner.resume("runs/lenet5-20260101-120000").run()   # continue from last.pt
"""

from lenetlab.train.config import RunConfig, load_config_file, save_config
from lenetlab.train.dist import SingleProcess
from lenetlab.train.runner import Runner, RunResult

__all__ = ["RunConfig", "RunResult", "Runner", "SingleProcess", "load_config_file", "save_config"]
