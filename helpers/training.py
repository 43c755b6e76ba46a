"""The course's one training loop (the role of d2l's ``train_ch13``) and what it needs.

``train`` handles parameter groups with learning-rate multipliers, any scheduler (stepped per
epoch or per batch, ``ReduceLROnPlateau`` included), optional gradient clipping, callbacks such as a
gradual unfreezer, frozen BatchNorm statistics, tqdm progress, a per-epoch history and restoring the
best checkpoint.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  start_factor: float = 0.1, min_factor: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from ``start_factor`` to 1, then cosine decay to ``min_factor``, as one
    ``LambdaLR``: it scales every group's own rate, so discriminative ratios are kept."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return start_factor + (1 - start_factor) * step / warmup_steps
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def lr_trace(make_scheduler: Callable[[torch.optim.Optimizer], Any], steps: int, lr: float = 1.0,
             metrics: Iterable[float] | None = None) -> list[float]:
    """The learning rates a scheduler gives over ``steps`` steps (for plots and checks)."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make_scheduler(opt)
    metrics = list(metrics) if metrics is not None else None
    out = []
    for i in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            sched.step(metrics[i] if metrics else 0.0)
        else:
            sched.step()
    return out


class DistillationLoss(nn.Module):
    """Hinton et al. (2015): ``alpha * CE(student, y) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``.

    The teacher is put in eval mode and run without gradients."""

    needs_inputs = True

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.5) -> None:
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError("need temperature > 0 and 0 <= alpha <= 1")
        self.teacher, self.temperature, self.alpha = teacher.eval(), temperature, alpha

    def train(self, mode: bool = True) -> "DistillationLoss":  # the teacher stays in eval mode
        return self

    def forward(self, student_logits: torch.Tensor, targets: torch.Tensor,
                inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        return distillation_loss(student_logits, teacher_logits, targets, self.temperature, self.alpha)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """The temperature-scaled distillation loss (soft term multiplied by T^2)."""
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.softmax(teacher_logits / t, dim=1),
                    reduction="batchmean") * t * t
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft


class Callback(Protocol):
    def on_epoch_start(self, epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer) -> None: ...


class StageRecorder:
    """A callback that records, at the start of each epoch, the names of the optimizer's groups
    (``name`` key, as :func:`helpers.models.param_groups` sets) whose parameters are all trainable.

    Put it after an unfreezer in ``callbacks``, so that it sees each epoch's stage."""

    def __init__(self) -> None:
        self.stages: list[list[str]] = []

    def on_epoch_start(self, epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.stages.append([g.get("name", str(i)) for i, g in enumerate(optimizer.param_groups)
                            if g["params"] and all(p.requires_grad for p in g["params"])])


@dataclass
class History:
    """One row per epoch: train_loss, train_acc, valid_loss, valid_acc, examples_per_sec, lrs, seconds.

    ``valid_*`` are measured on the held-out iterable passed to :func:`train` (a validation set: the
    test set is for the final report only)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None

    def __getitem__(self, key: str) -> list[Any]:
        return [r[key] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def final(self) -> dict[str, Any]:
        return self.rows[-1]

    @property
    def best_valid_acc(self) -> float:
        return max(self["valid_acc"])

    def __repr__(self) -> str:
        if not self.rows:
            return "History(empty)"
        f = self.final
        return (f"History({len(self)} epochs: loss {f['train_loss']:.3f}, train acc {f['train_acc']:.3f}, "
                f"valid acc {f['valid_acc']:.3f}, {f['examples_per_sec']:.0f} examples/s)")


def _amp(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``amp`` (opt-in), else nothing."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _batch_to(X: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """``X`` on ``device``; 4-D batches NHWC on CUDA when ``channels_last``, NCHW everywhere else.

    Never NHWC on the CPU: oneDNN's AVX2 1x1-convolution backward (a stride-2 downsample whose
    input has fewer channels than its block of 8, as in :func:`helpers.grading.tiny_net`) writes
    past its workspace for NHWC inputs (uxlfoundation/oneDNN#6035): heap corruption on every
    AVX2-only x86 CPU. NCHW (blocked) inputs take another kernel; see ``tests/test_isa.py``."""
    X = X.to(device, non_blocking=True)
    if X.dim() == 4:
        if channels_last and device.type == "cuda":
            X = X.contiguous(memory_format=torch.channels_last)
        elif device.type == "cpu":
            X = X.contiguous()  # NCHW, also when the loader yields channels_last batches
    return X


def _check_device(net: nn.Module, device: torch.device | str | None) -> torch.device:
    """The device to run on: the model's (where its parameters are). An explicit ``device`` must be
    that one: the helpers never move a caller's model."""
    here = _device_of(net)
    if device is None:
        return here
    device = torch.device(device)
    if device.type != here.type or (device.index is not None and here.index is not None
                                    and device.index != here.index):
        raise ValueError(f"the model is on {here} but device={device}: move it once, where you build it "
                         f"(`net = net.to(profile.device)`), and leave device=None")
    return here


def _check_cpu_layout(net: nn.Module, device: torch.device) -> None:
    """Refuse channels_last convolution weights on the CPU: they make the convolutions run NHWC
    whatever the batch layout (see :func:`_batch_to` for why that is unsafe)."""
    if device.type != "cpu":
        return
    for name, p in net.named_parameters():
        if p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last):
            raise ValueError(f"{name} is in the channels_last layout: on the CPU that runs a oneDNN kernel "
                             "that corrupts memory on AVX2 CPUs; use "
                             "`net.to(memory_format=torch.contiguous_format)` (channels_last is for CUDA)")


