"""The ``lenet`` command: argument parsing and printing. Every subcommand calls one function of
``lenetlab.apps.<verb>``, imported when the command runs, which returns an
:class:`~lenetlab.textfmt.Output` that :func:`emit` prints as text, or as JSON with ``--json``.

So ``lenet --help``, ``--version``, ``COMMAND --help`` and ``lenet lesson`` import no torch
(tests/test_cli.py). User errors (:class:`LenetlabError`) print one line ``error: ...`` and exit 2;
Ctrl-C exits 130, SIGTERM 143 (:mod:`lenetlab.signals`). Also ``python -m lenetlab`` (and
``python -m lenetlab.cli``, which torchrun launches for ``lenet train --nproc N``).
"""

import argparse
import importlib
import os
import sys
from dataclasses import fields

from lenetlab import __version__
from lenetlab.choices import DEVICES, NAMED_DATASETS, NORMALIZE_CHOICES, SELECT_RULES, TTA_MODES
from lenetlab.errors import ConfigError, LenetlabError
from lenetlab.fileio import dumps
from lenetlab.lessons import LESSONS
from lenetlab.signals import terminate_on_sigterm
from lenetlab.train.config import RunConfig, add_config_arguments, config_overrides, number_problem, shipped_configs

#: What every command that takes one checkpoint accepts (inference.run.checkpoint_path resolves it).
CHECKPOINT_HELP = (
    "checkpoint file, run directory (best.pt, else last.pt), exported model folder, or the name of a "
    "model shipped with trained weights (see lenet models --pretrained)"
)

DESCRIPTION = """\
lenetlab: LeNet-5 and the classic CNNs on MNIST, from hand-written operators to a served model.
Train and evaluate (on the MNIST subset built in, offline, or full MNIST and your own image folders),
read your own handwriting, compare the from-scratch operators with PyTorch's, reproduce LeCun et al.
1998, and serve a draw-a-digit page. Start with: lenet train, then lenet COMMAND --help."""


