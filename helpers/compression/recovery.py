"""Recovery after compression: the course's reference versions of chapter 5's exercises.

Chapter 5's lesson cells call the student's functions through :func:`helpers.grading.or_reference`
with these as the fallback, so that one unfinished exercise does not stop the experiments the written
questions need. The chapter's hidden tests block them (``unittest.mock.patch``): the exercises are
about writing them.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from helpers import models, training


def optimizer(net: nn.Module, lr: float,
              make_scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
              weight_decay: float = 1e-4) -> tuple[torch.optim.Adam, Any]:
    """``(Adam, scheduler or None)`` with one named group per layer group, every group registered
    *before* the scheduler is built (frozen ones included), so a group unfrozen later is trained and
    follows the schedule. ``weight_decay`` is the optimizer's default, not a group key."""
    opt = torch.optim.Adam(models.param_groups(net, lr), lr=lr, weight_decay=weight_decay)
    return opt, (make_scheduler(opt) if make_scheduler is not None else None)


def scheduler(name: str, optimizer: torch.optim.Optimizer, epochs: int) -> Any:
    """A per-epoch schedule by name: ``"cosine"`` (to 0 after ``epochs``), ``"step"`` (x0.1 every
    ``max(1, epochs // 3)`` epochs) or ``"plateau"`` (on a validation accuracy: ``mode="max"``,
    ``patience=1``, ``factor=0.5``: one noisy epoch does not cut the rate, two drops fit in 6 epochs)."""
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    raise ValueError(f"unknown scheduler {name!r}; use 'cosine', 'step' or 'plateau'")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            T: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """:func:`helpers.training.distillation_loss` with chapter 5's argument names."""
    return training.distillation_loss(student_logits, teacher_logits, targets, T, alpha)
