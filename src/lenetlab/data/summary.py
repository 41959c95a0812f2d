"""``lenet data``: a dataset's split sizes, image shape, classes, pixel statistics and files."""

from lenetlab.data import load
from lenetlab.data.common import pixel_stats


def summarize(
    name: str = "mnist-subset", data_dir=None, *, download: bool = False, verify: bool = False, **load_kwargs
) -> dict:
    """A JSON-ready summary of dataset ``name`` (:func:`lenetlab.data.load`): split sizes, image shape, classes
    and their counts, the train split's per-channel pixel mean and std, input spec."""

    s = load(name, data_dir, download=download, verify=verify, **load_kwargs)
    mean, std = pixel_stats(s.train.x) if len(s.train) else ((), ())
    labelled = s.train.y is not None and len(s.train)
    counts = s.train.y.bincount(minlength=len(s.class_names)).tolist() if labelled else []
    return {
        "name": s.name,
        "source": s.source,
        "splits": {"train": len(s.train), "dev": len(s.dev), "test": len(s.test)},
        "test_labelled": s.test.y is not None,
        "image_shape": list(s.train.x.shape[1:] if len(s.train) else s.test.x.shape[1:]),
        "dtype": str(s.train.x.dtype).replace("torch.", ""),
        "num_classes": len(s.class_names),
        "class_names": s.class_names,
        "train_class_counts": counts,
        "pixel_mean": [round(m, 4) for m in mean],
        "pixel_std": [round(v, 4) for v in std],
        "input_spec": s.input_spec.to_dict(),
        "verified": bool(verify),
    }


def format_summary(d: dict) -> str:
    """Human-readable text of :func:`summarize`'s dict."""
    sp = d["splits"]
    names = d["class_names"]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    spec = d["input_spec"]
    lines = [
        f"dataset     {d['name']}",
        f"files       {d['source']}" + ("  (checksums verified)" if d["verified"] else ""),
        f"splits      train {sp['train']:,} / dev {sp['dev']:,} / test {sp['test']:,}"
        + ("" if d["test_labelled"] else " (test unlabelled)"),
        f"images      {'x'.join(str(v) for v in d['image_shape'])} (C x H x W), {d['dtype']}",
        f"classes     {d['num_classes']}: {shown}",
        f"pixels      mean {', '.join(f'{m:.4f}' for m in d['pixel_mean'])}  "
        f"std {', '.join(f'{v:.4f}' for v in d['pixel_std'])}  (train split, [0, 1] units)",
        f"model input {spec['channels']}x{spec['size']}x{spec['size']} by {spec['resize']}, "
        f"mean {', '.join(f'{m:.4f}' for m in spec['mean'])}, std {', '.join(f'{v:.4f}' for v in spec['std'])}",
    ]
    return "\n".join(lines)