class FORMATTER(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, unless it is empty (None/False) or the help explains it in words."""

    def _get_help_string(self, action):
        # identity, not ==: a default of 0 is worth showing, and 0 == False
        if "(default:" in (action.help or "") or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose options may come anywhere among variadic positional arguments
    (``lenet predict a.png --json b.png``); sub-parsers are of this class too, with :class:`FORMATTER`."""

    _intermixing = False

    def __init__(self, *args, formatter_class=FORMATTER, **kwargs) -> None:
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing or not any(a.nargs in ("+", "*") for a in self._get_positional_actions()):
            return super().parse_known_args(args, namespace)
        self._intermixing = True  # parse_known_intermixed_args calls parse_known_args itself
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def emit(result, as_json: bool = False) -> int:
    """Print a command's :class:`~lenetlab.textfmt.Output` or :class:`~lenetlab.benchfmt.BenchResult`
    (its data as JSON with ``as_json``, else its text; its notes on stderr) and return its exit status.
    An int is an exit status with nothing to print (``lenet train --nproc``: its processes printed)."""
    if result is None or isinstance(result, int):
        return result or 0
    if as_json:
        print(dumps(result.data, default=float))  # default: numpy numbers in bench figures
    elif result.text is not None:
        print(result.text)
    for note in result.notes:
        print(note, file=sys.stderr)
    return result.status


def sayer(as_json: bool = False):
    """The ``say(text, err=False)`` a command shows lines with while it runs: on stdout (flushed), or
    on stderr with ``err``; with ``as_json`` only the stderr lines, as stdout is the result's."""

    def say(text: str, err: bool = False) -> None:
        if err or not as_json:
            print(text, file=sys.stderr if err else sys.stdout, flush=True)

    return say


def _app(target: str, *names: str, **mapped):
    """A command's ``func``: import ``lenetlab.apps.MODULE`` (``target`` is ``MODULE:FUNCTION``) when the
    command runs and call FUNCTION with the parsed options ``names`` as keywords of the same name, and
    ``mapped`` keywords, each the name of a parsed option or a function of the parsed arguments."""
    module, function = target.split(":")

    def run(args):
        kwargs = {n: getattr(args, n) for n in names}
        kwargs.update({k: v(args) if callable(v) else getattr(args, v) for k, v in mapped.items()})
        return getattr(importlib.import_module(f"lenetlab.apps.{module}"), function)(**kwargs)

    return run


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON")


# ----------------------------------------------------------------------------- data
def _add_data(sub) -> None:
    p = sub.add_parser("data", help="summarise a dataset (sizes, shape, classes, mean/std, files)")
    p.add_argument(
        "--dataset",
        default="mnist-subset",
        help=f"{', '.join(NAMED_DATASETS)}, or a path (NNDL .json.gz, CSV file, image folder)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="data root (None: $LENETLAB_DATA, else ~/.cache/lenetlab); per-dataset sub-folders",
    )
    p.add_argument("--download", action="store_true", help="download missing files from the public mirrors")
    p.add_argument("--verify", action="store_true", help="verify the files' content checksums")
    p.add_argument(
        "--mirror",
        action="append",
        default=None,
        metavar="URL",
        help="base URL to download from instead of the public mirrors (repeatable, tried in order)",
    )
    p.add_argument(
        "--val-size",
        type=int,
        default=None,
        help="dev examples carved from train (default: a tenth of the training images, at most 5000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the train/dev split")
    p.add_argument("--image-size", type=int, default=None, help="model input size (image folders: resize to it)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None, help="convert to 1 (gray) or 3 (RGB)")
    p.add_argument(
        "--normalize",
        choices=NORMALIZE_CHOICES,
        default="default",
        help="input normalisation, as for lenet train --normalize",
    )
    p.add_argument("--image-column", default=None, help="CSV datasets: the column of image file names (default: image)")
    p.add_argument("--label-column", default=None, help="CSV datasets: the column of labels (default: label)")
    p.add_argument(
        "--id-column", default=None, help="CSV datasets: the column of ids (default: image name or row number)"
    )
    _json_flag(p)
    options = ("val_size", "seed", "image_size", "channels", "normalize", "image_column", "label_column", "id_column")
    p.set_defaults(func=_app("data:run_data", "dataset", "data_dir", "download", "verify", *options, mirrors="mirror"))


# ----------------------------------------------------------------------------- models, profile
def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered models (input size, parameters, description)")
    p.add_argument(
        "--pretrained",
        action="store_true",
        help="list only the models shipped with trained weights (lenet predict --model NAME uses them)",
    )
    _json_flag(p)
    p.set_defaults(func=_app("models:run_models", "pretrained"))


def _add_profile(sub) -> None:
    p = sub.add_parser("profile", help="per-layer output shapes, parameters, MACs and FLOPs of a model")
    p.add_argument("model", help="registered model name (see `lenet models`)")
    p.add_argument(
        "--input-size",
        nargs=3,
        type=int,
        metavar=("C", "H", "W"),
        default=None,
        help="input channels, height, width; None = the model's registered input size",
    )
    p.add_argument("--num-classes", type=int, default=10, help="number of output classes")
    _json_flag(p)
    p.set_defaults(func=_app("profile:run_profile", "input_size", "num_classes", name="model"))


# ----------------------------------------------------------------------------- train
def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model; writes runs/NAME/ (config, metrics, best.pt, last.pt, plots)",
        description="Train a model (default: lenet5 on the embedded mnist-subset, offline). "
        "Flags override fields of --config; --resume continues a run from its last.pt.",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE|NAME",
        help="JSON or YAML file of run configuration fields, or the name of a shipped one: "
        f"{', '.join(shipped_configs())}",
    )
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory of the same --name")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the configuration in seconds: load the data, build the model, train 3 steps, "
        "evaluate once on dev, save checkpoints, test and plot, all into a new temporary folder "
        "(printed), never the run directory",
    )
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train with DistributedDataParallel in N local processes (launches torchrun --standalone; "
        "--batch-size stays the global batch; several nodes: run torchrun yourself)",
    )
    _json_flag(p)
    add_config_arguments(p)
    p.set_defaults(func=_run_train)


