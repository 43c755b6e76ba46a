"""Compression: pruning, int8 quantization, distillation, honest measurements, a YAML workflow.

Every function that compresses works on a **deep copy**: the baseline you pass in is never changed
(the source document compresses ``self.model`` in place and so destroys its own baseline).

* Pruning: :func:`prune_global_l1` keeps the masks (``weight = weight_orig * weight_mask``), so an
  ordinary optimizer fine-tunes the surviving weights while the pruned ones stay exactly zero;
  :func:`make_permanent` applies ``prune.remove`` on a copy, for saving and export only.
* Quantization: :func:`quantize_static` is real int8 for convolutions *and* ``fc`` (eager-mode static
  quantization, ``x86`` backend). ``quantize_dynamic`` and torchao's ``quantize_`` only touch
  ``Linear`` layers (on ResNet-18 just ``fc``). A converted int8 model has no trainable float
  weights: the recovery path is quantization-aware training, :func:`prepare_qat` then
  :func:`convert_qat`. All of ``torch.ao.quantization`` (deprecated in favour of torchao, which has no
  eager int8 convolution path yet) is used only in this module, so a move to torchao is one change.
* Measurements: :func:`count_nonzero`, :func:`sparsity`, :func:`serialized_size` (bytes of the
  state dict, zlib-compressed so that zeros show up), :func:`latency_ms`, :func:`measure`.
* Workflow: :func:`load_config` (YAML -> validated dataclasses) and :func:`run_workflow`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import statistics
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils import prune
from torchvision.models.resnet import BasicBlock

logger = logging.getLogger("helpers.compression")
PRUNABLE = (nn.Conv2d, nn.Linear)
BACKEND = "x86"


# ----------------------------------------------------------------------------------------- pruning
def prunable(net: nn.Module) -> list[tuple[nn.Module, str]]:
    """``(module, "weight")`` for every Conv2d and Linear layer (the document's list)."""
    return [(m, "weight") for m in net.modules() if isinstance(m, PRUNABLE)]


def clone(net: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also works on masked (pruned) models, whose ``weight`` attribute is
    computed (``weight_orig * weight_mask``) and cannot be deep-copied by itself."""
    memo: dict[int, Any] = {}
    for m in net.modules():
        for name, _ in m.named_buffers(recurse=False):
            if name.endswith("_mask") and torch.is_tensor(getattr(m, name[:-5], None)):
                w = getattr(m, name[:-5])
                memo[id(w)] = w.detach().clone()
    return copy.deepcopy(net, memo)


def prune_global_l1(net: nn.Module, amount: float) -> nn.Module:
    """A copy of ``net`` with the fraction ``amount`` of all Conv2d/Linear weights with the smallest
    absolute value set to zero (one global threshold). The masks are kept, so fine-tuning keeps
    the pruned weights at zero. ``net`` itself is not changed."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    pruned = clone(net)
    prune.global_unstructured(prunable(pruned), pruning_method=prune.L1Unstructured, amount=amount)
    return pruned


def is_pruned(net: nn.Module) -> bool:
    """Whether some module of ``net`` still carries a pruning mask."""
    return prune.is_pruned(net)


def make_permanent(net: nn.Module) -> nn.Module:
    """A copy with the masks folded into the weights (``prune.remove``): for saving or export, never
    before fine-tuning (the pruned weights would receive gradients and grow back)."""
    out = clone(net)
    for m in out.modules():
        for name in [k[: -len("_mask")] for k, _ in m.named_buffers(recurse=False) if k.endswith("_mask")]:
            prune.remove(m, name)
    return out


def _effective(m: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor a layer actually uses: ``orig * mask`` when masked, dequantized when int8."""
    if hasattr(m, name + "_orig") and hasattr(m, name + "_mask"):
        return (getattr(m, name + "_orig") * getattr(m, name + "_mask")).detach()
    t = getattr(m, name, None)
    if callable(t) and not isinstance(t, nn.Module):  # quantized modules: weight() / bias()
        t = t()
    if t is None or not torch.is_tensor(t):
        return None
    return (t.dequantize() if t.is_quantized else t).detach()


def _weights(net: nn.Module) -> list[torch.Tensor]:
    """Effective weight tensors of every convolution and linear layer (float, masked or int8)."""
    out = []
    for m in net.modules():
        if isinstance(m, PRUNABLE) or _is_quantized_layer(m):
            w = _effective(m, "weight")
            if w is not None:
                out.append(w)
    return out


def _is_quantized_layer(m: nn.Module) -> bool:
    """int8 Conv/Linear (static or dynamic): weights live in packed params, ``weight()`` is a method."""
    mod = type(m).__module__
    return mod.startswith("torch.ao.nn.") and ".quantized" in mod and callable(getattr(m, "weight", None))


def sparsity(net: nn.Module) -> float:
    """Fraction of zeros among the Conv2d/Linear weights (masked, permanent or int8 models)."""
    ws = _weights(net)
    total = sum(w.numel() for w in ws)
    return sum((w == 0).sum().item() for w in ws) / max(total, 1)


def count_nonzero(net: nn.Module) -> int:
    """Non-zero parameters: Conv2d/Linear weights as the layer uses them, plus every other parameter
    (biases, BatchNorm). Unlike ``numel``, this drops when you prune."""
    total = sum(int((w != 0).sum()) for w in _weights(net))
    for m in net.modules():
        if isinstance(m, PRUNABLE) or _is_quantized_layer(m):
            b = _effective(m, "bias")
            total += int((b != 0).sum()) if b is not None else 0
        else:
            total += sum(int((p != 0).sum()) for n, p in m.named_parameters(recurse=False)
                         if not n.endswith("_orig"))
    return total


# ---------------------------------------------------------------------------------- measurements
def serialized_size(net: nn.Module, compress: bool = True) -> int:
    """Bytes of ``torch.save(state_dict)`` (of the permanent model if pruned), zlib-compressed when
    ``compress`` so that zeros take (almost) no room. Works for int8 models too."""
    if any(k.endswith("_mask") for k, _ in net.named_buffers()):
        net = make_permanent(net)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    raw = buf.getvalue()
    return len(zlib.compress(raw, 6)) if compress else len(raw)


def latency_ms(net: nn.Module, example_batch: torch.Tensor, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall-clock time of one forward pass on ``example_batch`` (CPU, inference mode), in ms."""
    net = net.eval()
    x = example_batch.cpu()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            net(x)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def accuracy(net: nn.Module, test_iter: Iterable) -> float:
    """Test accuracy (the course's :func:`helpers.training.evaluate`)."""
    from helpers.training import evaluate

    return evaluate(net, test_iter)[1]


def measure(net: nn.Module, test_iter: Iterable, example_batch: torch.Tensor, **extra: Any) -> dict[str, Any]:
    """One comparison row: accuracy, nonzero params, sparsity, size in bytes (zlib), latency (ms)."""
    net = net.cpu()
    return {**extra, "accuracy": accuracy(net, test_iter), "nonzero": count_nonzero(net),
            "sparsity": sparsity(net), "size_bytes": serialized_size(net),
            "latency_ms": latency_ms(net, example_batch)}


def format_table(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None) -> str:
    """A compact text table; ratios are relative to ``baseline`` (default: the first row)."""
    base = baseline or rows[0]
    lines = [f"{'method':<28}{'acc':>7}{'nonzero':>10}{'sparsity':>9}{'KB':>8}{'size x':>8}{'ms':>7}"]
    for r in rows:
        lines.append(f"{str(r.get('method', '?')):<28}{r['accuracy']:>7.3f}{r['nonzero']:>10,}"
                     f"{r['sparsity']:>9.2f}{r['size_bytes'] / 1024:>8.1f}"
                     f"{base['size_bytes'] / r['size_bytes']:>7.1f}x{r['latency_ms']:>7.2f}")
    return "\n".join(lines)


def print_table(rows: Sequence[Mapping[str, Any]], baseline: Mapping[str, Any] | None = None) -> None:
    print(format_table(rows, baseline))


# ------------------------------------------------------------------------------------ quantization
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch.ao.quantization warns that it is deprecated in favour of torchao (whose ``quantize_``
    has no int8 path for convolutions); the warning is silenced here, and only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=".*must run observer before calling calculate_qparams.*")
        yield


class QuantReady(nn.Module):
    """``quant -> net -> dequant``; attribute access falls through to ``net`` (``conv1``, ``fc``,
    layer groups ...), so the course's helpers keep working on the wrapped model."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant, self.net, self.dequant = QuantStub(), net, DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.net(self.quant(x)))

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("net"), name)


def _quantizable(net: nn.Module, qat: bool) -> QuantReady:
    """Deep copy, BasicBlocks -> torchvision's QuantizableBasicBlock (weights copied), stubs added,
    conv+bn(+relu) fused. Works for torchvision's resnet18 and MiniResNet (same module names)."""
    from torchvision.models.quantization.resnet import QuantizableBasicBlock

    net = make_permanent(net)  # a deep copy, masks folded in
    for name, layer in net.named_children():
        if not isinstance(layer, nn.Sequential):
            continue
        for i, block in enumerate(layer):
            if type(block) is BasicBlock:
                qb = QuantizableBasicBlock(block.conv1.in_channels, block.conv1.out_channels, block.stride,
                                           copy.deepcopy(block.downsample))
                qb.load_state_dict(block.state_dict())
                layer[i] = qb
            elif not isinstance(block, QuantizableBasicBlock):
                raise TypeError(f"{name}[{i}] is a {type(block).__name__}; quantize_static expects "
                                "ResNet BasicBlocks (torchvision resnet18 or helpers.models.MiniResNet)")
    net.train(qat)
    fuse = torch.ao.quantization.fuse_modules_qat if qat else torch.ao.quantization.fuse_modules
    fuse(net, ["conv1", "bn1", "relu"], inplace=True)
    for m in net.modules():
        if isinstance(m, QuantizableBasicBlock):
            m.fuse_model(is_qat=qat)
    return QuantReady(net).train(qat)


def quantize_static(net: nn.Module, calibration_loader: Iterable, num_batches: int = 4) -> nn.Module:
    """Real int8 model (convolutions and ``fc``): eager static quantization on a copy of ``net``
    (fuse, ``x86`` qconfig, calibrate on ``num_batches`` batches, convert). CPU inference only."""
    with _quiet():
        torch.backends.quantized.engine = BACKEND
        q = _quantizable(net.cpu(), qat=False).eval()
        q.qconfig = torch.ao.quantization.get_default_qconfig(BACKEND)
        torch.ao.quantization.prepare(q, inplace=True)
        with torch.inference_mode():
            for i, (X, _) in enumerate(calibration_loader):
                if i >= num_batches:
                    break
                q(X.cpu())
        return torch.ao.quantization.convert(q, inplace=True)


def prepare_qat(net: nn.Module) -> nn.Module:
    """A copy of ``net`` ready for quantization-aware fine-tuning: float weights, fake int8
    quantization in the forward pass. Fine-tune it like any model, then :func:`convert_qat`.

    A pruned ``net`` keeps its masks: they are put back on the fused QAT layers (same names), so
    QAT fine-tuning cannot regrow pruned weights (BatchNorm folding scales a zero to zero)."""
    masks = {name: m.weight_mask.detach().clone() for name, m in net.named_modules()
             if hasattr(m, "weight_mask") and hasattr(m, "weight_orig")}
    with _quiet():
        torch.backends.quantized.engine = BACKEND
        q = _quantizable(net.cpu(), qat=True)
        q.qconfig = torch.ao.quantization.get_default_qat_qconfig(BACKEND)
        q = torch.ao.quantization.prepare_qat(q, inplace=True)
    for name, mask in masks.items():
        prune.custom_from_mask(q.net.get_submodule(name), "weight", mask)
    return q


def convert_qat(net: nn.Module) -> nn.Module:
    """The int8 model of a QAT-fine-tuned copy (``net`` itself is not changed; masks are folded
    into the weights first, so pruned weights are exact int8 zeros)."""
    with _quiet():
        return torch.ao.quantization.convert(make_permanent(net).cpu().eval(), inplace=True)


def quantize_dynamic(net: nn.Module) -> nn.Module:
    """The document's ``quantize_dynamic(model, {nn.Linear, nn.Conv2d}, dtype=torch.qint8)``, on a
    copy: only ``Linear`` layers are converted; ``Conv2d`` is not in ``quantize_dynamic``'s default
    module mapping, so it is skipped silently."""
    with _quiet():
        return torch.ao.quantization.quantize_dynamic(clone(net).cpu().eval(), {nn.Linear, nn.Conv2d},
                                                      dtype=torch.qint8)


def quantized_layers(net: nn.Module) -> dict[str, str]:
    """``{module name: class}`` of every quantized layer (to see what a quantization API changed)."""
    return {n: type(m).__name__ for n, m in net.named_modules() if _is_quantized_layer(m)}


# ---------------------------------------------------------------------------------------- config
METHODS = ("pruning", "quantization", "distillation")


class ConfigError(ValueError):
    """A workflow configuration is invalid; the message says where and what to change."""


@dataclass
class Finetuning:
    epochs: int = 0
    lr: float = 0.01


@dataclass
class Step:
    method: str
    sparsity: float | None = None  # pruning
    calibration_batches: int = 4  # quantization
    temperature: float = 4.0  # distillation
    alpha: float = 0.5
    student_widths: tuple[int, int, int, int] | None = None  # None: the previous step's model
    finetuning: Finetuning = field(default_factory=Finetuning)


@dataclass
class Experiment:
    name: str
    steps: list[Step]


@dataclass
class WorkflowConfig:
    experiments: list[Experiment]
    seed: int = 0


_PARAMS = {"pruning": {"sparsity"}, "quantization": {"dtype", "calibration_batches"},
           "distillation": {"temperature", "alpha", "student_widths"}}


def _num(value: Any, where: str, kind: type = float) -> Any:
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{where}: expected a{'n integer' if kind is int else ' number'}, got "
                          f"{value!r} ({type(value).__name__})")
    return kind(value)


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping (key: value lines), got {type(value).__name__}")
    return dict(value)


def _step(raw: Any, where: str, previous: list[Step]) -> Step:
    raw = _mapping(raw, where)
    unknown = set(raw) - {"method", "params", "finetuning", "name"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; use method, params, finetuning")
    if "method" not in raw:
        raise ConfigError(f"{where}: missing key 'method' (one of {list(METHODS)})")
    method = raw["method"]
    if method not in METHODS:
        raise ConfigError(f"{where}.method: unknown method {method!r}; use one of {list(METHODS)}")
    if previous and previous[-1].method == "quantization":
        raise ConfigError(f"{where}: nothing can follow quantization (an int8 model has no float "
                          "weights to prune or train); put quantization last")
    params = _mapping(raw.get("params"), f"{where}.params")
    unknown = set(params) - _PARAMS[method]
    if unknown:
        raise ConfigError(f"{where}.params: unknown keys {sorted(unknown)} for {method}; "
                          f"use {sorted(_PARAMS[method])}")
    step = Step(method)
    if method == "pruning":
        if "sparsity" not in params:
            raise ConfigError(f"{where}.params: missing key 'sparsity' (fraction of weights to remove, "
                              "e.g. 0.5)")
        step.sparsity = _num(params["sparsity"], f"{where}.params.sparsity")
        if not 0 < step.sparsity < 1:
            raise ConfigError(f"{where}.params.sparsity: {step.sparsity} is not in (0, 1); it is the "
                              "fraction of weights set to zero, e.g. 0.5")
    elif method == "quantization":
        if params.get("dtype", "qint8") != "qint8":
            raise ConfigError(f"{where}.params.dtype: only 'qint8' (static int8) is supported, got "
                              f"{params['dtype']!r}")
        step.calibration_batches = _num(params.get("calibration_batches", 4),
                                        f"{where}.params.calibration_batches", int)
    else:
        step.temperature = _num(params.get("temperature", 4.0), f"{where}.params.temperature")
        step.alpha = _num(params.get("alpha", 0.5), f"{where}.params.alpha")
        if step.temperature <= 0:
            raise ConfigError(f"{where}.params.temperature: must be > 0, got {step.temperature}")
        if not 0 <= step.alpha <= 1:
            raise ConfigError(f"{where}.params.alpha: must be in [0, 1], got {step.alpha}")
        widths = params.get("student_widths")
        if widths is not None:
            if not isinstance(widths, (list, tuple)) or len(widths) != 4:
                raise ConfigError(f"{where}.params.student_widths: expected a list of 4 integers, "
                                  f"e.g. [8, 16, 32, 64], got {widths!r}")
            step.student_widths = tuple(_num(w, f"{where}.params.student_widths", int) for w in widths)
        elif not previous:
            raise ConfigError(f"{where}: distillation needs a student: give params.student_widths, or "
                              "put it after another step (the student is then that step's model)")
    ft = _mapping(raw.get("finetuning"), f"{where}.finetuning")
    unknown = set(ft) - {"epochs", "lr"}
    if unknown:
        raise ConfigError(f"{where}.finetuning: unknown keys {sorted(unknown)}; use epochs, lr")
    step.finetuning = Finetuning(_num(ft.get("epochs", 0), f"{where}.finetuning.epochs", int),
                                 _num(ft.get("lr", 0.01), f"{where}.finetuning.lr"))
    if step.finetuning.epochs < 0 or step.finetuning.lr <= 0:
        raise ConfigError(f"{where}.finetuning: need epochs >= 0 and lr > 0, got {ft}")
    if method == "distillation" and step.finetuning.epochs == 0:
        raise ConfigError(f"{where}.finetuning.epochs: distillation trains the student, give epochs >= 1")
    return step


def load_config(source: str | Path | Mapping) -> WorkflowConfig:
    """Parse and validate a workflow config: a path to a YAML file, YAML text, or a dict.

    ``compression`` is a list of entries; an entry is one step (``method``, ``params``,
    ``finetuning``) or a named chain ``{name: ..., steps: [step, step, ...]}`` applied in order.
    Raises :class:`ConfigError` naming the entry and the fix."""
    import yaml

    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        text = str(source)
        if "\n" not in text and Path(text).suffix in (".yaml", ".yml"):
            if not Path(text).exists():
                raise ConfigError(f"config file {text} does not exist")
            text = Path(text).read_text()
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"not valid YAML: {err}") from err
    raw = _mapping(raw, "config")
    unknown = set(raw) - {"compression", "seed", "model", "data"}
    if unknown:
        raise ConfigError(f"config: unknown top-level keys {sorted(unknown)}; use compression (and seed)")
    entries = raw.get("compression")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("config: missing or empty 'compression' list (one '- method: ...' per entry)")
    experiments, names = [], set()
    for i, entry in enumerate(entries):
        where = f"compression[{i}]"
        entry = _mapping(entry, where)
        if "steps" in entry:
            if not isinstance(entry["steps"], list) or not entry["steps"]:
                raise ConfigError(f"{where}.steps: expected a non-empty list of steps")
            steps: list[Step] = []
            for j, s in enumerate(entry["steps"]):
                steps.append(_step(s, f"{where}.steps[{j}]", steps))
            name = entry.get("name") or "+".join(s.method for s in steps)
        else:
            steps = [_step(entry, where, [])]
            name = entry.get("name") or _label(steps[0])
        if name in names:
            raise ConfigError(f"{where}: duplicate name {name!r}; give each entry a unique 'name'")
        names.add(name)
        experiments.append(Experiment(str(name), steps))
    return WorkflowConfig(experiments, _num(raw.get("seed", 0), "config.seed", int))


def _label(step: Step) -> str:
    if step.method == "pruning":
        return f"pruning {step.sparsity:.0%}"
    return {"quantization": "int8", "distillation": "distillation"}[step.method]


# -------------------------------------------------------------------------------------- workflow
def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _finetune(net: nn.Module, train_iter: Iterable, test_iter: Iterable, epochs: int, lr: float,
              loss: nn.Module | None = None) -> nn.Module:
    from helpers.training import train

    if epochs > 0:
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
        train(net, train_iter, test_iter, opt, epochs, loss=loss, progress=False)
    return net


def apply_step(step: Step, net: nn.Module, baseline: nn.Module, train_iter: Iterable,
               test_iter: Iterable) -> nn.Module:
    """One configured step on a copy of ``net`` (``baseline`` is the distillation teacher)."""
    from helpers.models import MiniResNet
    from helpers.training import DistillationLoss

    ft = step.finetuning
    if step.method == "pruning":
        out = _finetune(prune_global_l1(net, step.sparsity), train_iter, test_iter, ft.epochs, ft.lr)
    elif step.method == "quantization":
        if ft.epochs > 0:
            out = convert_qat(_finetune(prepare_qat(net), train_iter, test_iter, ft.epochs, ft.lr))
        else:
            out = quantize_static(net, train_iter, step.calibration_batches)
    else:
        student = (MiniResNet(baseline.fc.out_features, step.student_widths) if step.student_widths
                   else clone(net))
        teacher = clone(baseline).eval()
        out = _finetune(student, train_iter, test_iter, ft.epochs, ft.lr,
                        DistillationLoss(teacher, step.temperature, step.alpha))
    logger.info("  %s done: sparsity %.3f, nonzero %d", step.method, sparsity(out), count_nonzero(out))
    return out


def run_workflow(config: WorkflowConfig, baseline: nn.Module, train_iter: Iterable, test_iter: Iterable,
                 profile: Any = None, example_batch: torch.Tensor | None = None,
                 keep_models: dict[str, nn.Module] | None = None) -> list[dict[str, Any]]:
    """Measure the baseline, then run every experiment of ``config`` on a **copy** of it (steps in
    order, each with its fine-tuning) and measure the result. Returns one row per model, baseline
    first. ``baseline`` is checked to be unchanged at the end. ``keep_models`` (a dict) receives
    the compressed models by name. Progress is logged on the ``helpers.compression`` logger."""
    from helpers.training import seed_everything

    if example_batch is None:
        example_batch = next(iter(test_iter))[0][:8]
    baseline = baseline.cpu()
    before, was_training = _state(baseline), baseline.training
    logger.info("baseline: measuring")
    rows = [measure(baseline, test_iter, example_batch, method="baseline")]
    logger.info("baseline: accuracy %.3f, %d bytes", rows[0]["accuracy"], rows[0]["size_bytes"])
    for exp in config.experiments:
        seed_everything(config.seed)
        logger.info("%s: %d step(s)", exp.name, len(exp.steps))
        start, net = time.perf_counter(), baseline
        for step in exp.steps:
            net = apply_step(step, net, baseline, train_iter, test_iter)
        row = measure(net, test_iter, example_batch, method=exp.name,
                      seconds=time.perf_counter() - start)
        logger.info("%s: accuracy %.3f, sparsity %.3f, %d bytes, %.2f ms", exp.name, row["accuracy"],
                    row["sparsity"], row["size_bytes"], row["latency_ms"])
        rows.append(row)
        if keep_models is not None:
            keep_models[exp.name] = net
    after = baseline.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), \
        "run_workflow changed the baseline: a compression step worked in place"
    baseline.train(was_training)
    return rows