def evaluate(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
             amp: bool = False, channels_last: bool = True) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``net`` on ``data_iter`` (eval mode, no autograd),
    on the model's device (the batches are moved there; the model is never moved).
    ``amp``: bf16 autocast on CUDA; ``channels_last``: NHWC batches on CUDA, as in :func:`train`."""
    device = _check_device(net, device)
    was_training = net.training
    net.eval()
    loss_sum, correct, n = 0.0, 0, 0
    with torch.inference_mode():
        for X, y in data_iter:
            X, y = _batch_to(X, device, channels_last), y.to(device)
            with _amp(device, amp):
                out = net(X)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += y.numel()
    net.train(was_training)
    return loss_sum / max(n, 1), correct / max(n, 1)


def _device_of(net: nn.Module) -> torch.device:
    p = next(iter(net.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def freeze_frozen_batchnorm(net: nn.Module) -> None:
    """Put every BatchNorm whose parameters are all frozen in eval mode, so that its running
    statistics stay those of the pretrained model (``net.train()`` would update them otherwise)."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.eval()


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def train(net: nn.Module, train_iter: Iterable, valid_iter: Iterable | None,
          optimizer: torch.optim.Optimizer, num_epochs: int, *,
          loss: nn.Module | None = None, scheduler: Any = None, scheduler_interval: str = "epoch",
          clip_grad_norm: float | None = None, device: torch.device | str | None = None,
          callbacks: Iterable[Callback] = (), freeze_bn_stats: bool = True,
          restore_best: bool = False, checkpoint_path: str | Path | None = None,
          progress: bool = True, desc: str = "train", amp: bool = False,
          channels_last: bool = True) -> History:
    """Train ``net`` for ``num_epochs`` and return its :class:`History`.

    ``scheduler`` is stepped every ``"epoch"`` or every ``"batch"``; a ``ReduceLROnPlateau`` is
    stepped each epoch with the validation accuracy (use ``mode="max"``). With ``restore_best`` the
    weights of the epoch with the best validation accuracy are loaded back at the end (and written to
    ``checkpoint_path`` atomically, if given) instead of returning the last epoch's.
    Training runs where the model is: move it once, where you build it, to ``profile.device``
    (``net = models.finetune_net(profile).to(profile.device)``); batches are moved there, the model
    never is (an explicit ``device`` must be the model's). ``channels_last`` (on by default) passes
    each 4-D batch to CUDA in the channels_last memory format (NHWC, the layout tensor cores want).
    On the CPU batches always go NCHW: oneDNN's AVX2 kernels corrupt memory on some NHWC
    convolutions (see ``_batch_to``), and NHWC saved only ~1.2x there. The model's parameters keep
    their layout, so ``p.view(-1)`` and ``parameters_to_vector`` still work on them. ``amp``
    (opt-in) runs forward and loss under bf16 autocast on CUDA (a no-op elsewhere).
    """
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError("scheduler_interval must be 'epoch' or 'batch'")
    device = _check_device(net, device)
    _check_cpu_layout(net, device)
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    needs_inputs = getattr(loss, "needs_inputs", False)
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    history, best_acc, best_state = History(), -1.0, None
    bar = tqdm(total=num_epochs * len(train_iter), desc=desc, disable=not progress, leave=False)  # type: ignore[arg-type]
    for epoch in range(num_epochs):
        for cb in callbacks:
            cb.on_epoch_start(epoch, net, optimizer)
        net.train()
        if freeze_bn_stats:
            freeze_frozen_batchnorm(net)
        lrs = [g["lr"] for g in optimizer.param_groups]
        loss_sum, correct, n = torch.zeros((), device=device), torch.zeros((), device=device), 0
        start = time.perf_counter()
        for X, y in train_iter:
            X, y = _batch_to(X, device, channels_last), y.to(device, non_blocking=True)
            with _amp(device, amp):
                out = net(X)
                l = loss(out, y, X) if needs_inputs else loss(out, y)
            optimizer.zero_grad(set_to_none=True)
            l.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(net.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None and scheduler_interval == "batch" and not plateau:
                scheduler.step()
            with torch.no_grad():
                loss_sum += l.detach() * y.numel()
                correct += (out.argmax(1) == y).sum()
            n += y.numel()
            bar.update()
        seconds = time.perf_counter() - start
        row = {"epoch": epoch + 1, "train_loss": loss_sum.item() / n, "train_acc": correct.item() / n,
               "examples_per_sec": n / seconds, "seconds": seconds, "lrs": lrs}
        if valid_iter is not None:
            row["valid_loss"], row["valid_acc"] = evaluate(net, valid_iter, device, amp, channels_last)
        else:
            row["valid_loss"], row["valid_acc"] = float("nan"), float("nan")
        history.rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", valid_acc=f"{row['valid_acc']:.3f}")
        if scheduler is not None and plateau:
            scheduler.step(row["valid_acc"])
        elif scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        if restore_best and row["valid_acc"] > best_acc:
            best_acc, history.best_epoch = row["valid_acc"], epoch + 1
            best_state = copy.deepcopy(net.state_dict())
            if checkpoint_path is not None:
                atomic_save(best_state, checkpoint_path)
    bar.close()
    if restore_best and best_state is not None:
        net.load_state_dict(best_state)
    return history


# --- BatchNorm recalibration ---
def recalibrate_batchnorm(net: nn.Module, data_iter: Iterable, num_batches: int | None = None,
                          device: torch.device | str | None = None) -> nn.Module:
    """Recompute the running statistics of every BatchNorm layer of ``net`` (in place; returned).

    After pruning, the activations no longer match the statistics measured on the unpruned network.
    This resets them and runs forward passes over ``data_iter`` (at most ``num_batches`` batches) in
    training mode without gradients, with ``momentum=None`` (a cumulative average over the pass); no
    parameter changes. Each module's mode and each BatchNorm's momentum are restored afterwards."""
    device = _check_device(net, device)
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = {m: m.training for m in net.modules()}
    momenta = {m: m.momentum for m in bns}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    with torch.no_grad():
        for i, (X, *_) in enumerate(data_iter):
            if num_batches is not None and i >= num_batches:
                break
            net(_batch_to(X, device, channels_last=False))
    for m, mode in modes.items():
        m.training = mode
    for m, momentum in momenta.items():
        m.momentum = momentum
    return net


# --- learning-rate finder ---
def _optimizer_on_copy(original: nn.Module, copy_: nn.Module,
                       optimizer: torch.optim.Optimizer | Callable[[nn.Module], torch.optim.Optimizer]
                       ) -> torch.optim.Optimizer:
    """``optimizer`` rebuilt on ``copy_`` (same class, groups and settings, fresh state), or
    ``optimizer(copy_)`` when it is a factory."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        return optimizer(copy_)
    names = {id(p): n for n, p in original.named_parameters()}
    params = dict(copy_.named_parameters())
    groups = []
    for g in optimizer.param_groups:
        missing = [p for p in g["params"] if id(p) not in names]
        if missing:
            raise ValueError("the optimizer holds parameters that are not the network's: build it "
                             "from this network's parameters, or pass a factory `lambda net: ...`")
        groups.append({**{k: v for k, v in g.items() if k != "params"},
                       "params": [params[names[id(p)]] for p in g["params"]]})
    return type(optimizer)(groups, **optimizer.defaults)


def lr_find(net: nn.Module, train_iter: Iterable,
            optimizer: torch.optim.Optimizer | Callable[[nn.Module], torch.optim.Optimizer],
            start_lr: float = 1e-5, end_lr: float = 10.0, num_steps: int | None = None, *,
            loss: nn.Module | None = None, smooth: float = 0.8, diverge: float = 4.0,
            freeze_bn_stats: bool = True, device: torch.device | str | None = None,
            channels_last: bool = True, repeats: int = 1) -> tuple[list[float], list[float]]:
    """Learning-rate finder (L. Smith's range test, fastai's ``lr_find``): ``(lrs, losses)``.

    Trains a *copy* of ``net`` for at most one epoch of ``train_iter`` (``num_steps`` batches,
    default: all of them) while the rate grows geometrically from ``start_lr`` to ``end_lr``, one
    step per batch, and records the training loss of each step, smoothed (exponential moving
    average with factor ``smooth``, bias-corrected). Stops early when the loss diverges: not
    finite, or above ``diverge`` times its smallest smoothed value. ``net`` (weights, BatchNorm
    statistics, device), the optimizer passed in and the global torch random state are left as
    they were, so the runs after a finder are the same as without it.

    ``optimizer`` is either an optimizer of ``net`` (its class, groups and settings are rebuilt on
    the copy) or a factory ``lambda copy: torch.optim.SGD(...)``. With several groups the ratios of
    their rates are kept: ``lrs`` are the rates of the group with the largest one (e.g. the head).

    ``repeats`` > 1 runs the test that many times (each on a fresh copy, with other shuffles and
    crops) and averages the curves over their common steps: with a small data set one epoch gives a
    few dozen noisy steps, whose minimum alone can land anywhere.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    steps = len(train_iter) if num_steps is None else min(num_steps, len(train_iter))  # type: ignore[arg-type]
    if steps < 1:
        raise ValueError("the finder needs at least one batch: train_iter is empty")
    if steps < 10 and (num_steps is None or num_steps > steps):
        warnings.warn(f"the learning-rate finder gets only {steps} step(s) from one epoch: its curve says "
                      "little; use smaller batches", stacklevel=2)
    device = torch.device(device) if device is not None else _device_of(net)
    loss = loss if loss is not None else nn.CrossEntropyLoss()
    curves: list[tuple[list[float], list[float]]] = []
    with torch.random.fork_rng(devices=[]):
        for _ in range(repeats):
            curves.append(_range_test(net, train_iter, optimizer, start_lr, end_lr, steps, loss, smooth, diverge,
                                      freeze_bn_stats, device, channels_last))
    n = min(len(lrs) for lrs, _ in curves)  # the steps every run reached
    return curves[0][0][:n], [sum(c[1][i] for c in curves) / len(curves) for i in range(n)]


def _range_test(net, train_iter, optimizer, start_lr, end_lr, steps, loss, smooth, diverge,
                freeze_bn_stats, device, channels_last) -> tuple[list[float], list[float]]:
    """One run of :func:`lr_find`'s range test on a copy of ``net``."""
    model = copy.deepcopy(net).to(device)
    _check_cpu_layout(model, device)  # the copy keeps the weights' layout: the same rule as train()
    opt = _optimizer_on_copy(net, model, optimizer)
    top = max(g["lr"] for g in opt.param_groups)
    ratios = [g["lr"] / top if top > 0 else 1.0 for g in opt.param_groups]
    gamma = (end_lr / start_lr) ** (1 / max(1, steps - 1))
    model.train()
    if freeze_bn_stats:
        freeze_frozen_batchnorm(model)
    lrs: list[float] = []
    losses: list[float] = []
    avg, best = 0.0, math.inf
    for step, (X, y) in enumerate(train_iter):
        if step >= steps:
            break
        lr = start_lr * gamma ** step
        for g, r in zip(opt.param_groups, ratios):
            g["lr"] = lr * r
        X, y = _batch_to(X, device, channels_last), y.to(device)
        l = loss(model(X), y)
        opt.zero_grad(set_to_none=True)
        l.backward()
        opt.step()
        value = l.item()
        if not math.isfinite(value):
            break
        avg = smooth * avg + (1 - smooth) * value
        smoothed = avg / (1 - smooth ** (step + 1))
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge * best:
            break
    return lrs, losses


# --- fastai-style fine_tune ---
def fine_tune(net: nn.Module, train_iter: Iterable, valid_iter: Iterable | None,
              groups: list[dict[str, Any]], lr: float, num_epochs: int, *, freeze_epochs: int = 1,
              lr_div: float = 100.0, momentum: float = 0.9, **train_kwargs: Any) -> History:
    """fastai's ``fine_tune`` with SGD: ``freeze_epochs`` on the last group (the head) alone at ``lr``,
    then every group trainable for the remaining epochs, with rates spread geometrically from
    ``lr / 2 / lr_div`` (first group) to ``lr / 2`` (head), like fastai's ``slice(lr/100, lr)`` after
    its halving of ``lr``. Each phase has its own optimizer and its own warmup (half an epoch) +
    cosine schedule, stepped per batch: the learning rate warms up again when the body is unfrozen.

    ``groups`` are optimizer parameter groups, input to output (e.g. ``models.param_groups``: their
    ``lr`` is replaced). Returns one :class:`History` over all ``num_epochs`` (fewer than
    ``freeze_epochs + 1`` epochs: the head phase only)."""
    if not groups or freeze_epochs < 1:
        raise ValueError("need at least one parameter group and freeze_epochs >= 1")
    steps, n = len(train_iter), len(groups)  # type: ignore[arg-type]

    def phase(lrs: list[float], epochs: int) -> History:
        opt = torch.optim.SGD([{**g, "lr": r} for g, r in zip(groups, lrs)], momentum=momentum)
        sched = warmup_cosine(opt, steps // 2, epochs * steps)
        return train(net, train_iter, valid_iter, opt, epochs, scheduler=sched, scheduler_interval="batch",
                     **train_kwargs)

    for i, g in enumerate(groups):  # the head alone first
        for p in g["params"]:
            p.requires_grad_(i == n - 1)
    history = phase([lr] * n, min(freeze_epochs, num_epochs))
    rest = num_epochs - freeze_epochs
    if rest > 0:
        for g in groups:
            for p in g["params"]:
                p.requires_grad_(True)
        spread = [lr / 2 * lr_div ** (-(n - 1 - i) / max(1, n - 1)) for i in range(n)]
        for row in phase(spread, rest).rows:
            history.rows.append({**row, "epoch": row["epoch"] + freeze_epochs})
    return history


# --- predictions for error analysis ---
def predict(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
            channels_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, labels)`` over ``data_iter``: softmax probabilities ``(N, C)`` and true labels
    ``(N,)``, on the CPU, in the iterable's order. Eval mode (BatchNorm uses its running
    statistics, dropout is off) under ``inference_mode``; the net's previous mode is restored."""
    device = _check_device(net, device)
    was_training = net.training
    net.eval()
    probs, labels = [], []
    try:
        with torch.inference_mode():
            for X, y in data_iter:
                out = net(_batch_to(X, device, channels_last))
                probs.append(F.softmax(out.float(), dim=1).cpu())
                labels.append(y.cpu())
    finally:
        net.train(was_training)
    return torch.cat(probs), torch.cat(labels)