def _run_train(args):
    from lenetlab.apps.train import train_entry

    if args.json and "progress" not in vars(args):
        args.progress = "none"  # stdout is for the JSON result only
    return train_entry(args, sayer(args.json))


# ----------------------------------------------------------------------------- runs, plot
def _add_runs(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="list the runs in a folder: status, epochs, best dev and test accuracy, time",
        description="One line per run directory: name, model, dataset, status (finished, running, "
        "interrupted, damaged), epochs done, dev accuracy of the best model, its test "
        "accuracy, training time and examples/s. A damaged run says what is wrong.",
    )
    p.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="folder holding run directories (or one run)")
    p.add_argument(
        "--sort",
        default="name",
        choices=("name", "dev", "test", "time"),
        help="order: name (A-Z), dev or test (best accuracy first), time (shortest training first)",
    )
    p.add_argument("--model", default=None, help="only runs of this model")
    p.add_argument("--dataset", default=None, help="only runs on this dataset")
    _json_flag(p)
    p.set_defaults(func=_app("runs:run_runs", "sort", "model", "dataset", root="dir"))


def _add_plot(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="redraw a run's plots from its files, or overlay several runs' curves",
        description="One RUN (finished, interrupted or running): its curves from metrics.jsonl and "
        "the confusion matrix, misclassified images, kernels and feature maps of its "
        "best.pt (else last.pt) on the test split, into RUN/plots. Several RUNs: their "
        "loss and dev accuracy curves in one figure with a legend of their names.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or run names inside runs/)")
    p.add_argument(
        "--out",
        default=None,
        help="one RUN: folder for its PNG files (default RUN/plots); several: the PNG file of the "
        "overlay (default compare.png)",
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="device")
    _json_flag(p)
    p.set_defaults(func=_app("plot:run_plot", "runs", "out", "device"))


# ----------------------------------------------------------------------------- eval, predict, ensemble, export
def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: accuracy, loss, per-class accuracy, confusion matrix")
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--dataset", default=None, help="dataset name or path (default: the one it was trained on)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files (default: the run's)")
    p.add_argument(
        "--split",
        default=None,
        choices=("test", "dev"),
        help="which split to evaluate (default: test, or dev when the test set is unlabelled, as Kaggle's)",
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="device")
    p.add_argument("--batch-size", type=int, default=1000, help="evaluation batch size")
    _json_flag(p)
    names = ("checkpoint", "dataset", "data_dir", "split", "device", "batch_size")
    p.set_defaults(func=_app("evaluate:eval_command", *names))


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="read the digit in your own images (PNG/JPEG, photos and scans too)",
        description="Classify images of single handwritten digits: grayscale, invert a light "
        "background, crop, fit 20x20, centre by mass in 28x28 (as MNIST), then the "
        "model's own normalisation. Without --checkpoint, --onnx or --model it uses the "
        "lenet5 shipped with lenetlab. Exit status 3 when an image held no digit.",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, one digit each (a first argument that is a run directory or a .pt file is "
        "taken as the checkpoint, as in earlier versions)",
    )
    p.add_argument("--checkpoint", default=None, help=CHECKPOINT_HELP)
    p.add_argument("--onnx", default=None, metavar="MODEL.onnx", help="an ONNX model written by lenet export")
    p.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="a model shipped with trained weights (see lenet models --pretrained)",
    )
    p.add_argument("--top-k", type=int, default=3, help="how many classes to list per image")
    p.add_argument(
        "--show", default=None, metavar="DIR", help="save the exact 28x28 input of each image as DIR/NAME.input.png"
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="device")
    _json_flag(p)
    names = ("checkpoint", "images", "onnx", "top_k", "device", "model")
    p.set_defaults(func=_app("predict:run_predict", *names, show_dir="show"))


