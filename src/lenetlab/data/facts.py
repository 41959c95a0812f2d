"""What a dataset holds, measured from its index, image headers (up to ``sample`` images) or table columns
without decoding it: the facts a training recipe is chosen from (``lenetlab.data.inspect``).
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lenetlab.data.csvtable import Layout, column_values, count_rows, read_pixels
from lenetlab.data.download import IDX_DATASETS
from lenetlab.data.folders import GRAY_MODES, Source, decode_images, encode
from lenetlab.data.idx import IDX_CLASSES, check_labels, idx_shape, read_idx
from lenetlab.data.images import open_image

#: Below this :func:`orientation_anisotropy` a dataset counts as having no preferred orientation.
#: Measured on 256 training images: upright characters on textures 0.13, MNIST digits 0.23, shapes
#: at any angle 0.03 (sampling noise about 0.01).
ISOTROPIC = 0.05
ANISOTROPY_SAMPLE = 256


@dataclass
class DatasetFacts:
    """A dataset's shape, as a recipe needs it: ``kind`` as :class:`~lenetlab.data.folders.Source`'s, labelled
    images (dev included), ``channels`` (1 when every sampled image looks gray), sampled ``(width, height)``."""

    name: str
    kind: str
    n_labelled: int
    n_test: int
    test_labelled: bool
    class_names: list[str]
    class_counts: list[int]
    channels: int
    sizes: list[tuple[int, int]] = field(default_factory=list)
    dev_given: bool = False
    anisotropy: float | None = None

    @property
    def upright(self) -> bool:
        """Whether the images have a preferred orientation (rotating them far changes what they show)."""
        return self.anisotropy is None or self.anisotropy >= ISOTROPIC

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def median_size(self) -> tuple[int, int]:
        """Median ``(width, height)`` of the sampled images."""
        w, h = np.median(self.sizes, axis=0) if self.sizes else (0, 0)
        return int(w), int(h)

    @property
    def mixed_sizes(self) -> bool:
        """Whether the sampled images differ in size (or are not square)."""
        return len(set(self.sizes)) > 1 or any(w != h for w, h in self.sizes)

    @property
    def imbalance(self) -> float:
        """Largest class count over the smallest (1.0 for a balanced set; inf if a class is empty)."""
        if not self.class_counts:
            return 1.0
        return float("inf") if min(self.class_counts) == 0 else max(self.class_counts) / min(self.class_counts)

    def to_dict(self) -> dict:
        """A JSON-safe summary (sizes reduced to min / median / max sides)."""
        d = asdict(self)
        d["sizes"] = {
            "sampled": len(self.sizes),
            "median": list(self.median_size),
            "min_side": min((min(s) for s in self.sizes), default=0),
            "max_side": max((max(s) for s in self.sizes), default=0),
            "mixed": self.mixed_sizes,
        }
        d["imbalance"] = None if self.imbalance == float("inf") else round(self.imbalance, 2)
        d["anisotropy"] = None if self.anisotropy is None else round(self.anisotropy, 4)
        return d

    def describe(self) -> str:
        """One line: counts, classes and balance, channels and sizes."""
        w, h = self.median_size
        sizes = f"{w}x{h}" + (" median, mixed sizes" if self.mixed_sizes else "")
        balance = "balanced" if self.imbalance <= 1.5 else f"imbalanced {self.imbalance:.1f}:1"
        test = f", {self.n_test:,} test ({'labelled' if self.test_labelled else 'unlabelled'})" if self.n_test else ""
        angle = "" if self.upright else ", no preferred orientation"
        return (
            f"{self.n_labelled:,} labelled images{test}, {self.n_classes} classes ({balance}), "
            f"{'grayscale' if self.channels == 1 else 'colour'}, {sizes}{angle}"
        )


def _probe_sizes(paths: list[Path], sample: int) -> tuple[list[tuple[int, int]], int]:
    """Sizes of up to ``sample`` evenly spread images and 1 if all are grayscale, else 3."""
    sizes, colour = [], not paths
    for k, p in enumerate(_spread(paths, sample)):
        with open_image(p, decode=False) as im:
            sizes.append(im.size)
            gray = im.mode in GRAY_MODES
        if not gray and not colour and k < 48:
            # an RGB file may hold a gray picture: look at a thumbnail (JPEG decodes it at 1/8 scale)
            a = np.asarray(open_image(p, draft=("RGB", 16)).convert("RGB"), dtype=np.int16)
            colour = bool(np.abs(a - a.mean(axis=2, keepdims=True)).mean() > 3)
    return sizes, 3 if colour else 1


def orientation_anisotropy(x: torch.Tensor) -> float:
    """How strongly images ``uint8 [N, C, H, W]`` prefer some edge orientations, in [0, 1]: the larger modulus
    of the magnitude-weighted means of ``exp(2i theta)`` and ``exp(4i theta)`` of their Sobel gradients."""

    if len(x) == 0:
        return 0.0
    g = x.float().mean(1, keepdim=True)
    if g.shape[-2:] != (32, 32):
        g = F.interpolate(g, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx, gy = F.conv2d(g, k), F.conv2d(g, k.transpose(2, 3))
    mag, theta = torch.sqrt(gx**2 + gy**2), torch.atan2(gy, gx)
    w = mag / mag.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1e-9)
    h2 = (w * torch.polar(torch.ones_like(theta), 2 * theta)).sum(dim=(1, 2, 3)).mean()
    h4 = (w * torch.polar(torch.ones_like(theta), 4 * theta)).sum(dim=(1, 2, 3)).mean()
    return float(max(h2.abs(), h4.abs()))


def _spread(items: list, k: int) -> list:
    """Up to ``k`` items evenly spread over ``items`` (a class-sorted list gives every class its share)."""
    if len(items) <= k:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, k).round()]


def _counts(labels: list[int], n: int) -> list[int]:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=n).tolist()


def source_facts(src: Source, *, sample: int = 200) -> DatasetFacts:
    """:class:`DatasetFacts` of a dataset as :func:`~lenetlab.data.folders.dataset_source` found it."""
    if src.kind == "named" and src.name == "mnist-subset":
        return DatasetFacts(src.name, "named", 1200, 200, True, list(IDX_CLASSES), [120] * 10, 1, [(28, 28)])
    if src.kind in ("named", "nndl"):  # MNIST, Fashion-MNIST or NNDL's MNIST export
        names = IDX_DATASETS[src.name].class_names if src.kind == "named" else IDX_CLASSES
        return DatasetFacts(src.name, src.kind, 60000, 10000, True, list(names), [6000] * 10, 1, [(28, 28)])
    if src.kind == "idx":  # the label files are read and checked as loading checks them; images only their header
        ytr, yte = read_idx(src.idx[1]), read_idx(src.idx[3])
        check_labels([(src.idx[1], ytr), (src.idx[3], yte)], len(IDX_CLASSES))
        shape = idx_shape(src.idx[0])
        h, w = shape[-2:] if len(shape) >= 2 else (0, 0)
        return DatasetFacts(src.name, "idx", len(ytr), len(yte), True, list(IDX_CLASSES), _counts(ytr, 10), 1, [(w, h)])
    if src.kind == "pixel-csv":
        return _pixel_facts(src.name, *src.tables)
    found, dev = src.index, src.index.dev
    sizes, channels = _probe_sizes(found.all_paths(), sample)
    y = found.train.y + (dev.y if dev else [])
    picked = _spread(found.train.paths, ANISOTROPY_SAMPLE)
    return DatasetFacts(
        src.name,
        found.layout,
        len(y),
        len(found.test.paths),
        found.test.y is not None and bool(found.test.paths),
        list(found.classes),
        _counts(y, len(found.classes)),
        channels,
        sizes,
        dev_given=dev is not None,
        anisotropy=orientation_anisotropy(decode_images(picked, 32, 1)) if picked else None,
    )


def _pixel_facts(name: str, train: Layout | None, test: Layout | None) -> DatasetFacts:
    """Facts of pixel tables, from the label column and a sample of rows."""
    classes, y, _ = encode(column_values(train, train.label) if train is not None else [], None, None)
    aniso = None
    if y:
        x = read_pixels(train, max_rows=ANISOTROPY_SAMPLE * 4)[0]
        aniso = orientation_anisotropy(torch.from_numpy(np.stack(_spread(x, ANISOTROPY_SAMPLE))).unsqueeze(1))
    side, counts = (train or test).side, _counts(y, len(classes))
    n_test, test_labelled = (count_rows(test), test.labelled) if test is not None else (0, False)
    return DatasetFacts(
        name, "pixel-csv", len(y), n_test, test_labelled, classes, counts, 1, [(side, side)], anisotropy=aniso
    )
