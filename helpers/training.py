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
    X = X.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X


def evaluate(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
             amp: bool = False, channels_last: bool = True) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of ``net`` on ``data_iter`` (eval mode, no autograd;
    ``amp``: bf16 autocast on CUDA; ``channels_last``: NHWC batches, as in :func:`train`)."""
    device = torch.device(device) if device is not None else _device_of(net)
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
    ``channels_last`` (on by default) passes each 4-D batch in the channels_last memory format, so
    the convolutions run in NHWC: same results, 15-25 % less time per step on 2 CPU cores (mini
    ResNet and ResNet-18), the layout tensor cores want on CUDA. The model's parameters keep their
    layout, so ``p.view(-1)`` and ``parameters_to_vector`` still work on them. ``amp`` (opt-in) runs
    forward and loss under bf16 autocast on CUDA (a no-op elsewhere).
    """
    if scheduler_interval not in ("epoch", "batch"):
        raise ValueError("scheduler_interval must be 'epoch' or 'batch'")
    device = torch.device(device) if device is not None else _device_of(net)
    net.to(device)
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


# --- error analysis (ch2) ---
def predict(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
            channels_last: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs, labels)`` over ``data_iter``: softmax probabilities ``(N, C)`` and true labels
    ``(N,)``, on the CPU, in the iterable's order. Eval mode (BatchNorm uses its running
    statistics, dropout is off) under ``inference_mode``; the net's previous mode is restored."""
    device = torch.device(device) if device is not None else _device_of(net)
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
