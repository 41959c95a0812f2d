"""POST /explain: every layer's activations checked against the model's own forward hooks, the same
4xx as /predict, several models with ?model=NAME, the ONNX backend's plain refusal, thread safety."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lenetlab.data.images import preprocess_image
from lenetlab.data.transforms import prepare
from lenetlab.errors import LenetlabError
from lenetlab.inference.predictor import TorchPredictor, load_predictor
from lenetlab.serve.app import ServedModel, create_app
from lenetlab.serve.explain import Explainer, layer_modules

#: The layers each model shows, named as the model names them (NiN: one level down its nn.Sequential,
#: its dropout folded into the pooling before it, its Flatten left out).
LAYERS = {
    "lenet5": ["C1", "S2", "C3", "S4", "C5", "F6", "output"],
    "lenet5-1998": ["C1", "S2", "C3", "S4", "C5", "F6", "output"],
    "nin-small": ["net.0", "net.1", "net.2", "net.3", "net.4", "net.5", "net.7", "net.8"],
}


@pytest.fixture(scope="module")
def three(lenet1998_ckpt, nin_ckpt, predictor):
    """The three models served together: the shipped lenet5 (default), lenet5-1998 and nin-small."""
    return [
        ServedModel("lenet5", predictor),
        ServedModel("lenet5-1998", TorchPredictor(lenet1998_ckpt)),
        ServedModel("nin-small", TorchPredictor(nin_ckpt)),
    ]


@pytest.fixture(scope="module")
def multi(three):
    with TestClient(create_app(three)) as c:
        yield c


def _hooked(model: torch.nn.Module, names: list[str], inputs: torch.Tensor) -> tuple[dict, torch.Tensor]:
    """Outputs of the named modules in one forward pass, by plain forward hooks; and the scores."""
    seen, handles = {}, []
    modules = dict(model.named_modules())
    for name in names:
        handles.append(modules[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o)))
    try:
        with torch.no_grad():
            scores = model(inputs)
    finally:
        for h in handles:
            h.remove()
    return seen, scores


@pytest.mark.parametrize("name", list(LAYERS))
def test_explain_matches_the_models_own_hooks(name, three, multi, seven_png):
    served = next(m for m in three if m.name == name)
    r = multi.post(f"/explain?model={name}", files={"file": ("seven.png", seven_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == name and body["model"] == served.predictor.name and body["backend"] == "torch"
    assert [layer["name"] for layer in body["layers"]] == LAYERS[name]
    x = preprocess_image(Image.open(io.BytesIO(seven_png)))  # uint8 [1, 28, 28]
    model = served.predictor.model
    seen, scores = _hooked(
        model,
        [n for n in LAYERS[name] if n != "net.5"] + (["net.6"] if name == "nin-small" else []),
        prepare(x.unsqueeze(0), served.predictor.spec),
    )
    for layer in body["layers"]:
        out = seen["net.6" if layer["name"] == "net.5" else layer["name"]][0]
        if name == "lenet5-1998" and layer["name"] != "output":
            out = model.act(out)  # the shared scaled tanh: shown after the squashing
            assert layer["activation"] == "ScaledTanh"
        values = np.array(layer["values"])
        assert list(values.shape) == list(out.shape) == layer["shape"], layer["name"]
        assert layer["kind"] == ("maps" if out.dim() == 3 else "vector")
        assert np.abs(values - out.numpy()).max() <= 6e-5, layer["name"]  # rounded to 4 decimals
        assert layer["min"] == pytest.approx(float(out.min()), abs=1e-4)
        assert layer["max"] == pytest.approx(float(out.max()), abs=1e-4)

    probs = np.array(body["probabilities"])
    assert body["digit"] == int(scores.argmax()) == int(probs.argmax())
    sal = np.array(body["saliency"])
    assert sal.shape == (28, 28) and sal.min() >= 0 and sal.max() == 1.0
    kernels = body["kernels"]
    first = model.C1.weight if hasattr(model, "C1") else model.net[0][0].weight
    assert kernels["shape"] == list(first.shape) and kernels["layer"] in ("C1", "net.0.0")
    assert np.abs(np.array(kernels["values"]) - first.detach().numpy()).max() <= 6e-5
    if name == "lenet5-1998":  # the squared distance of F6's 84 outputs to each digit's 7x12 bitmap
        dist = np.array(body["rbf_distances"])
        assert dist.shape == (10,) and int(dist.argmin()) == body["digit"]
        assert np.abs(dist + scores[0].numpy()).max() <= 1e-3 * max(1.0, float(dist.max()))
    else:
        assert body["rbf_distances"] is None


def test_explain_gives_the_prediction_of_predict(client, seven_png):
    files = {"file": ("seven.png", seven_png, "image/png")}
    pred, expl = client.post("/predict", files=files).json(), client.post("/explain", files=files).json()
    assert expl["digit"] == pred["digit"] == 7
    assert np.allclose(expl["probabilities"], pred["probabilities"], atol=1e-6)
    assert expl["input_28x28"] == pred["input_28x28"] and expl["top_k"][0]["index"] == 7
    assert {"preprocess", "forward", "saliency", "total"} <= set(expl["timing_ms"])


def test_saliency_lies_on_the_ink(client, seven_png):
    body = client.post("/explain", files={"file": ("seven.png", seven_png, "image/png")}).json()
    ink, sal = np.array(body["input_28x28"]) > 0, np.array(body["saliency"])
    near = np.zeros_like(ink)  # the ink and the pixels next to it
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(ink, dy, 0), dx, 1)
    assert sal[near].sum() > 0.5 * sal.sum()


BAD = {  # name: (request kwargs, status, code)
    "empty": ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty_body"),
    "not an image": ({"content": b"hello, not a png", "headers": {"content-type": "image/png"}}, 400, "not_an_image"),
    "media type": ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    "blank": ({"json": {"pixels": [[0] * 28] * 28}}, 422, "blank_image"),
    "bad json": ({"json": {"pixels": [[0] * 27] * 28}}, 422, "invalid_request"),
    "no file": ({"files": {"other": ("a.png", b"x", "image/png")}}, 422, "missing_file"),
    "top_k": ({"json": {"pixels": [[0] * 28] * 28}, "params": {"top_k": 0}}, 422, "invalid_request"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_explain_answers_bad_input_as_predict_does(case, client):
    kwargs, status, code = BAD[case]
    answers = [client.post(path, **kwargs) for path in ("/predict", "/explain")]
    for r in answers:
        assert r.status_code == status and r.json()["code"] == code, (r.request.url, r.text)
    assert answers[0].json() == answers[1].json()


def test_several_models_and_the_model_query(multi, seven_png):
    from lenetlab.inference.predictor import default_checkpoint
    from lenetlab.inference.run import Run

    listed = multi.get("/models").json()
    assert [m["name"] for m in listed] == ["lenet5", "lenet5-1998", "nin-small"]
    shipped = Run(default_checkpoint().parent).test_accuracy()  # the shipped run's own metrics
    assert shipped > 0.99 and listed[0] == {
        "name": "lenet5",
        "model": "lenet5",
        "backend": "torch",
        "dataset": "mnist",
        "test_accuracy": shipped,
        "explain": True,
        "class_names": [str(i) for i in range(10)],
    }
    assert listed[1]["dataset"] == "mnist-subset" and listed[1]["test_accuracy"] is None
    health = multi.get("/health").json()
    assert health["name"] == "lenet5" and health["models"] == ["lenet5", "lenet5-1998", "nin-small"]
    files = {"file": ("seven.png", seven_png, "image/png")}
    assert multi.post("/predict", files=files).json()["name"] == "lenet5"  # the first is the default
    r = multi.post("/predict?model=lenet5-1998", files=files).json()
    assert r["name"] == r["model"] == "lenet5-1998"
    for path in ("/predict", "/explain"):
        r = multi.post(f"{path}?model=lenet6", files=files)
        assert r.status_code == 404 and r.json() == {
            "code": "unknown_model",
            "detail": "unknown model 'lenet6'; served models: lenet5, lenet5-1998, nin-small",
        }


def test_served_names_must_differ(predictor):
    with pytest.raises(LenetlabError, match="two served models are named 'a'"):
        create_app([ServedModel("a", predictor), ServedModel("a", predictor)])
    with pytest.raises(LenetlabError, match="nothing to serve"):
        create_app([])


def test_onnx_model_predicts_but_explain_says_it_needs_torch(onnx_model, predictor, seven_png):
    onnx = ServedModel("onnx", load_predictor(onnx=onnx_model[0]))
    with TestClient(create_app([onnx, ServedModel("torch", predictor)])) as c:
        files = {"file": ("seven.png", seven_png, "image/png")}
        assert c.post("/predict", files=files).json()["digit"] == 7
        r = c.post("/explain", files=files)
        assert r.status_code == 501 and r.json()["code"] == "explain_needs_torch"
        assert "needs the torch backend" in r.json()["detail"] and "\n" not in r.json()["detail"]
        assert [m["explain"] for m in c.get("/models").json()] == [False, True]
        assert c.post("/explain?model=torch", files=files).status_code == 200


def test_explain_is_in_the_openapi_schema_and_the_docs(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/explain"]["post"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ExplainResponse")
    assert {"400", "404", "413", "415", "422", "501", "503"} <= set(op["responses"])
    assert set(op["requestBody"]["content"]) == set(spec["paths"]["/predict"]["post"]["requestBody"]["content"])
    fields = spec["components"]["schemas"]["ExplainResponse"]["properties"]
    assert {"layers", "kernels", "saliency", "rbf_distances", "digit", "probabilities"} <= set(fields)
    assert "/models" in spec["paths"]
    docs = client.get("/docs").text
    for text in ("POST", "/explain", "/predict", "/models", "ExplainResponse", "Activation", "saliency"):
        assert text in docs


def test_hooks_record_only_their_own_thread(predictor):
    """/predict requests running the model in other threads pass through the explainer's hooks untouched,
    and concurrent explanations do not mix their layers."""
    explainer = Explainer(TorchPredictor())
    x = torch.zeros(1, 28, 28, dtype=torch.uint8)
    x[0, 4:24, 12:16] = 255
    reference = explainer.explain(x)
    errors = []

    def work(i: int) -> None:
        for _ in range(10):
            if i % 2:
                got = explainer.explain(x)
                if [layer["values"] for layer in got["layers"]] != [layer["values"] for layer in reference["layers"]]:
                    errors.append("explanations differ")
            else:
                explainer.predictor.predict_proba(x.unsqueeze(0))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_layer_modules_of_the_zoo():
    from lenetlab.models import create

    assert [n for n, _ in layer_modules(create("googlenet-small"))] == ["b1", "b2", "b3", "b4", "b5", "fc"]
    names = [n for n, _ in layer_modules(create("alexnet-small"))]
    assert names[0] == "features.0" and names[-1] == "classifier.6" and len(names) == 20