def _add_ensemble(sub) -> None:
    p = sub.add_parser("ensemble", help="accuracy of several checkpoints and of their averaged probabilities")
    p.add_argument(
        "checkpoints",
        nargs="+",
        metavar="CHECKPOINT",
        help="checkpoint files, run directories, exported folders or shipped model names",
    )
    p.add_argument("--dataset", default=None, help="dataset name or path (default: the first checkpoint's)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files (default: the run's)")
    p.add_argument("--split", default="test", choices=("test", "dev"), help="which split to evaluate")
    p.add_argument(
        "--select",
        nargs="?",
        const="auto",
        default=None,
        choices=SELECT_RULES,
        metavar="RULE",
        help="first choose a committee on the dev split, then evaluate it. RULE: auto (the default: greedy "
        "forward selection, or all the models when cross-validation on dev favours them), greedy, all",
    )
    p.add_argument(
        "--tta",
        default="off",
        choices=TTA_MODES,
        help="test-time augmentation: average each model's probabilities over the image and four one-pixel "
        "shifts of it (on), or only when that scores better on the dev split (auto)",
    )
    p.add_argument("--device", default="auto", choices=DEVICES, help="device")
    _json_flag(p)
    names = ("checkpoints", "dataset", "data_dir", "device", "split", "select", "tta")
    p.set_defaults(func=_app("ensemble:run_ensemble", *names))


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX (dynamic batch, spec in the metadata) or to "
        "portable weights (model.safetensors + config.json)",
    )
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument(
        "--format",
        choices=["onnx", "safetensors", "hub"],
        default="onnx",
        help="onnx: one .onnx file; safetensors (or hub): a folder with model.safetensors, config.json "
        "and a README.md model card (the Hugging Face Hub layout, no pickle)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="onnx: output file (default: CHECKPOINT with .onnx, or RUN_DIR/model.onnx); safetensors: "
        "output folder (default: RUN_DIR/pretrained, or CHECKPOINT without .pt)",
    )
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    _json_flag(p)
    p.set_defaults(func=_app("export:run_export", "checkpoint", "out", "opset", "format"))


# ----------------------------------------------------------------------------- serve
def _add_serve(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve the draw-a-digit page and the REST API (FastAPI + uvicorn)", formatter_class=FORMATTER
    )
    p.add_argument(
        "checkpoint",
        nargs="*",
        default=[],
        metavar="RUN_OR_CHECKPOINT",
        help="run directories, checkpoint files, exported folders or shipped model names, one model "
        "each; the page offers "
        "them all (default: the small lenet5 shipped with lenetlab)",
    )
    p.add_argument(
        "--onnx",
        action="append",
        default=[],
        metavar="MODEL.onnx",
        help="also serve an exported ONNX model with onnxruntime (repeatable; /predict only)",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="PyTorch device")
    p.add_argument("--max-upload-mb", type=float, default=5.0, help="largest accepted request body, MB")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (debug also logs every request)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=64,
        metavar="N",
        help="gather up to N concurrent requests for one model into one forward pass (1: no batching)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=2.0,
        metavar="T",
        help="wait at most T ms for more requests to fill a batch",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="server processes sharing the port, each with its own models and limits "
        "(default: one per CPU this process may use)",
    )
    p.set_defaults(func=_run_serve)


def _run_serve(args):
    from lenetlab.apps.serve import run_serve  # optional extra lenetlab[serve]: fastapi, uvicorn

    return run_serve(
        args.checkpoint,
        args.onnx,
        host=args.host,
        port=args.port,
        device=args.device,
        max_upload_mb=args.max_upload_mb,
        log_level=args.log_level,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        workers=args.workers,
        say=sayer(),
    )


# ----------------------------------------------------------------------------- compare
def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="lenet5 vs lenet5-scratch vs the loop reference on the same weights")
    p.add_argument("--batch", type=int, default=64, help="number of random N(0,1) inputs")
    p.add_argument("--dataset", default="mnist-subset", help="dataset whose test images are compared")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files (default: cache dir)")
    p.add_argument("--limit", type=int, default=1000, help="at most this many test images")
    p.add_argument("--loop-images", type=int, default=4, help="test images for the (slow) loop reference")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="lenet5/lenet5-scratch checkpoint (or shipped model name) to take weights from "
        "(default: a seeded random initialisation)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the weights and the random inputs")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        help="largest difference that passes, relative to the largest value compared (absolute below 1)",
    )
    _json_flag(p)
    names = ("batch", "dataset", "data_dir", "limit", "loop_images", "checkpoint", "seed", "tolerance")
    p.set_defaults(func=_app("compare:run_compare", *names))


