"""Grading support: small, fast fixtures and checks shared by visible and hidden tests.

Tests in the notebooks must run in a second or two, so they use :func:`tiny_net` (same module
names as ResNet-18, a few thousand parameters) and :func:`tiny_loader` rather than real data.
"""
from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.models import MiniResNet


def force_fast_profile() -> None:
    """Autograding always runs the fast profile (called by ``nbgrader_config.py``)."""
    os.environ["COURSE_PROFILE"] = "fast"


def tiny_net(num_classes: int = 2, seed: int = 0) -> nn.Module:
    """A tiny ResNet with torchvision ResNet-18's module names, for quick checks.

    Its layer2 downsample is a 1x1 stride-2 convolution with 4 input channels: the shape whose NHWC
    backward corrupts memory in oneDNN's AVX2 kernels (uxlfoundation/oneDNN#6035). The widths stay
    (hidden tests count its parameters); :func:`helpers.training.train` keeps CPU batches NCHW, and
    ``tests/test_isa.py`` runs this net through the course's path on the AVX2 kernels."""
    torch.manual_seed(seed)
    return MiniResNet(num_classes, widths=(4, 8, 8, 16))


def tiny_loader(n: int = 32, num_classes: int = 2, size: int = 16, batch_size: int = 8, seed: int = 0) -> DataLoader:
    """A random, learnable data set: class k has a bright square in quadrant k."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    X = torch.randn(n, 3, size, size, generator=g) * 0.3
    h = size // 2
    for i, k in enumerate(y.tolist()):
        r, c = divmod(k % 4, 2)
        X[i, :, r * h:(r + 1) * h, c * h:(c + 1) * h] += 1.5
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=False)


def trainable_names(net: nn.Module) -> set[str]:
    """Names of the parameters with ``requires_grad``."""
    return {n for n, p in net.named_parameters() if p.requires_grad}


def optimizer_param_ids(optimizer: torch.optim.Optimizer) -> set[int]:
    """``id`` of every parameter an optimizer knows about (any group)."""
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def assert_close(actual: float, expected: float, tol: float = 1e-6, what: str = "value") -> None:
    """Assert with a message a student can act on."""
    assert abs(actual - expected) <= tol, f"{what}: expected {expected!r}, got {actual!r}"
