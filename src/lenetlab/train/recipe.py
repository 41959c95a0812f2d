"""Training recipes: from what a dataset holds to a :class:`RunConfig` that trains well on it.

``auto`` reads the dataset's facts (:func:`lenetlab.data.inspect`) and chooses the input size, the
model (``lenet5-modern`` at the widest width that fits a compute budget), AdamW with a one-cycle
schedule, affine augmentation without flips, the epochs, the validation split and the model kept;
docs/own-data.md explains each choice and the measurements behind it. ``fast`` spends a quarter of
the compute, ``lenet5`` is the tutorials' recipe (the flags' defaults; what ``auto`` is for named
MNIST datasets and NNDL files). Unless a ``budget`` is given the choice depends only on the dataset,
and explicit fields (flags, a ``--config`` file) override any part of it. :func:`plan_config` returns
the final config and the :class:`Recipe`.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from lenetlab import data, timing
from lenetlab.data.facts import ISOTROPIC, DatasetFacts
from lenetlab.data.loader import batch_count
from lenetlab.data.splits import DEV_MAX, dev_size
from lenetlab.device import autocast_dtype, select_device, set_threads
from lenetlab.errors import ConfigError
from lenetlab.inference.evaluate import model_loss
from lenetlab.models import model_info
from lenetlab.models.profile import profile_model
from lenetlab.textfmt import align
from lenetlab.train.config import RunConfig, parse_budget, read_config_fields
from lenetlab.train.optim import OPTIMIZER_DEFAULTS, build_optimizer
from lenetlab.train.sdlm import SDLM, gauss_newton_diagonal
from lenetlab.train.setup import build_spec, init_model, load_splits, train_loader
from lenetlab.train.step import make_scaler, train_step

#: Datasets whose own tuned recipes ``auto`` keeps: the named ones, NNDL files, IDX folders (MNIST itself).
DIGIT_KINDS = ("named", "nndl", "idx")
#: The compute ``auto`` spends on training, in forward multiply-accumulates (images x epochs x MACs
#: per image): about two minutes on a 2-core CPU (about 9 GMAC/s).
TRAIN_MACS = 1.0e12
#: ``fast`` spends a quarter of it.
FAST_SHARE = 0.25
WIDTHS = (32, 24, 16, 8)
#: ``lenet submit`` on a small set: up to this many runs, each with this share of a single run's epochs.
MAX_MEMBERS = 3
MEMBER_SHARE = 0.7
MODEL = "lenet5-modern"
#: Below this many validation images ``auto`` keeps the final model rather than the best epoch on them.
SMALL_DEV = 1000
#: Schedules that anneal the learning rate to (almost) zero by the last step: their end is the model to keep.
ANNEALED = ("onecycle", "cosine")


@dataclass
class Choice:
    """One field a recipe sets: its value, why, and whether the user gave it instead."""

    value: Any
    why: str
    given: bool = False


@dataclass
class Recipe:
    """A recipe applied to one dataset: the ``name`` asked for, what it ``used``, the dataset's facts, one
    :class:`Choice` per RunConfig field it sets, and (``--budget``) the data it loaded to time a step."""

    name: str
    used: str
    facts: DatasetFacts | None
    choices: dict[str, Choice] = field(default_factory=dict)
    step_time: float | None = None
    budget_s: float | None = None
    ensemble: dict = field(default_factory=dict)
    splits: Any = field(default=None, repr=False, compare=False)

    @property
    def members(self) -> int:
        """How many runs ``lenet submit`` averages (1 unless :func:`ensemble_plan` found room for more)."""
        return int(self.ensemble.get("members", 1))

    def fields(self) -> dict:
        """The RunConfig fields the recipe sets (not those the user gave)."""
        return {k: c.value for k, c in self.choices.items() if not c.given}

    def notes(self) -> dict:
        """A JSON-safe record for ``RunConfig.recipe_notes``: the facts, each choice and its reason."""
        return {
            "recipe": self.name,
            "used": self.used,
            "facts": None if self.facts is None else {**self.facts.to_dict(), "summary": self.facts.describe()},
            "choices": {k: {"value": c.value, "why": c.why, "given": c.given} for k, c in self.choices.items()},
            "step_time": None if self.step_time is None else round(self.step_time, 5),
            "budget_s": self.budget_s,
            "ensemble": dict(self.ensemble),
        }

    def describe(self) -> str:
        """The block shown before training (see :func:`describe_notes`)."""
        return describe_notes(self.notes())


def describe_notes(notes: dict) -> str:
    """The recipe block of a run's ``recipe_notes``: a line naming the recipe and the dataset's facts,
    then one line per choice (field, value, reason; ``(given)`` where a flag or file set it)."""
    if not notes:
        return ""
    facts = notes.get("facts")
    what = f" for {facts['name']}: {facts['summary']}" if facts else ""
    name, used = notes.get("recipe", "auto"), notes.get("used", "auto")
    head = f"recipe {name}" + (f" ({used})" if used != name else "") + what
    choices = notes.get("choices") or {}
    lines = [head]
    if used == "lenet5":
        lines.append(
            "  the tutorials' LeNet-5 recipe (the flags' defaults): lenet5, 10 epochs, Adam 0.002, no schedule, "
            "no augmentation"
        )
    rows = [
        [f"  {k.replace('_', ' ')}", _show(c["value"]), ("(given) " if c.get("given") else "") + c.get("why", "")]
        for k, c in choices.items()
    ]
    ens = notes.get("ensemble") or {}
    if ens.get("members", 1) > 1:
        rows.append(["  ensemble", f"{ens['members']} x {ens['epochs']} epochs", ens.get("why", "")])
    return "\n".join(lines + (align(rows) if rows else []))


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:g}"
    return "-" if value is None else str(value)


# ----------------------------------------------------------------------------- the automatic choice
def epochs_for(n_train: int) -> int:
    """Epochs by training-set size: ``15,400 / n^0.73``, between 6 and 100 (1,000 images: 100; 10,000: 19)."""
    return int(min(100, max(6, round(15400 / max(n_train, 1) ** 0.73))))


def val_size_for(facts: DatasetFacts) -> int:
    """Validation images: the loaders' rule (:func:`~lenetlab.data.splits.dev_size`), raised to two per
    class on a small set (at most a fifth of it)."""
    n = facts.n_labelled
    return max(dev_size(n), min(n // 5, 2 * facts.n_classes, DEV_MAX))


def model_macs(width: int, channels: int, classes: int) -> int:
    """Forward multiply-accumulates of one 32x32 image through ``lenet5-modern`` at ``width``."""
    return int(profile_model(MODEL, (channels, 32, 32), num_classes=max(classes, 2), width=width).macs)


def _width_and_epochs(
    n_train: int, epochs: int, channels: int, classes: int, macs_budget: float
) -> tuple[int, int, str]:
    """The widest model that trains ``epochs`` epochs within ``macs_budget``; else the narrowest and
    fewer epochs. Returns (width, epochs, reason)."""
    for w in WIDTHS:
        cost = n_train * epochs * model_macs(w, channels, classes)
        if cost <= macs_budget:
            used = f"{cost / 1e12:.2f} of {macs_budget / 1e12:.2f} TMAC"
            return w, epochs, f"the widest whose {epochs} epochs fit the compute budget ({used})"
    w = WIDTHS[-1]
    fit = max(1, int(macs_budget // (n_train * model_macs(w, channels, classes))))
    return w, fit, f"the narrowest; {fit} epochs fit the compute budget ({macs_budget / 1e12:.2f} TMAC)"


def image_size_choice(facts: DatasetFacts, side: int = 32) -> Choice:
    """Load images at the model's input ``side`` (once, when loading), except 28 to 32-pixel square
    digits, which are kept and padded as LeNet-5 does."""
    w, h = facts.median_size
    if not facts.mixed_sizes and w == h and 28 <= w <= side:
        return Choice(None, f"{w}x{h} images kept; padded to the model's {side}x{side} input, as LeNet-5 does")
    sides = [min(s) for s in facts.sizes] or [w]
    what = f"sizes {min(sides)} to {max(max(s) for s in facts.sizes)} px" if facts.mixed_sizes else f"{w}x{h}"
    return Choice(side, f"resized once, when loading, to the model's {side}x{side} input ({what})")


def monitor_choice(n_val: int | None) -> Choice:
    """Which model a run keeps as ``best.pt`` (``monitor``) from ``n_val`` validation images (None: the
    folder's own split): the final one under :data:`SMALL_DEV` (accuracy ties at its top long before
    the schedule has annealed), else the best epoch (docs/own-data.md, "the model kept")."""
    if n_val is not None and n_val < SMALL_DEV:
        return Choice(
            "last",
            f"keep the final, annealed model: on {n_val:,} validation images (one is "
            f"{100 / max(n_val, 1):.1f} points) accuracy ties at its top mid-run",
        )
    what = "the folder's own validation split" if n_val is None else f"{n_val:,} validation images"
    return Choice("dev_acc", f"keep the epoch with the best validation accuracy ({what} tell epochs apart)")


def train_count(facts: DatasetFacts) -> int:
    """Training images left once the dev split (and, for one flat folder of classes, the test tenth)
    is carved from the labelled ones."""
    n_val = 0 if facts.dev_given else val_size_for(facts)
    carved_test = (
        facts.n_labelled // 10 if facts.kind == "class-folders" and not facts.n_test and not facts.dev_given else 0
    )
    return max(1, facts.n_labelled - n_val - carved_test)


def auto_choices(facts: DatasetFacts, fast: bool = False) -> dict[str, Choice]:
    """The ``auto`` (or ``fast``) recipe's choices for a dataset with ``facts`` (see the module doc)."""
    if facts.n_labelled == 0:
        raise ConfigError(f"{facts.name}: no labelled images to train on")
    c: dict[str, Choice] = {"image_size": image_size_choice(facts)}
    n_val = 0 if facts.dev_given else val_size_for(facts)
    n_train = train_count(facts)
    epochs = epochs_for(n_train)
    budget = TRAIN_MACS * (FAST_SHARE if fast else 1.0)
    if fast:
        epochs = max(2, round(epochs * FAST_SHARE))
    width, epochs, why = _width_and_epochs(n_train, epochs, facts.channels, facts.n_classes, budget)
    c["model"] = Choice(MODEL, "LeNet-5's geometry with batch norm, ReLU, max pooling and dropout")
    c["model_kwargs"] = Choice({"width": width}, f"C1/C3 maps {width}/{2 * width}: {why}")
    c["optimizer"] = Choice("adamw", "Adam with decoupled weight decay: little tuning needed")
    c["lr"] = Choice(0.01, "peak of the one-cycle schedule (batch norm tolerates a high rate)")
    c["weight_decay"] = Choice(5e-4, "mild regularisation for small sets")
    c["schedule"] = Choice("onecycle", "warm up for 30% of the run, then anneal to almost zero")
    c["label_smoothing"] = Choice(0.1, "softer targets: better-calibrated probabilities to average")
    if facts.upright:
        c["augment"] = Choice(
            "affine",
            "random shifts, 10-degree rotations, scaling and shear; no flips "
            "(a mirrored character is another character, b/d, or none)",
        )
        c["augment_kwargs"] = Choice(
            {},
            "the affine preset as it is: the images are upright "
            f"(edge-orientation anisotropy {facts.anisotropy or 0:.2f})",
        )
    else:
        c["augment"] = Choice("affine", "random shifts, rotations, scaling and shear")
        c["augment_kwargs"] = Choice(
            {"rotate": 180.0},
            "rotations by any angle: the images show no preferred "
            f"orientation (anisotropy {facts.anisotropy:.2f} < "
            f"{ISOTROPIC}), so a turned image is another view of its class",
        )
    bs = 64 if n_train < 8000 else 128
    c["batch_size"] = Choice(bs, f"{batch_count(n_train, bs)} steps per epoch over {n_train:,} training images")
    c["epochs"] = Choice(
        epochs,
        ("a quarter of auto's passes: a first look" if fast else f"15,400 / {n_train:,}^0.73 passes, 6 to 100")
        + f" ({epochs * n_train:,} images seen)",
    )
    if facts.dev_given:
        c["val_size"] = Choice(None, "the folder's own validation split")
    else:
        c["val_size"] = Choice(n_val, f"a seeded tenth of the labelled images ({n_val:,}; at least 2 per class)")
    c["monitor"] = monitor_choice(None if facts.dev_given else n_val)
    return c


