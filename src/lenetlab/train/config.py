""":class:`RunConfig`, everything a training run depends on: its validation, files (``config.json``,
``--config FILE``, each checkpoint's ``config``) and the ``lenet train`` flags generated from its fields."""

import argparse
import json
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path

import yaml

from lenetlab.choices import DEVICES, NORMALIZE_CHOICES
from lenetlab.errors import ConfigError, LenetlabError, did_you_mean, first_line
from lenetlab.fileio import atomic_path, dumps, loads, read_text

#: The folder of recipe files shipped in the package: ``lenet train --config NAME`` (the rows of docs/results.md).
SHIPPED_CONFIGS = Path(str(resources.files("lenetlab").joinpath("configs")))


def _f(default, help: str, choices: tuple | None = None, range: tuple | None = None, flag=True, recipe=False):
    """A dataclass field with its help text, allowed choices and, for a number, its range ``(lo, hi)``
    (both included) in the metadata; ``flag=False``: a record the run writes, not a command-line flag;
    ``recipe``: a training recipe (:mod:`lenetlab.train.recipe`) may set it when it is not given."""
    meta = {"help": help, "choices": choices, "range": range, "flag": flag, "recipe": recipe}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class RunConfig:
    """Everything one training run depends on (see ``lenet train --help`` for each field)."""

    # what and where
    name: str | None = _f(None, "run name: the run directory is OUT_DIR/NAME (default: MODEL-TIMESTAMP)")
    out_dir: str = _f("runs", "folder holding run directories")
    dataset: str = _f("mnist-subset", "dataset name or path (see `lenet data`)")
    data_dir: str | None = _f(None, "folder holding the dataset files (default: cache dir)")
    val_size: int | None = _f(
        None,
        "examples carved from train for the dev split (default: the dataset's)",
        range=(0, 10**8),
        recipe=True,
    )
    image_size: int | None = _f(
        None,
        "image folders: resize the images to this size once, when loading "
        "(default: their own size; the model's input spec then pads or resizes each batch)",
        range=(1, 512),
        recipe=True,
    )
    download: bool = _f(False, "download missing dataset files from the public mirrors")
    image_column: str | None = _f(None, "CSV datasets: the column of image file names (default: image)")
    label_column: str | None = _f(None, "CSV datasets: the column of labels (default: label)")
    id_column: str | None = _f(
        None,
        "CSV datasets: the column of ids a submission repeats (default: the image "
        "name, or the row number from 1 for pixel tables)",
    )
    recipe: str = _f(
        "auto",
        "training recipe: auto (image folders and CSV files: model, input size, optimiser, "
        "schedule, augmentation, epochs and dev split chosen from the data; named MNIST datasets and "
        "NNDL files: lenet5), fast (auto with a quarter of the epochs), lenet5 (the tutorials' recipe: "
        "the defaults of these flags); explicit flags override any part of it",
        choices=("auto", "fast", "lenet5"),
    )
    budget: str | None = _f(
        None,
        "training time budget, e.g. 90s, 2m, 1.5h: the recipe sets the epochs from a "
        "measured step time (an explicit --epochs wins)",
    )
    recipe_notes: dict = _f({}, "what the recipe chose and why (written by the run)", flag=False)
    model: str = _f("lenet5", "registered model name (see `lenet models`)", recipe=True)
    model_kwargs: dict = _f({}, "extra model arguments as a JSON object, e.g. '{\"dropout\": 0.1}'", recipe=True)
    init: str = _f(
        "default",
        "weight init: PyTorch's default, Xavier-uniform on conv/linear weights, or pretrained: the weights "
        "shipped for --model (fine-tuning; a new head for other classes, see `lenet models`)",
        choices=("default", "xavier", "pretrained"),
    )
    normalize: str = _f(
        "default",
        "input normalisation: the dataset's default (half for digits, stats for image folders); "
        "'stats' the train split's mean/std; 'half' (x-0.5)/0.5; 'mnist' (x-0.1307)/0.3081; "
        "'none' x in [0,1]; 'nndl-quirk' NNDL's ToTensor then Normalize(127.5,127.5) (inputs squeezed "
        "into [-1,-0.992]); 'lecun1998' the paper's scaling: background -0.1, ink 1.175",
        choices=NORMALIZE_CHOICES,
    )
    resize: str = _f(
        "auto",
        "fit images to the model's input size: pad, resize, or auto (pad when the model input is "
        "at most 8 pixels larger)",
        choices=("auto", "pad", "resize"),
    )
    digit_width: int = _f(
        0,
        "stretch or squeeze each image horizontally so that its ink is this many pixels wide, "
        "before fitting it to the model input (Ciresan et al. 2012 train committee members on "
        "MNIST digits normalised to widths 10-20); 0: off",
        range=(0, 512),
    )
    augment: str = _f(
        "none",
        "train-time batch augmentation (lenetlab.data.augment)",
        choices=("none", "affine", "elastic", "affine+elastic"),
        recipe=True,
    )
    augment_kwargs: dict = _f({}, "augmentation arguments as a JSON object", recipe=True)
    # optimisation
    epochs: int = _f(10, "training epochs", range=(1, 100_000), recipe=True)
    batch_size: int = _f(64, "training batch size (global, over all processes)", range=(1, 10**6), recipe=True)
    eval_batch_size: int = _f(1000, "batch size for dev/test evaluation", range=(1, 10**6))
    drop_last: bool = _f(False, "drop the last incomplete training batch of each epoch")
    optimizer: str = _f(
        "adam",
        "optimiser: sgd, adam, adamw, or sdlm (stochastic diagonal Levenberg-Marquardt, "
        "LeCun et al. 1998; its lr and schedule default to the paper's: 5e-4, lecun1998)",
        choices=("sgd", "adam", "adamw", "sdlm"),
        recipe=True,
    )
    lr: float = _f(2e-3, "(peak) learning rate", range=(0.0, 1e6), recipe=True)
    momentum: float = _f(0.9, "SGD momentum", range=(0.0, 1.0))
    nesterov: bool = _f(False, "Nesterov momentum (SGD)")
    weight_decay: float = _f(0.0, "weight decay (L2 for sgd/adam, decoupled for adamw)", range=(0.0, 10.0), recipe=True)
    sdlm_mu: float = _f(0.02, "sdlm: the damping mu of the step eta / (mu + h_kk)", range=(0.0, 1000.0))
    sdlm_samples: int = _f(
        500, "sdlm: training examples on which h_kk is re-estimated before each epoch", range=(1, 10**7)
    )
    schedule: str = _f(
        "none",
        "learning-rate schedule, stepped every batch (lecun1998: the paper's SDLM values "
        "per pass, 5e-4 x2, 2e-4 x3, 1e-4 x3, 5e-5 x4, then 1e-5, scaled to peak lr)",
        choices=("none", "step", "cosine", "onecycle", "lecun1998"),
        recipe=True,
    )
    step_size: float = _f(1.0, "step schedule: epochs between decays", range=(0.0, 100_000.0))
    gamma: float = _f(0.1, "step schedule: decay factor", range=(0.0, 1.0))
    warmup: float = _f(
        0.0,
        "warm-up length in epochs (linear from 0; onecycle: its rise, default 0.3 of the run)",
        range=(0.0, 100_000.0),
    )
    label_smoothing: float = _f(0.0, "cross-entropy label smoothing", range=(0.0, 1.0), recipe=True)
    grad_clip: float = _f(0.0, "clip the gradient norm to this value (0: off)", range=(0.0, 10**6))
    max_steps: int = _f(0, "stop after N optimizer steps, even mid-epoch (0: train every epoch)", range=(0, 10**9))
    patience: int = _f(
        0,
        "early stopping: stop after N dev evaluations in a row without improving --monitor (0: off)",
        range=(0, 10**6),
    )
    monitor: str = _f(
        "dev_acc",
        "dev metric that chooses best.pt and drives --patience: dev accuracy (higher is "
        "better), dev loss (lower is better), or last: best.pt is the final model (a schedule that "
        "anneals to zero aims at its end; no --patience)",
        choices=("dev_acc", "dev_loss", "last"),
        recipe=True,
    )
    # reproducibility and hardware
    seed: int = _f(0, "random seed (init, shuffling, augmentation)", range=(-(2**63), 2**63 - 1))
    deterministic: bool = _f(False, "deterministic algorithms (bit-exact resume on CPU)")
    device: str = _f("auto", "device", choices=DEVICES)
    amp: str = _f(
        "auto",
        "mixed precision autocast: auto (bf16/fp16 on CUDA, off on CPU/MPS), off, bf16, fp16",
        choices=("auto", "off", "bf16", "fp16"),
    )
    channels_last: bool = _f(False, "channels-last memory format for the model and batches")
    compile: bool = _f(False, "torch.compile the model")
    sync_bn: bool = _f(
        False, "under several processes (torchrun, --nproc): convert BatchNorm layers to SyncBatchNorm (CUDA only)"
    )
    num_threads: int = _f(
        0,
        "CPU threads for torch (0: torch's default, one per core); 1 can be faster when other jobs share the CPU",
        range=(0, 1024),
    )
    # feedback and checkpoints
    log_steps: int = _f(50, "write a train metrics row every N steps", range=(1, 10**9))
    eval_steps: int = _f(0, "evaluate on dev every N steps (0: at the end of every epoch)", range=(0, 10**9))
    save_every: int = _f(0, "also save last.pt every N steps (0: at evals and epoch ends only)", range=(0, 10**9))
    progress: str = _f(
        "auto", "progress display: bar on a terminal, plain lines otherwise", choices=("auto", "bar", "plain", "none")
    )
    plots: bool = _f(True, "save PNG plots in RUN_DIR/plots at the end")
    tensorboard: bool = _f(
        True,
        "write TensorBoard event files in the run directory (needs the tensorboard "
        "package: pip install 'lenetlab[tensorboard]')",
    )

    def to_dict(self) -> dict:
        """A JSON- and checkpoint-safe dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "RunConfig":
        """Build and validate from a dict; unknown fields or bad values raise a one-line ConfigError."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping of field names to values, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        for key in d:
            if key not in names:
                raise ConfigError(f"{source}: unknown field {key!r}{did_you_mean(key, names, n=1)}")
        return cls(**d).validate(source)

    def validate(self, source: str = "config") -> "RunConfig":
        """Check every field's type, choices and range; raise a one-line ConfigError naming the field."""
        for f in fields(self):
            value = _coerce(f, getattr(self, f.name), source)
            setattr(self, f.name, value)
            choices = f.metadata["choices"]
            if choices and value not in choices:
                raise ConfigError(f"{source}: field {f.name!r} must be one of {', '.join(choices)} (got {value!r})")
        if self.budget is not None:
            parse_budget(self.budget, source)
        check_model_size(self, source)
        if self.monitor == "last" and self.patience:
            raise ConfigError(
                f"{source}: field 'patience' needs monitor dev_acc or dev_loss (monitor last keeps the "
                f"final model: nothing to stop early on)"
            )
        return self

    def replace(self, **changes) -> "RunConfig":
        """A validated copy with some fields changed."""
        return RunConfig.from_dict({**self.to_dict(), **changes})