# ----------------------------------------------------------------------------- bench
def _bench_common(q, run) -> None:
    """``lenet bench NAME``'s last flags, ``--quick`` and ``--json``, and what it runs."""
    q.set_defaults(func=run)
    q.add_argument("--quick", action="store_true", help="shorter, noisier measurements")
    _json_flag(q)


def _add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measured benchmarks: ops, train or infer (see lenet bench WHICH --help)",
        description="Benchmarks that print their figures as ratios against a baseline measured in the same run.",
    )
    which = p.add_subparsers(dest="which", metavar="WHICH", required=True)
    ops = _app("bench_ops:run_ops_bench", "quick", "batches", "threads", loop=lambda a: not a.no_loop)
    q = which.add_parser("ops", help="loop reference vs im2col vs PyTorch operators on LeNet-5's layer shapes")
    q.add_argument("--batches", type=int, nargs="+", default=[1, 256], help="batch sizes")
    q.add_argument("--no-loop", action="store_true", help="skip the slow loop reference")
    q.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own setting)")
    _bench_common(q, ops)
    _add_bench_train(which)
    names = ("checkpoint", "quick", "batch_size", "calls")
    threads, onnx = (lambda a: a.threads or None), (lambda a: not a.no_onnx)
    infer = _app("bench_infer:run_infer_bench", *names, threads=threads, onnx=onnx)
    q = which.add_parser("infer", help="inference throughput and single-image latency, eager and exported")
    q.add_argument(
        "--checkpoint", default=None, help="checkpoint or run directory (default: the lenet5 shipped with lenetlab)"
    )
    q.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads (0: torch's default)")
    q.add_argument("--batch-size", type=int, default=1000, help="batch size for the throughput figure")
    q.add_argument("--calls", type=int, default=None, help="timed single-image calls (default: 2000, quick 300)")
    q.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime variant")
    _bench_common(q, infer)


def _add_bench_train(which) -> None:
    q = which.add_parser("train", help="a typical tutorial's per-sample pipeline vs lenetlab; time to 99%%")
    q.add_argument("--dataset", default="mnist", help="dataset name or path")
    q.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    q.add_argument("--steps", type=int, default=None, help="timed steps per throughput figure (default 300, quick 100)")
    q.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="torch CPU thread counts to measure every variant at (default: 1 and torch's own count)",
    )
    q.add_argument("--target", type=float, default=0.99, help="test accuracy for the time-to-accuracy run")
    q.add_argument("--no-levers", action="store_true", help="skip the channels-last / bf16 variants")
    q.add_argument("--compile", action="store_true", help="also measure torch.compile (about a minute to compile)")
    q.add_argument("--no-tta", action="store_true", help="skip the time-to-accuracy part")
    q.add_argument(
        "--config",
        default=None,
        metavar="NAME_OR_FILE",
        help="the recipe timed to the target: a shipped config (e.g. lenet5-modern-w8) or a file "
        "(default: fast-lenet5)",
    )
    q.add_argument(
        "--baseline-budget",
        type=float,
        default=10.0,
        metavar="TIMES",
        help="train the tutorial recipe for up to this many times lenetlab's time to the target",
    )
    q.add_argument(
        "--profile",
        action="store_true",
        help="instead: where a batch-64 step goes (data, forward, backward, optimiser) for the baseline "
        "and each lenetlab path, and the top aten operators; one --threads count (default 1)",
    )
    _bench_common(q, _bench_train)


_BENCH_TRAIN = ("dataset", "data_dir", "quick", "steps", "threads")


def _bench_train(args):
    levers = {"levers": lambda a: not a.no_levers}
    if not args.profile:
        extra = {"tta": lambda a: not a.no_tta, "say": lambda a: sayer(a.json)}
        names = (*_BENCH_TRAIN, "target", "compile", "config", "baseline_budget")
        return _app("bench_train:run_train_bench", *names, **levers, **extra)(args)
    if args.compile or args.config:
        raise LenetlabError(
            "--profile times the plain, channels-last and bf16 steps of lenet5: not with --compile or --config"
        )
    return _app("bench_step:run_step_profile", *_BENCH_TRAIN, **levers)(args)


