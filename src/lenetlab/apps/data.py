"""``lenet data``: a dataset's split sizes, image shape, classes, pixel statistics and files."""

from lenetlab.data.summary import format_summary, summarize
from lenetlab.textfmt import Output


def run_data(dataset: str = "mnist-subset", data_dir=None, **kwargs) -> Output:
    """:func:`~lenetlab.data.summary.summarize` ``dataset`` (``kwargs``: its options and the loader's)."""
    d = summarize(dataset, data_dir, **kwargs)
    return Output(d, format_summary(d))
