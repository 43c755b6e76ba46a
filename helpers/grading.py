"""Grading support: small, fast fixtures and checks shared by visible and hidden tests.

Tests in the notebooks must run in a second or two, so they use :func:`tiny_net` (same module
names as ResNet-18, a few thousand parameters) and :func:`tiny_loader` rather than real data.
"""
from __future__ import annotations

import functools
import os
import sys
from types import ModuleType
from typing import Any, Callable, Iterable

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


def or_reference(student: Callable[..., Any], reference: Callable[..., Any]) -> Callable[..., Any]:
    """``student`` for the lesson cells that use an exercise's function, or ``reference`` when it raises.

    A stub (``raise NotImplementedError()``) or a broken answer must not break the experiments that
    later sections and written questions need: the call falls back to the course's reference helper
    and says so once. The exercise itself is still graded on ``student`` by its test cell."""
    warned = False

    @functools.wraps(student)
    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal warned
        try:
            return student(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any failure of the student's code falls back
            if not warned:
                print(f"[course] {student.__name__} raised {type(err).__name__}: {err}; this lesson uses "
                      f"the reference {reference.__module__}.{reference.__name__} instead "
                      "(your exercise is still graded on your function)")
                warned = True
            return reference(*args, **kwargs)

    return call


class blocked:
    """A context manager (reusable) under which calling any of ``functions`` raises
    ``AssertionError(hint)``: for hidden tests of an exercise that is about writing what a course
    helper already does. Every reference to a function in a loaded module is replaced while the block
    lasts: the helper's own module, its re-exports (``C.count_nonzero``, ``C.workflow.count_nonzero``,
    ``helpers.compression.measure.count_nonzero``) and the notebook's own imports and aliases
    (``from helpers.compression import count_nonzero as cnz`` in a student's cell), so a student
    cannot reach the helper by another name. Everything is restored on exit, also after an error::

        with grading.blocked([models.param_groups], "build the groups yourself: models.param_groups is not allowed"):
            groups = finetune_param_groups(net, lr)
    """

    def __init__(self, functions: Iterable[Callable[..., Any]], hint: str) -> None:
        self.functions = list(functions)
        self.hint = hint
        self._saved: list[tuple[Any, str, Any]] = []

    def _stub(self, function: Callable[..., Any]) -> Callable[..., Any]:
        hint = self.hint

        @functools.wraps(function)
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(hint)
        return refuse

    def __enter__(self) -> "blocked":
        targets = {id(f): f for f in self.functions}
        stubs = {i: self._stub(f) for i, f in targets.items()}
        namespaces: list[Any] = [m for m in list(sys.modules.values()) if isinstance(m, ModuleType)]
        shell = sys.modules.get("IPython")
        ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
        if ip is not None:  # the notebook's namespace (a dict, not always a module in sys.modules)
            namespaces.append(ip.user_ns)
        seen: set[int] = set()
        for ns in namespaces:
            d = ns if isinstance(ns, dict) else getattr(ns, "__dict__", None)
            if not isinstance(d, dict) or id(d) in seen:
                continue
            seen.add(id(d))
            for name, value in list(d.items()):
                if id(value) in targets:  # targets keeps each function alive: an equal id is that function
                    self._saved.append((d, name, value))
                    d[name] = stubs[id(value)]
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            d, name, value = self._saved.pop()
            d[name] = value