def ensemble_plan(facts: DatasetFacts, choices: dict[str, Choice], fast: bool = False) -> dict:
    """How ``lenet submit`` spends the compute budget on a small set: ``members`` runs with consecutive
    seeds of ``epochs`` each (:data:`MEMBER_SHARE` of a single run's) when at least two fit it (at most
    :data:`MAX_MEMBERS`; averaging a few runs is steadier than one longer run), else ``{"members": 1}``."""
    epochs = choices["epochs"].value
    n_train = train_count(facts)
    width = choices["model_kwargs"].value.get("width", WIDTHS[0])
    per_epoch = n_train * model_macs(width, facts.channels, facts.n_classes)
    member_epochs = max(1, round(epochs * MEMBER_SHARE))
    budget = TRAIN_MACS * (FAST_SHARE if fast else 1.0)
    members = int(min(MAX_MEMBERS, budget // (member_epochs * per_epoch)))
    if members < 2:
        return {"members": 1}
    return {
        "members": members,
        "epochs": member_epochs,
        "why": f"lenet submit averages {members} runs with consecutive seeds: they fit the compute budget and are "
        f"steadier than one run ({epochs} epochs)",
    }


# ----------------------------------------------------------------------------- budget
def measure_step(cfg: RunConfig, splits, steps: int = 12) -> float:
    """Seconds per training step of ``cfg`` on ``splits`` as the run will take it (model, loss, optimiser,
    precision, augmentation, device, threads, and its first batch): the median of ``steps`` steps after
    two warm-up steps (robust to a neighbour's burst on a shared machine)."""
    set_threads(cfg.num_threads)
    device = select_device(cfg.device)
    amp = autocast_dtype(device, cfg.amp)
    spec = build_spec(cfg, splits)
    model = init_model(cfg, splits, spec)[0].to(device)
    opt, loss_fn, scaler = build_optimizer(model, cfg), model_loss(model, cfg.label_smoothing), make_scaler(device, amp)
    loader = train_loader(cfg, splits, spec, device)
    n = len(splits.train)
    idx = loader.indices()[: n if batch_count(n, cfg.batch_size) == 1 else cfg.batch_size]  # the run's first batch
    model.train()
    if isinstance(opt, SDLM):
        opt.set_curvature(gauss_newton_diagonal(model, loader.batch(idx)[0]))

    def step() -> int:
        xb, yb = loader.batch(idx)
        train_step(model, opt, xb, yb, loss_fn, scaler, amp=amp, grad_clip=cfg.grad_clip)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return 1

    return 1.0 / timing.median_rate(step, steps, warmup=2)


def epoch_seconds(step_time: float, n_train: int, n_dev: int, batch_size: int) -> float:
    """Seconds of one epoch at ``step_time`` seconds per training step (an evaluation of the dev split
    costs about a third of a training step per batch)."""
    return batch_count(n_train, batch_size) * step_time + (-(-n_dev // batch_size)) * step_time / 3


def budget_epochs(budget_s: float, step_time: float, n_train: int, n_dev: int, batch_size: int) -> int:
    """Epochs that fit ``budget_s`` seconds at ``step_time`` seconds per step (5% is kept for checkpoints)."""
    per_epoch = epoch_seconds(step_time, n_train, n_dev, batch_size)
    return int(max(1, min(1000, (0.95 * budget_s) // per_epoch)))


def fit_budget(cfg: RunConfig, recipe: Recipe, splits, explicit: dict) -> RunConfig:
    """``cfg`` with the width and epochs that fill ``recipe.budget_s`` seconds of training on ``splits``
    (measured): the widest of :data:`WIDTHS` (at most the recipe's, unless the user chose the model)
    whose epochs fit, else the narrowest with fewer; a ConfigError naming the minimum budget when
    not even one epoch fits."""
    wanted = recipe.choices["epochs"].value if "epochs" in recipe.choices else cfg.epochs
    width = (cfg.model_kwargs or {}).get("width")
    rechoose = cfg.model == MODEL and width is not None and not set(explicit) & {"model", "model_kwargs"}
    widths = [w for w in WIDTHS if w <= width] if rechoose else [width]
    n_train, n_dev = len(splits.train), len(splits.dev)
    for w in widths:
        trial = cfg.replace(model_kwargs={**cfg.model_kwargs, "width": w}) if rechoose else cfg
        step = measure_step(trial, splits)
        per_epoch = epoch_seconds(step, n_train, n_dev, cfg.batch_size)
        if 0.95 * recipe.budget_s >= wanted * per_epoch:
            break
    if per_epoch > recipe.budget_s:
        smallest = f"{cfg.model} width {w}" if rechoose else cfg.model
        raise ConfigError(
            f"field 'budget': {cfg.budget} is too short for one epoch of the smallest model "
            f"({smallest}: {per_epoch:.1f} s measured here); give at least --budget "
            f"{math.ceil(per_epoch / 0.95)}s"
        )
    recipe.step_time = step
    epochs = budget_epochs(recipe.budget_s, step, n_train, n_dev, cfg.batch_size)
    recipe.choices["epochs"] = Choice(
        epochs, f"fill --budget {cfg.budget}: a measured {step * 1e3:.0f} ms per step of {cfg.batch_size}"
    )
    if rechoose:
        fits = f"the widest whose {wanted} epochs fit" if epochs >= wanted else f"the narrowest; {epochs} epochs fit"
        recipe.choices["model_kwargs"] = Choice(
            {**cfg.model_kwargs, "width": w}, f"C1/C3 maps {w}/{2 * w}: {fits} --budget {cfg.budget}"
        )
        cfg = cfg.replace(model_kwargs={**cfg.model_kwargs, "width": w})
    return cfg.replace(epochs=epochs)


# ----------------------------------------------------------------------------- planning
def _facts(cfg: RunConfig) -> DatasetFacts:
    return data.inspect(
        cfg.dataset, image_column=cfg.image_column, label_column=cfg.label_column, id_column=cfg.id_column
    )


def choose(cfg: RunConfig, facts: DatasetFacts | None = None) -> Recipe:
    """The recipe ``cfg.recipe`` for ``cfg``'s dataset, before explicit fields are applied."""
    facts = facts if facts is not None else _facts(cfg)
    if cfg.recipe == "auto" and facts.kind in DIGIT_KINDS:
        return Recipe(cfg.recipe, "lenet5", facts if facts.kind != "named" else None)
    if cfg.recipe == "lenet5":  # the tutorials' recipe; a folder's images still load at the input size
        choices = (
            {}
            if facts.kind in DIGIT_KINDS
            else {"image_size": image_size_choice(facts, int(model_info(cfg.model).input_size[-1]))}
        )
        return Recipe(cfg.recipe, "lenet5", facts if facts.kind != "named" else None, choices)
    choices = auto_choices(facts, fast=cfg.recipe == "fast")
    return Recipe(cfg.recipe, cfg.recipe, facts, choices, ensemble=ensemble_plan(facts, choices, cfg.recipe == "fast"))


def apply_recipe(
    explicit: dict,
    *,
    source: str = "command line",
    measure: bool = True,
    facts: DatasetFacts | None = None,
    ensemble: bool = False,
) -> tuple[RunConfig, Recipe]:
    """The run's config (``explicit`` fields over the recipe they name over the defaults; the recipe's
    notes in ``recipe_notes``) and the :class:`Recipe`. ``measure``: time steps to fit a ``budget``
    (False: checks before the run starts). ``ensemble``: a config for one member of the recipe's
    ensemble (``lenet submit``, :func:`ensemble_plan`), unless epochs, model, image size or budget are given."""
    explicit = {k: v for k, v in explicit.items() if k != "recipe_notes"}
    base = RunConfig.from_dict(dict(explicit), source=source)
    recipe = choose(base, facts)
    for key, value in explicit.items():
        if key in recipe.choices:
            recipe.choices[key] = Choice(value, "", given=True)
    if not ensemble or set(explicit) & {"epochs", "model", "model_kwargs", "image_size", "budget"}:
        recipe.ensemble = {"members": 1}
    elif recipe.members > 1:
        e = recipe.ensemble
        recipe.choices["epochs"] = Choice(
            e["epochs"], f"each of {e['members']} runs averaged (a single run: {recipe.choices['epochs'].value})"
        )
    _follow_model(recipe, explicit)
    _follow_optimizer(recipe, explicit, base.optimizer)
    cfg = RunConfig.from_dict({**recipe.fields(), **explicit}, source=source)
    if cfg.budget is not None:
        recipe.budget_s = parse_budget(cfg.budget, source)
        if "epochs" in explicit:
            recipe.choices["epochs"] = Choice(cfg.epochs, f"--budget {cfg.budget} not used: --epochs given", given=True)
        elif measure:
            recipe.splits = splits = load_splits(cfg)  # the run trains on them: loaded once
            cfg = fit_budget(cfg, recipe, splits, explicit)
    return cfg.replace(recipe_notes=recipe.notes()), recipe


def _follow_model(recipe: Recipe, explicit: dict) -> None:
    """Adapt the recipe's choices to what the user gave: a named model drops the recipe's width and loads
    images at its input size; a named augmentation drops the recipe's arguments; a validation size
    sets the model kept (:func:`monitor_choice`); a schedule that does not anneal keeps the best epoch."""
    mon = recipe.choices.get("monitor")
    if "val_size" in explicit and mon is not None and not mon.given:
        recipe.choices["monitor"] = mon = monitor_choice(explicit["val_size"])
    if (
        explicit.get("schedule", ANNEALED[0]) not in ANNEALED
        and mon is not None
        and not mon.given
        and mon.value == "last"
    ):
        recipe.choices["monitor"] = Choice(
            "dev_acc", f"keep the best epoch: the {explicit['schedule']} schedule does not anneal to the end"
        )
    kw = recipe.choices.get("augment_kwargs")
    if "augment" in explicit and kw is not None and not kw.given and kw.value:
        recipe.choices["augment_kwargs"] = Choice({}, f"the {explicit['augment']} preset as it is")
    if "model" not in explicit or explicit["model"] == MODEL or not recipe.choices:
        return
    if "model_kwargs" in recipe.choices and not recipe.choices["model_kwargs"].given:
        recipe.choices["model_kwargs"] = Choice({}, f"{explicit['model']}'s own defaults")
    size = recipe.choices.get("image_size")
    if size is not None and not size.given and size.value is not None:
        side = int(model_info(explicit["model"]).input_size[-1])
        recipe.choices["image_size"] = Choice(
            side, f"resized once, when loading, to {explicit['model']}'s {side}x{side} input"
        )


def _follow_optimizer(recipe: Recipe, explicit: dict, default: str) -> None:
    """Set the defaults of the chosen optimiser (:data:`OPTIMIZER_DEFAULTS`) that the user did not give
    (``default``: the optimiser when neither the user nor the recipe names one)."""
    chosen = recipe.choices.get("optimizer")
    optimizer = explicit.get("optimizer", chosen.value if chosen is not None else default)
    for key, value in OPTIMIZER_DEFAULTS.get(optimizer, {}).items():
        if key not in explicit:
            recipe.choices[key] = Choice(value, f"{optimizer}'s default (LeCun et al. 1998)")


def plan_config(config_file=None, overrides: dict | None = None, *, measure: bool = True) -> tuple[RunConfig, Recipe]:
    """:func:`apply_recipe` with the fields of ``config_file`` and ``overrides`` (flags) as the explicit ones."""
    base = read_config_fields(config_file) if config_file is not None else {}
    return apply_recipe({**base, **(overrides or {})}, source=str(config_file or "command line"), measure=measure)
