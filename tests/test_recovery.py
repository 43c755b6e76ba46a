"""helpers.compression.recovery: chapter 5's reference versions (the lesson's fallbacks)."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import grading, models, training
from helpers.compression import recovery


def test_optimizer_registers_every_group_before_the_scheduler_and_decays_them_all():
    net = grading.tiny_net()
    models.freeze(net)
    opt, sched = recovery.optimizer(net, 1e-3, lambda o: training.warmup_cosine(o, 1, 4))
    assert type(opt) is torch.optim.Adam and sched.optimizer is opt
    assert [g["name"] for g in opt.param_groups] == list(models.LAYER_GROUPS)
    assert all(g["weight_decay"] == 1e-4 and math.isclose(g["lr"], 1e-4) for g in opt.param_groups)
    assert models.trainable_groups(net) == ["head"]
    models.unfreeze(net)
    opt.step()
    sched.step()
    assert all(math.isclose(g["lr"], 1e-3) for g in opt.param_groups)
    assert recovery.optimizer(net, 0.1)[1] is None


def test_scheduler_names_and_plateau_choice():
    lrs = training.lr_trace(lambda o: recovery.scheduler("step", o, 6), steps=6)
    assert [round(x, 6) for x in lrs] == [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    assert training.lr_trace(lambda o: recovery.scheduler("cosine", o, 4), steps=5)[-1] == pytest.approx(0.0)
    flat = training.lr_trace(lambda o: recovery.scheduler("plateau", o, 6), steps=6, metrics=[0.8] * 6)
    assert sum(b < a for a, b in zip(flat, flat[1:])) == 2
    with pytest.raises(ValueError, match="unknown scheduler 'linear'"):
        recovery.scheduler("linear", torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 3)


def test_kd_loss_is_the_course_loss_with_chapter_5_names():
    g = torch.Generator().manual_seed(0)
    zs, zt, y = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.tensor([0, 1, 2, 0])
    assert torch.equal(recovery.kd_loss(zs, zt, y, T=2.0, alpha=0.3), training.distillation_loss(zs, zt, y, 2.0, 0.3))
