"""``lenet bench train``: a typical tutorial's per-sample PIL pipeline against lenetlab's Runner.

Measured in one process, in interleaved rounds (every variant once per round), as the median of
short timing windows, each variant at every requested thread count against the baseline at the same
count: the **baseline** (:mod:`lenetlab.train.baseline`: NNDL's PIL pipeline, batch 64, ``lenet5``,
SGD lr 0.1; data loading included), the **Runner** on the same model, batch and optimiser (plain,
and with channels-last, bf16 autocast, optionally ``torch.compile``; its own training clock), and the
**time to accuracy** (:func:`time_to_accuracy_part`): :func:`fast_lenet5` until the test accuracy
reaches the target, then the baseline for up to ``baseline_budget`` times as long. Where one step's
time goes: :mod:`lenetlab.apps.bench_step` (``--profile``).
"""

import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lenetlab import data, timing
from lenetlab.benchfmt import BenchResult
from lenetlab.errors import LenetlabError
from lenetlab.inference.evaluate import evaluate
from lenetlab.textfmt import quiet
from lenetlab.train.baseline import PILPipelineDataset, baseline_model, pil_loader
from lenetlab.train.config import RunConfig, read_config_fields
from lenetlab.train.runner import Runner
from lenetlab.train.step import make_scaler, train_step

__all__ = [
    "FAST_LENET5",
    "TimeToAccuracy",
    "baseline_time_to_accuracy",
    "fast_lenet5",
    "measure_throughputs",
    "run_train_bench",
    "time_to_accuracy",
]

#: lenetlab's fastest measured recipe to 99.0% test accuracy on a 2-core CPU for a LeNet-5-sized
#: model: the fields of the shipped config ``fast-lenet5`` (its comments say how it was chosen).
FAST_LENET5 = read_config_fields("fast-lenet5")


def fast_lenet5(**overrides) -> RunConfig:
    """The shipped ``fast-lenet5`` config as a :class:`RunConfig`, ``overrides`` replacing fields."""
    return RunConfig.from_dict({**FAST_LENET5, **overrides}, source="fast-lenet5")


_NO_SCALER = make_scaler(torch.device("cpu"), None)


def _step(model, opt, x, y) -> None:
    """One training step of the baseline recipe (plain float32 SGD, no clipping), through the one step."""
    train_step(model, opt, x, y, F.cross_entropy, _NO_SCALER)