#: The fields a training recipe may set when they are not given.
RECIPE_FIELDS = tuple(f.name for f in fields(RunConfig) if f.metadata["recipe"])


def parse_budget(text: str, source: str = "config") -> float:
    """Seconds in a time budget: ``90``, ``90s``, ``2m``, ``1.5h`` (a ConfigError naming the field if not)."""
    t = str(text).strip().lower()
    unit = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:])
    try:
        value = float(t[:-1] if unit else t) * (unit or 1.0)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{source}: field 'budget' must be a time such as 90s, 2m or 1.5h (got {text!r})")
    return value


def _field_type(cls, name: str) -> tuple[type, bool]:
    """The base type of field ``name`` and whether it accepts None."""
    hint = typing.get_type_hints(cls)[name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return [a for a in typing.get_args(hint) if a is not type(None)][0], True
    return hint, False


def _coerce(f, value, source: str):
    """``value`` converted to the type of RunConfig field ``f`` and checked against its range, or a
    ConfigError naming the field."""
    base, optional = _field_type(RunConfig, f.name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{source}: field {f.name!r} must not be null")
    kinds = (int, float) if base in (int, float) else base
    if isinstance(value, bool) != (base is bool) or not isinstance(value, kinds):
        raise ConfigError(f"{source}: field {f.name!r} must be {base.__name__} (got {value!r})")
    bounds = f.metadata["range"]
    problem = bounds and number_problem(value, bounds, base is int)
    if problem:
        span = f"{bounds[0]} to {bounds[1]}"
        allowed = "" if problem.endswith(f"from {span}") else f"; allowed: {span}"
        raise ConfigError(f"{source}: field {f.name!r} must be {problem} (got {value!r}{allowed})")
    return base(value)


def number_problem(value, bounds: tuple[float, float], integer: bool = False) -> str | None:
    """The one rule for every number a user gives (flags, config files, resumed configs): None when
    ``value`` is finite, whole when ``integer``, and within ``bounds`` (both included); else what it
    must be instead: ``"a whole number from LO to HI"``, ``">= LO"`` or ``"<= HI"``."""
    lo, hi = bounds
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (integer and value != int(value))
    ):
        return f"{'a whole' if integer else 'a finite'} number from {lo} to {hi}"
    return f">= {lo}" if value < lo else f"<= {hi}" if value > hi else None


#: The most memory one model may ask for before anything is allocated: its parameters plus the
#: activations of one example, in float32 (a typo such as ``{"width": 100000}`` asks for terabytes).
MAX_MODEL_BYTES = 8 * 2**30


def check_model_size(cfg: RunConfig, source: str = "config") -> None:
    """Refuse a model with ``model_kwargs`` whose parameters (counted on the meta device) and one
    example's activations (every layer's outputs at the full input size) need more than
    :data:`MAX_MODEL_BYTES`. Unknown models and rejected arguments are left to the model's own errors."""
    if not cfg.model_kwargs:
        return
    import torch  # here, not at the top: `lenet --help` builds its flags from this module without torch

    from lenetlab.models import create, model_info

    try:
        size = model_info(cfg.model).input_size[-1]
        with torch.device("meta"):
            model = create(cfg.model, **cfg.model_kwargs)
    except Exception:  # an unknown name or bad arguments: reported where the model is built
        return
    numbers = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        numbers += getattr(m, "out_channels", 0) * size * size + getattr(m, "out_features", 0)
    need = 4 * numbers
    if need > MAX_MODEL_BYTES:
        raise ConfigError(
            f"{source}: model {cfg.model!r} with model_kwargs {dumps(cfg.model_kwargs, indent=None)} "
            f"needs about {need / 2**30:.0f} GB for its weights and one image's activations "
            f"(at most {MAX_MODEL_BYTES / 2**30:.0f} GB)"
        )


def shipped_configs() -> list[str]:
    """The names of the config files shipped in the package (``lenetlab/configs/NAME.yaml``), sorted."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml"))


def config_path(name_or_path: str | Path) -> Path:
    """The file ``--config`` means: an existing file, else the shipped config of that name
    (``fast-lenet5`` or ``fast-lenet5.yaml``); otherwise a one-line ConfigError listing the shipped names."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_CONFIGS / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and shipped.is_file():
        return shipped
    raise ConfigError(
        f"{name_or_path}: no such config file or shipped config (shipped: {', '.join(shipped_configs())})"
    )


def read_config_fields(path: str | Path) -> dict:
    """The fields a JSON or YAML config file (or shipped config, see :func:`config_path`) sets, unvalidated."""
    path = config_path(path)
    text = read_text(path, ConfigError)
    if path.suffix.lower() == ".json":
        data = loads(text, path, ConfigError)
    else:
        try:
            data = yaml.safe_load(text)
        except Exception as e:  # yaml raises its own error types (RecursionError for deep nesting)
            raise ConfigError(f"{path}: not valid JSON/YAML ({first_line(e)})") from None
    data = data if data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of field names to values, got {type(data).__name__}")
    return data


def load_config_file(path: str | Path) -> RunConfig:
    """Read a RunConfig from a JSON or YAML file or a shipped config's name."""
    return RunConfig.from_dict(read_config_fields(path), source=str(path))


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write ``cfg`` as indented JSON to ``path`` (atomically; a full disk is a one-line error)."""
    path = Path(path)
    text = dumps(cfg.to_dict()) + "\n"
    with atomic_path(path, size=len(text)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- CLI flags
def _json_object(text: str) -> dict:
    try:
        value = loads(text)
    except LenetlabError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text!r}")
    return value


def _number(text: str) -> int | float:
    """A flag's number as typed (``3``, ``1e-3``, ``nan``); :meth:`RunConfig.validate` checks its range."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _optional(conv):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "") else conv(text)

    parse.__name__ = conv.__name__
    return parse


def add_config_arguments(
    parser: argparse.ArgumentParser,
    exclude: tuple[str, ...] = (),
    title: str = "run configuration (override --config)",
    recipe_defaults: bool = False,
) -> None:
    """Add one ``--flag`` per RunConfig field (but those in ``exclude``). Their default is
    ``argparse.SUPPRESS``, so that :func:`config_overrides` sees only the flags typed; the help shows
    the dataclass default, or with ``recipe_defaults`` (``lenet submit``) the recipe's."""
    group = parser.add_argument_group(title)
    for f in fields(RunConfig):
        if not f.metadata["flag"] or f.name in exclude:
            continue
        base, optional = _field_type(RunConfig, f.name)
        default = f.default if f.default is not MISSING else f.default_factory()
        help_text = f.metadata["help"]
        if recipe_defaults and f.name in RECIPE_FIELDS:
            help_text = help_text.split(" (default:")[0] + " (default: the recipe's)"
        elif "(default:" not in help_text and default is not None and default is not False:
            help_text += f" (default: {json.dumps(default) if isinstance(default, dict) else default})"
        flag = "--" + f.name.replace("_", "-")
        kw: dict = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            continue
        conv = {int: _number, float: _number, dict: _json_object}.get(base, str)
        if f.metadata["choices"]:
            kw["choices"] = f.metadata["choices"]
        else:
            kw["metavar"] = f.name.upper()
        group.add_argument(flag, type=_optional(conv) if optional else conv, **kw)


def config_overrides(args: argparse.Namespace) -> dict:
    """The RunConfig fields given explicitly on the command line, as a dict."""
    names = {f.name for f in fields(RunConfig)}
    return {k: v for k, v in vars(args).items() if k in names}
