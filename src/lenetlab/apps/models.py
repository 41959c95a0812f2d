"""``lenet models [--pretrained]``: the registered models, or those shipped with trained weights."""

from lenetlab.models.pretrained import describe_pretrained
from lenetlab.models.profile import describe_models
from lenetlab.textfmt import Output, align


def run_models(pretrained: bool = False) -> Output:
    """A table of every registered model (name, input, parameters, description), or with
    ``pretrained`` of those with shipped weights (name, dataset, test accuracy, classes)."""
    if pretrained:
        rows = describe_pretrained()
        head = ("model", "trained on", "test acc", "classes", "python")
        table = [
            (
                r["name"],
                r["dataset"] or "?",
                "?" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}",
                r["classes"],
                f"create({r['name']!r}, pretrained=True)",
            )
            for r in rows
        ]
        return Output(rows, "\n".join(align([head, *table], right={2, 3})))
    rows = describe_models()
    table = [(r["name"], "x".join(map(str, r["input_size"])), f"{r['params']:,}", r["description"]) for r in rows]
    return Output(rows, "\n".join(align([("model", "input", "params", "description"), *table], right={2})))