def _baseline_rates(splits, steps, batch_size, warmup, seed, window, dataset=None) -> list:
    """Examples/s of the baseline recipe in windows of ``window`` steps (data loading included), after ``warmup``."""
    model, opt = baseline_model(seed, 0.1)
    it = iter(pil_loader(splits.train, batch_size, seed, dataset=dataset))
    for _ in range(warmup):
        _step(model, opt, *next(it))

    def one_window() -> int:
        n = 0
        for _ in range(window):
            x, y = next(it)
            _step(model, opt, x, y)
            n += len(y)
        return n

    return timing.rates(one_window, max(1, steps // window))


def _runner(cfg: RunConfig, splits, callbacks, out_dir: str):
    cfg = cfg.replace(out_dir=out_dir, name=None, progress="none", plots=False)
    return Runner(cfg, splits=splits, callbacks=callbacks)


def _runner_rates(splits, steps, batch_size, warmup, window, **levers) -> list:
    """Examples/s of the baseline's model and optimiser through the :class:`Runner` in windows of ``window``
    steps on its training clock, after ``warmup`` steps; ``levers`` are RunConfig fields."""
    cfg = RunConfig(model="lenet5", optimizer="sgd", lr=0.1, momentum=0.0, device="cpu", **levers)
    cfg = cfg.replace(batch_size=batch_size, epochs=10_000, log_steps=window)
    rows = []

    def cb(event, runner, row):
        if event == "train":
            rows.append(row)
            if runner.step >= warmup + steps:
                runner.stop = True

    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as tmp:
        r = _runner(cfg, splits, [cb], tmp)
        r.train()
    rates = [
        row["examples_per_sec"]
        for prev, row in zip(rows, rows[1:])
        if prev["step"] >= warmup and row["step"] - prev["step"] == window
    ]
    if not rates:
        raise LenetlabError(
            f"bench: {steps} steps of batch {batch_size} leave no full timing window of {window} "
            f"steps after the warm-up (the epoch has {r.steps_per_epoch} steps); use more --steps"
        )
    return rates


@dataclass
class TimeToAccuracy:
    """Outcome of :func:`time_to_accuracy`: ``reached`` the target after ``train_time`` s of training."""

    reached: bool
    train_time: float
    test_accuracy: float
    step: int
    epoch: float
    wall_time: float
    curve: list = field(default_factory=list)  # (train_time, epoch, test accuracy) at each check
    device: str = "cpu"


def time_to_accuracy(splits, cfg: RunConfig, target: float = 0.99, checks_per_epoch: int = 16) -> TimeToAccuracy:
    """Train ``cfg`` with the Runner until the TEST accuracy, checked by a callback ``checks_per_epoch``
    times an epoch (evaluation time excluded from the Runner's clock), first reaches ``target``, or to
    the end of the schedule, on ``cfg.device`` (recorded in the result)."""
    steps_per_epoch = -(-len(splits.train) // cfg.batch_size)
    every = max(1, steps_per_epoch // checks_per_epoch)
    # a train row right before each check brings runner.train_time up to date
    cfg = cfg.replace(eval_steps=every, log_steps=every)
    out = TimeToAccuracy(False, 0.0, 0.0, 0, 0.0, 0.0)

    def cb(event, runner, row):
        if event != "dev" or runner.step == out.step:
            return
        train_time = runner.train_time
        options = {"autocast": runner.amp, "channels_last": runner.cfg.channels_last}
        res = evaluate(runner.model, runner.splits.test, runner.spec, runner.device, 1000, **options)
        out.curve.append((round(train_time, 3), round(runner.step / runner.steps_per_epoch, 3), res.accuracy))
        out.train_time, out.test_accuracy, out.step = train_time, res.accuracy, runner.step
        out.epoch = runner.step / runner.steps_per_epoch
        if res.accuracy >= target and not out.reached:
            out.reached = True
            runner.stop = True

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lenet-tta-") as tmp:
        runner = _runner(cfg, splits, [cb], tmp)
        out.device = str(runner.device)
        runner.train()
    out.wall_time = time.perf_counter() - t0
    return out


def baseline_time_to_accuracy(
    splits, target: float, budget_s: float, check_every_s: float, batch_size: int = 64, lr: float = 0.1, seed: int = 0
) -> TimeToAccuracy:
    """Train the tutorials' recipe (:mod:`lenetlab.train.baseline`) until its TEST accuracy, checked after
    every ``check_every_s`` seconds of training and at the end (not counted), first reaches ``target``
    or ``budget_s`` seconds of training are spent."""
    model, opt = baseline_model(seed, lr)
    loader = pil_loader(splits.train, batch_size, seed)
    test = PILPipelineDataset(splits.test.x, splits.test.y)
    xs = torch.stack([test[i][0] for i in range(len(test))])  # [N, 1, 32, 32], prepared once
    out = TimeToAccuracy(False, 0.0, 0.0, 0, 0.0, 0.0)
    n, spent, next_check, t_wall = 0, 0.0, check_every_s, time.perf_counter()
    batches = iter(loader)
    while not out.reached and spent < budget_s:
        t0 = time.perf_counter()  # building the batch is part of the step: that is the pipeline's cost
        batch = next(batches, None)
        if batch is None:  # a new epoch, reshuffled
            batches = iter(loader)
            batch = next(batches)
        _step(model, opt, *batch)
        spent += time.perf_counter() - t0
        n, out.step = n + len(batch[1]), out.step + 1
        if spent >= next_check or spent >= budget_s:
            next_check += check_every_s
            acc = _accuracy(model, xs, splits.test.y)
            out.curve.append((round(spent, 3), round(n / len(splits.train), 3), acc))
            out.train_time, out.test_accuracy, out.epoch = spent, acc, n / len(splits.train)
            out.reached = acc >= target
    out.wall_time = time.perf_counter() - t_wall
    return out


def _accuracy(model, xs: torch.Tensor, ys: torch.Tensor) -> float:
    """Accuracy of ``model`` on images ``xs`` ``[N, C, H, W]`` with labels ``ys`` ``[N]`` (leaves it in train mode)."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xs[i : i + 1000]).argmax(1) for i in range(0, len(xs), 1000)])
    model.train()
    return float((pred == ys).double().mean())


def measure_throughputs(
    splits, variants: list, steps: int, rounds: int = 3, window: int = 20, batch_size: int = 64, say=quiet
) -> dict:
    """Examples/s of each ``(name, threads, levers)`` variant (``levers``: None for the baseline, else
    RunConfig fields for the Runner): the median over timing windows in interleaved rounds of
    ``steps // rounds`` steps, so drifts in the machine's load hit every variant alike."""
    per_round = max(2 * window, steps // rounds)
    pil_ds = PILPipelineDataset(splits.train.x, splits.train.y)
    rates = {name: [] for name, _, _ in variants}
    for r in range(rounds):
        for name, threads, levers in variants:
            with timing.threads(threads):
                rates[name] += (
                    _baseline_rates(splits, per_round, batch_size, 5, r, window, pil_ds)
                    if levers is None
                    else _runner_rates(splits, per_round, batch_size, window, window, seed=r, **levers)
                )
        say(f"  round {r + 1}/{rounds} done")
    return {name: float(np.median(v)) for name, v in rates.items()}


def _variants(threads: list[int], levers: bool) -> list:
    """``(name, threads, levers)`` of every measured variant: the baseline (levers None) and the Runner's."""
    lever_sets = [("Runner (tensor-resident)", {})]
    if levers:
        lever_sets += [
            ("Runner + channels-last", {"channels_last": True}),
            ("Runner + channels-last + bf16 autocast", {"channels_last": True, "amp": "bf16"}),
        ]
    return [
        v for t in threads for v in [(f"baseline @{t}t", t, None), *((f"{n} @{t}t", t, kw) for n, kw in lever_sets)]
    ]


def _summary(figures: dict) -> dict:
    """The ratios of ``{"NAME @Tt": examples/s}`` to the baseline at the same thread count, and the best."""
    ratios = {name: eps / figures[f"baseline @{name.rsplit('@', 1)[1]}"] for name, eps in figures.items()}
    runner = [k for k in figures if not k.startswith("baseline")]
    best, top = max(runner, key=figures.get), max(runner, key=ratios.get)
    best_base = max((k for k in figures if k.startswith("baseline")), key=figures.get)
    return {
        "throughput": figures,
        "ratio": ratios,
        "best": best,
        "best_vs_best_baseline": figures[best] / figures[best_base],
        "best_ratio_same_threads": ratios[top],
        "best_ratio_variant": top,
    }


def run_train_bench(
    dataset: str = "mnist",
    data_dir=None,
    quick: bool = False,
    steps: int | None = None,
    threads=None,
    target: float = 0.99,
    levers: bool = True,
    compile: bool = False,
    tta: bool = True,
    recipe: dict | None = None,
    config: str | None = None,
    baseline_budget: float = 10.0,
    say=quiet,
) -> BenchResult:
    """Run the benchmark and return its figures; ``say(text)`` shows a line as each part ends.

    ``steps`` timed steps per throughput figure (default 300, 120 with ``quick``); ``threads``: the
    torch thread counts (None: 1 and torch's); ``levers``: also channels-last and bf16; ``compile``:
    also ``torch.compile``; ``tta``: the time-to-accuracy part (:func:`time_to_accuracy_part`).
    """
    threads = timing.check_threads(sorted({1, torch.get_num_threads()}) if threads is None else threads)
    steps = steps or (120 if quick else 300)
    if baseline_budget <= 0:
        raise LenetlabError(f"--baseline-budget must be a positive multiple of lenetlab's time (got {baseline_budget})")
    if steps < 2:
        raise LenetlabError(f"--steps must be at least 2 (got {steps})")
    window = min(20, max(1, steps // 6))
    splits = data.load(dataset, data_dir=data_dir)
    variants = _variants(threads, levers)
    figures = measure_throughputs(splits, variants, steps, rounds=2 if quick else 3, window=window, say=say)
    if compile:
        name = f"Runner + channels-last + torch.compile @{threads[-1]}t"
        say(f"  compiling for {name} (compilation time excluded) ...")
        with timing.threads(threads[-1]):
            rates = _runner_rates(splits, steps, 64, 3 * window, window, channels_last=True, compile=True)
        figures[name] = float(np.median(rates))
    res = {"dataset": splits.name, "train_examples": len(splits.train), "threads": threads, "torch": torch.__version__}
    res.update(batch_size=64, steps=steps, **_summary(figures))
    if tta:
        res.update(time_to_accuracy_part(splits, threads[0], target, config, recipe, baseline_budget, say))
    return BenchResult("bench-train", res)


def time_to_accuracy_part(
    splits, threads: int, target: float, config: str | None, recipe: dict | None, baseline_budget: float, say
) -> dict:
    """:func:`time_to_accuracy` of :func:`fast_lenet5` (or of the shipped config or file ``config``, with
    ``recipe``'s fields) on ``threads`` threads, then :func:`baseline_time_to_accuracy` for up to
    ``baseline_budget`` times as long on as many threads: the speed-up to the target, or a lower bound."""
    fields = {**(read_config_fields(config) if config else FAST_LENET5), **(recipe or {})}
    cfg = RunConfig.from_dict(fields, source=config or "fast-lenet5")
    with timing.threads(threads):
        t = time_to_accuracy(splits, cfg, target)
    budget = baseline_budget * t.train_time
    say(
        f"  lenetlab: {t.test_accuracy:.2%} after {t.train_time:.1f} s; baseline recipe trained for up to "
        f"{budget:.1f} s ..."
    )
    with timing.threads(cfg.num_threads or threads):
        b = baseline_time_to_accuracy(splits, target, budget, t.train_time / 2)
    same = next((c for c in b.curve if c[0] >= t.train_time), b.curve[-1])
    return {
        "time_to_accuracy": {
            "config": config or "fast-lenet5",
            "recipe": {k: getattr(cfg, k) for k in fields},
            **t.__dict__,
        },
        "baseline_time_to_accuracy": b.__dict__,
        "baseline_same_budget": {"train_time": same[0], "epochs": same[1], "test_accuracy": same[2]},
        "speedup_to_target": {
            "ratio": b.train_time / t.train_time if t.reached else None,
            "lower_bound": not b.reached,
            "budget_multiple": baseline_budget,
        },
    }
