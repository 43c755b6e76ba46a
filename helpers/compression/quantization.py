"""int8: eager static quantization (convolutions and fc), QAT that keeps pruning masks, dynamic
quantization (Linear only). ``torch.ao.quantization`` is used only here."""
from __future__ import annotations

import contextlib
import platform
import warnings
from typing import Any, Iterable, Iterator

import torch
from torch import nn
from torch.nn.utils import prune
from torchvision.models.resnet import BasicBlock

from helpers.compression.pruning import _is_quantized_layer, clone, make_permanent



def quantization_engine(machine: str | None = None, engines: list[str] | None = None) -> str:
    """The int8 engine of this platform: ``x86`` on x86-64 (fbgemm + oneDNN), ``qnnpack`` on ARM
    (Apple silicon, Linux aarch64), else the first engine this PyTorch build supports. int8 kernels
    run on the CPU only, whatever ``profile.device`` is. ``machine`` / ``engines`` default to this
    machine's (``platform.machine()``, ``torch.backends.quantized.supported_engines``)."""
    if engines is None:
        engines = list(torch.backends.quantized.supported_engines)
    engines = [e for e in engines if e != "none"]
    arm = (machine or platform.machine()).lower().startswith(("arm", "aarch"))
    for want in (("qnnpack",) if arm else ("x86", "fbgemm", "onednn")):
        if want in engines:
            return want
    if not engines:
        raise RuntimeError("this PyTorch build has no quantized engine: int8 quantization is unavailable")
    return engines[0]


BACKEND = quantization_engine()  # kept for compatibility; the functions below ask again each call


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
                qb = QuantizableBasicBlock(block.conv1.in_channels, block.conv2.out_channels, block.stride,
                                           block.downsample)
                # the block's own layers (a copy already): their widths may differ (prune_channels)
                qb.conv1, qb.bn1, qb.conv2, qb.bn2 = block.conv1, block.bn1, block.conv2, block.bn2
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
    """Real int8 model (convolutions and ``fc``): eager static quantization on a CPU copy of ``net``
    (fuse, the platform's qconfig (:func:`quantization_engine`), calibrate on ``num_batches``
    batches, convert). int8 runs on the CPU only: the result is a CPU model, whatever device
    ``net`` is on (``net`` itself is neither changed nor moved)."""
    with _quiet():
        engine = quantization_engine()
        torch.backends.quantized.engine = engine
        q = _quantizable(net, qat=False).cpu().eval()
        q.qconfig = torch.ao.quantization.get_default_qconfig(engine)
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
    QAT fine-tuning cannot regrow pruned weights (BatchNorm folding scales a zero to zero).
    The copy is on ``net``'s device (QAT fine-tuning runs on a GPU too); :func:`convert_qat` then
    gives a CPU int8 model. ``net`` itself is neither changed nor moved."""
    masks = {name: m.weight_mask.detach().clone() for name, m in net.named_modules()
             if hasattr(m, "weight_mask") and hasattr(m, "weight_orig")}
    with _quiet():
        engine = quantization_engine()
        torch.backends.quantized.engine = engine
        device = next((p.device for p in net.parameters()), torch.device("cpu"))
        q = _quantizable(net, qat=True)
        q.qconfig = torch.ao.quantization.get_default_qat_qconfig(engine)
        q = torch.ao.quantization.prepare_qat(q, inplace=True).to(device)
    for name, mask in masks.items():
        prune.custom_from_mask(q.net.get_submodule(name), "weight", mask)
    return q


def convert_qat(net: nn.Module) -> nn.Module:
    """The int8 model (on the CPU: int8 runs there only) of a QAT-fine-tuned copy (``net`` itself is
    not changed; masks are folded into the weights first, so pruned weights are exact int8 zeros)."""
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


# --- the arithmetic of affine int8 quantization (what the observers and kernels above compute) ---
QMIN, QMAX = -128, 127  # torch.qint8


def affine_qparams(x: torch.Tensor) -> tuple[float, int]:
    """Per-tensor affine int8 parameters of ``x``: the range ``[min(x, 0), max(x, 0)]`` (it always
    contains 0, so that 0 is exactly representable: zero padding, ReLU outputs, pruned weights) is
    mapped onto ``[-128, 127]``: ``scale = (hi - lo) / 255`` (at least float32's eps),
    ``zero_point = -128 - round(lo / scale)``, clamped to ``[-128, 127]``. As PyTorch's
    ``MinMaxObserver(dtype=torch.qint8)`` computes them."""
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = max((hi - lo) / (QMAX - QMIN), float(torch.finfo(torch.float32).eps))
    zero_point = int(min(max(QMIN - round(lo / scale), QMIN), QMAX))
    return scale, zero_point


def per_channel_qparams(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One :func:`affine_qparams` per output channel (``w[c]``), as tensors shaped ``(C, 1, ..., 1)``
    so that they broadcast against ``w`` in :func:`quantize_affine` / :func:`dequantize_affine`."""
    flat = w.detach().reshape(w.shape[0], -1)
    lo = flat.min(dim=1).values.clamp(max=0.0)
    hi = flat.max(dim=1).values.clamp(min=0.0)
    scale = ((hi - lo) / (QMAX - QMIN)).clamp(min=float(torch.finfo(torch.float32).eps))
    zero_point = (QMIN - torch.round(lo / scale)).clamp(QMIN, QMAX).to(torch.int64)
    shape = (-1,) + (1,) * (w.dim() - 1)
    return scale.reshape(shape), zero_point.reshape(shape)


def quantize_affine(x: torch.Tensor, scale: Any, zero_point: Any) -> torch.Tensor:
    """``clamp(round(x / scale) + zero_point, -128, 127)`` as ``torch.int8`` (clamped *before* the
    cast: casting 200 to int8 wraps around to -56). ``scale`` / ``zero_point``: numbers, or tensors
    that broadcast against ``x`` (per channel)."""
    return torch.clamp(torch.round(x / scale) + zero_point, QMIN, QMAX).to(torch.int8)


def dequantize_affine(q: torch.Tensor, scale: Any, zero_point: Any) -> torch.Tensor:
    """``(q - zero_point) * scale`` in float32: the value an int8 number stands for."""
    return (q.to(torch.float32) - zero_point) * scale