# ----------------------------------------------------------------------------- submit
def _add_submit(sub) -> None:
    p = sub.add_parser(
        "submit",
        help="Kaggle workflow: train on a folder or table (or use trained runs), write a submission for its test set",
        description="d2l's Kaggle workflow. With --data-dir FOLDER (train.csv image,label + test.csv "
        "image + the images; Kaggle's Digit Recognizer train.csv/test.csv; class "
        "sub-folders): choose a recipe from the data (printed first; any flag below "
        "overrides a part of it), train, predict the test images with the best model and "
        "write id,label rows with the original label strings, atomically. With "
        "--checkpoint RUN [RUN ...]: no training, the runs' averaged probabilities.",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="FOLDER",
        help="the dataset: a folder (or a CSV file); with --checkpoint, default: the first run's dataset",
    )
    p.add_argument(
        "--checkpoint",
        nargs="+",
        default=None,
        metavar="RUN",
        help="predict with these trained runs (run directories, .pt files or shipped model names), "
        "averaging their probabilities, instead of training",
    )
    p.add_argument("--out", default="submission.csv", help="where to write the submission CSV")
    p.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="N",
        help="train N runs with consecutive seeds and average their probabilities (default: the recipe's; "
        "more than one only on small sets, where they fit its compute budget)",
    )
    p.add_argument(
        "--tta",
        choices=("auto", "on", "off"),
        default="auto",
        help="test-time augmentation (mean over one-pixel shifts); auto: when it scores better on the validation split",
    )
    _json_flag(p)
    add_config_arguments(
        p,
        exclude=("dataset", "data_dir", "download"),
        title="training (override the recipe; not with --checkpoint, but --device, --num-threads and the column names)",
        recipe_defaults=True,
    )
    p.set_defaults(func=_run_submit)


def _run_submit(args):
    from lenetlab.apps.submit import run_submit

    config = {k: v for k, v in config_overrides(args).items() if k != "data_dir"}  # --data-dir is the dataset
    if args.json:
        config.setdefault("progress", "none")  # stdout is for the JSON result only
    return run_submit(
        args.data_dir,
        checkpoints=args.checkpoint,
        out=args.out,
        tta=args.tta,
        ensemble=args.ensemble,
        say=sayer(args.json),
        **config,
    )


# ----------------------------------------------------------------------------- lesson
def _add_lesson(sub) -> None:
    p = sub.add_parser(
        "lesson",
        help="the CNN chapter as runnable lessons (without NAME: list them)",
        description="Run one step of the CNN chapter and print what the book shows; every lesson "
        "checks its own claims and exits 1 if one fails.",
    )
    _json_flag(p)
    names = p.add_subparsers(dest="lesson", metavar="NAME")
    for lesson in LESSONS.values():
        q = names.add_parser(lesson.name, help=lesson.summary, description=lesson.summary)
        for o in lesson.options:
            name = o.name if o.positional else f"--{o.name}"
            q.add_argument(
                name,
                nargs="?" if o.positional else None,
                type=o.type,
                default=o.default,
                choices=o.choices,
                help=o.help,
            )
        q.add_argument("--source", action="store_true", help="print the lesson's Python code instead of running it")
        q.add_argument(
            "--notebook", metavar="OUT.ipynb", help="write the lesson as a Jupyter notebook instead of running it"
        )
        # SUPPRESS: an unset --json here must not undo `lenet lesson --json NAME`
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")
    p.set_defaults(func=_run_lesson)


def _run_lesson(args):
    from lenetlab.apps.lesson import run_lessons

    if args.lesson is None:
        return run_lessons()
    options = {o.name: getattr(args, o.name) for o in LESSONS[args.lesson].options}
    return run_lessons(args.lesson, source=args.source, notebook=args.notebook, **options)


