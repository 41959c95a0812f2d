"""What every layer of a served model sees: the activations behind ``POST /explain`` and the page.

:class:`Explainer` wraps a :class:`~lenetlab.inference.predictor.TorchPredictor`. Its layers are the
model's own named modules: the top-level children in the order the forward pass calls them
(``C1, S2, C3, S4, C5, F6, output`` for the LeNet family, d2l's blocks ``b1 ... b5`` for GoogLeNet and
ResNet); a model whose top level is one or two ``nn.Sequential`` containers (NiN's ``net``, AlexNet's
``features`` and ``classifier``) is read one level down (``net.0``, ``net.1``...). A parameter-free
element-wise module (ReLU, sigmoid, the 1998 scaled tanh, dropout), or a module called a second time in
one pass (LeNet-5 1998's shared ``act``), is not a layer of its own: its output replaces the output of
the layer called just before, shown "after" that activation. ``Flatten`` only reshapes and is left out.

The forward hooks (a :class:`~lenetlab.models.trace.Tracer`) are installed once, when the explainer is
built, and record only in the thread running :meth:`Explainer.explain`: ``/predict`` requests running
the same model in other threads pass through them untouched. The kernels shown are those of
:func:`~lenetlab.models.trace.first_conv`, found once at build time on a blank input.

One forward pass gives the prediction and every activation; one backward pass
(:func:`torch.autograd.grad`, which accumulates nothing into the shared weights' ``.grad``) gives the
input-gradient saliency: ``|d score[predicted] / d pixel|`` over the 28x28 image, the largest over
channels, divided by its maximum.
"""

import time

import numpy as np
import torch
import torch.nn as nn

from lenetlab.data.common import to_channels
from lenetlab.data.transforms import prepare
from lenetlab.errors import LenetlabError
from lenetlab.inference.predictor import TorchPredictor, softmax
from lenetlab.models.lenet1998 import EuclideanRBF, ScaledTanh
from lenetlab.models.trace import Tracer, first_conv

#: Parameter-free element-wise modules: shown as the activation of the layer before them.
ELEMENTWISE = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Dropout,
    nn.Identity,
    ScaledTanh,
)
#: Modules that only reshape: not layers.
RESHAPE = (nn.Flatten, nn.Unflatten)
DIGITS = 4  # decimals of the values sent to the client: plenty for a grey level, a quarter of the JSON


def layer_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs whose outputs are shown, in registration order (see the module
    docstring): the top-level children, or one level down for one or two ``nn.Sequential`` containers."""
    top = list(model.named_children())
    if 1 <= len(top) <= 2 and all(isinstance(m, nn.Sequential) for _, m in top):
        top = [(f"{name}.{sub}", m) for name, seq in top for sub, m in seq.named_children()]
    return [(name, m) for name, m in top if not isinstance(m, RESHAPE)]


def _values(t: torch.Tensor) -> list:
    # float64 before rounding: float32 0.1234 would print as 0.12340000271797180
    return np.round(t.detach().cpu().double().numpy(), DIGITS).tolist()


def _rounded(x: float) -> float:
    return round(float(x), DIGITS)


def _tensor(t: torch.Tensor) -> dict:
    """``t`` as the answer shows it: its shape, range and values."""
    return {"shape": list(t.shape), "min": _rounded(t.min()), "max": _rounded(t.max()), "values": _values(t)}


class Explainer:
    """Activations, first-layer kernels and input-gradient saliency of a torch model (see the module docstring)."""

    def __init__(self, predictor: TorchPredictor) -> None:
        self.predictor = predictor
        self.model = predictor.model
        self.layers = layer_modules(self.model)
        self.rbf = any(isinstance(m, EuclideanRBF) for _, m in self.layers)
        spec = predictor.spec
        try:
            probe = torch.zeros(1, spec.channels, spec.size, spec.size, device=predictor.device)
            self.first_conv: tuple[str, nn.Module] | None = first_conv(self.model, probe)[:2]
        except LenetlabError:
            self.first_conv = None
        self.tracer = Tracer(self.layers)

    def _group(self, records: list) -> list[dict]:
        """Recorded ``(name, module, output)`` in call order -> layers, activations folded into the layer before."""
        layers: list[dict] = []
        seen: set[str] = set()
        for name, module, out in records:
            again = name in seen
            seen.add(name)
            if layers and (again or isinstance(module, ELEMENTWISE)):
                layers[-1]["activation"] = type(module).__name__
                layers[-1]["out"] = out
                continue
            layers.append({"name": name, "type": type(module).__name__, "activation": None, "out": out})
        return layers

    def _kernels(self) -> dict | None:
        """The first convolution's weights ``[out, in, kh, kw]`` as the answer shows them (None without one)."""
        if self.first_conv is None:
            return None
        return {"layer": self.first_conv[0], **_tensor(self.first_conv[1].weight.detach())}

    def explain(self, x: torch.Tensor) -> dict:
        """Run the model once on ``x`` (``uint8 [1, 28, 28]``, as :func:`preprocess_image` returns it).

        Returns ``{"probabilities": float64 [K], "layers": [...], "kernels": {...} | None,
        "saliency": [28][28], "rbf_distances": [K] | None, "timing_ms": {...}}``; each layer is
        ``{name, type, activation, kind: "maps" | "vector", shape, min, max, values}`` with ``shape``
        ``[C, H, W]`` (maps) or ``[K]`` (vector) for the one image and ``values`` nested lists of that shape.
        """
        p, spec = self.predictor, self.predictor.spec
        t0 = time.perf_counter()
        image = to_channels(x.unsqueeze(0), spec.channels).float().requires_grad_()  # [1, C, 28, 28], 0..255
        inputs = prepare(image, spec).to(p.device)
        with self.tracer.record() as calls, torch.enable_grad():
            scores = self.model(inputs)  # [1, K]: the one forward pass
        records = [(c.name, c.module, c.output) for c in calls if isinstance(c.output, torch.Tensor)]
        t1 = time.perf_counter()
        probs = softmax(scores.detach().float().cpu().numpy().astype(np.float64))[0]
        best = int(np.argmax(probs))
        (grad,) = torch.autograd.grad(scores[0, best], image)  # [1, C, 28, 28]
        sal = grad[0].abs().amax(0)  # [28, 28]
        sal = sal / sal.max() if float(sal.max()) > 0 else sal
        t2 = time.perf_counter()
        layers = []
        for layer in self._group(records):
            out = layer.pop("out").detach()[0]
            kind = "maps" if out.dim() == 3 else "vector"
            out = out if kind == "maps" else out.reshape(-1)
            layers.append({**layer, "kind": kind, **_tensor(out)})
        kernels = self._kernels()
        rbf = _values(-scores.detach()[0]) if self.rbf else None  # forward returns -||x - w_i||²
        t3 = time.perf_counter()
        return {
            "probabilities": probs,
            "layers": layers,
            "kernels": kernels,
            "saliency": _values(sal),
            "rbf_distances": rbf,
            "timing_ms": {
                "forward": round(1e3 * (t1 - t0), 3),
                "saliency": round(1e3 * (t2 - t1), 3),
                "package": round(1e3 * (t3 - t2), 3),
            },
        }