# ----------------------------------------------------------------------------- numeric flags
#: The ranges of the numeric flags of other commands (by destination name; a flag named like a RunConfig
#: field, ``--seed`` or ``--batch-size``, takes that field's range). ``None``: the command checks it.
FLAG_RANGES: dict[str, tuple[float, float] | None] = {
    "nproc": None,  # lenet train's launcher: one line naming the global batch and the devices
    # (--threads below 1: lenetlab.timing.check_threads answers, in the words of every bench command)
    "channels": (1, 3),
    "input_size": (1, 10**6),  # lenet profile then refuses what does not fit in memory
    "num_classes": (1, 100_000),
    "top_k": (1, 100_000),
    "opset": (1, 100),
    "port": (0, 65535),
    "max_upload_mb": (0.001, 1024.0),
    "batch": (1, 10**6),
    "limit": (1, 10**8),
    "loop_images": (0, 10**4),
    "tolerance": (0.0, 1e6),
    "batches": (1, 10**6),
    "threads": (-1024, 1024),
    "steps": (1, 10**9),
    "target": (0.0, 1.0),
    "baseline_budget": (0.0, 1e6),
    "calls": (1, 10**9),
    "ensemble": (1, 100),
    "every": (1, 10**9),
    "size": (1, 512),
    "max_batch": (1, 1024),
    "batch_wait_ms": (0.0, 1000.0),
    "workers": (1, 64),  # lenet serve
}


class _Refused(str):
    """A numeric flag's refused value: the one line :func:`check_numeric_flags` reports (argparse would
    print its usage)."""


def _bounded(conv, bounds: tuple[float, float], option: str):
    """An argparse ``type`` converting with ``conv`` (int or float; ``1e3`` is whole) that returns a
    :class:`_Refused` for a value :func:`~lenetlab.train.config.number_problem` refuses."""

    def parse(text: str):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        problem = number_problem(value, bounds, conv is int)
        if problem is None:
            return conv(value)
        if problem.startswith(">="):
            return _Refused(f"{option} must be at least {bounds[0]} (got {text})")
        if problem.startswith("<="):
            return _Refused(f"{option} must be at most {bounds[1]} (got {text})")
        return _Refused(f"{option} {text}: must be {problem}")

    parse.__name__ = conv.__name__
    return parse


def bound_numeric_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give every plain ``int``/``float`` flag of ``parser`` and its sub-parsers its range
    (:data:`FLAG_RANGES`, else the RunConfig field's; a KeyError for one nobody bounded); returns it."""
    ranges = {f.name: f.metadata["range"] for f in fields(RunConfig) if f.metadata["range"]} | FLAG_RANGES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                bound_numeric_flags(sub)
        elif action.type in (int, float) and ranges[action.dest] is not None:
            option = action.option_strings[0] if action.option_strings else action.dest.upper()
            action.type = _bounded(action.type, ranges[action.dest], option)
    return parser


def check_numeric_flags(args: argparse.Namespace) -> argparse.Namespace:
    """Raise the one-line ConfigError of the first refused numeric flag in ``args``; returns ``args``."""
    for value in vars(args).values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, _Refused):
                raise ConfigError(v)
    return args


# ----------------------------------------------------------------------------- parser
#: The commands, in the order ``lenet --help`` lists them.
SECTIONS = [_add_data, _add_train, _add_runs, _add_plot, _add_eval, _add_models, _add_profile, _add_predict]
SECTIONS += [_add_ensemble, _add_export, _add_serve, _add_compare, _add_bench, _add_submit, _add_lesson]


def build_parser() -> argparse.ArgumentParser:
    """The full ``lenet`` argument parser with one sub-parser per command."""
    parser = Parser(prog="lenet", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lenetlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SECTIONS:
        add(sub)
    return bound_numeric_flags(parser)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lenet`` console script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        with terminate_on_sigterm():
            return emit(check_numeric_flags(args).func(args), getattr(args, "json", False))
    except LenetlabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # lenetlab.errors.Terminated (SIGTERM) is one, with exit status 143
        status = getattr(e, "exit_status", 130)
    except BrokenPipeError:  # `lenet ... | head`: the reader left; end quietly like other Unix tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141
    # once the exception is gone, with what it held (a progress bar draws itself as it closes): the last line
    print("terminated" if status == 143 else "interrupted", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
