from __future__ import annotations

import copy
import math
import os

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import helpers
from helpers import grading, models, training


def sgd(net, lr=0.1, **mult):
    return torch.optim.SGD(models.param_groups(net, lr, mult), lr=lr, momentum=0.9)


def test_param_groups_leave_weight_decay_to_the_optimizer_unless_given():
    net = grading.tiny_net()
    decayed = torch.optim.SGD(models.param_groups(net, 0.1), lr=0.1, weight_decay=5e-4)
    assert [g["weight_decay"] for g in decayed.param_groups] == [5e-4] * len(models.LAYER_GROUPS)
    own = torch.optim.SGD(models.param_groups(net, 0.1, weight_decay=1e-3), lr=0.1, weight_decay=5e-4)
    assert {g["weight_decay"] for g in own.param_groups} == {1e-3}
    # the decay really acts: with zero gradients a decayed weight shrinks, an undecayed one stays
    for opt, shrinks in ((decayed, True), (torch.optim.SGD(models.param_groups(net, 0.1), lr=0.1), False)):
        w = net.fc.weight
        before = w.detach().clone()
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        assert bool(w.detach().norm() < before.norm()) is shrinks


def test_param_groups_register_every_group_so_later_unfreezing_trains():
    net = grading.tiny_net()
    models.freeze(net)
    opt = sgd(net, head=10)
    assert [g["name"] for g in opt.param_groups] == list(models.LAYER_GROUPS)
    assert opt.param_groups[-1]["lr"] == pytest.approx(1.0) and opt.param_groups[0]["lr"] == pytest.approx(0.1)
    before = net.layer4[0].conv1.weight.detach().clone()
    loader = grading.tiny_loader()
    training.train(net, loader, None, opt, 1, progress=False)
    assert torch.equal(net.layer4[0].conv1.weight, before)  # frozen: untouched
    models.unfreeze(net, "layer4")
    training.train(net, loader, None, opt, 1, progress=False)
    assert not torch.equal(net.layer4[0].conv1.weight, before)  # same optimizer trains it now


def test_frozen_batchnorm_keeps_its_running_statistics():
    net = grading.tiny_net()
    models.freeze(net)
    stats = net.bn1.running_mean.clone()
    training.train(net, grading.tiny_loader(), None, sgd(net), 1, progress=False)
    assert torch.equal(net.bn1.running_mean, stats)
    models.unfreeze(net)
    training.train(net, grading.tiny_loader(), None, sgd(net), 1, progress=False)
    assert not torch.equal(net.bn1.running_mean, stats)


def test_training_learns_and_history_is_complete():
    torch.manual_seed(0)
    net = grading.tiny_net()
    loader = grading.tiny_loader(n=64)
    h = training.train(net, loader, loader, torch.optim.Adam(net.parameters(), 1e-2), 8, progress=False)
    assert len(h) == 8 and h["epoch"] == list(range(1, 9))
    assert h.final["valid_acc"] >= 0.9 and h["train_loss"][-1] < h["train_loss"][0]
    assert all(r["examples_per_sec"] > 0 for r in h.rows) and "valid acc" in repr(h)


class Sabotage:
    """Ruin the weights at the start of one epoch, so the last epoch is worse than the best."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, epoch, net, optimizer):
        if epoch == self.epoch:
            for g in optimizer.param_groups:
                g["lr"] = 0.0
            with torch.no_grad():
                net.fc.weight.mul_(-1)
                net.fc.bias.mul_(-1)


def test_restore_best_returns_the_best_epoch_not_the_last(tmp_path):
    torch.manual_seed(0)
    net = grading.tiny_net()
    loader = grading.tiny_loader(n=64)
    ckpt = tmp_path / "best.pt"
    h = training.train(net, loader, loader, torch.optim.Adam(net.parameters(), 1e-2), 6,
                       callbacks=[Sabotage(5)], restore_best=True, checkpoint_path=ckpt, progress=False)
    assert h["valid_acc"][-1] < h.best_valid_acc
    assert training.evaluate(net, loader)[1] == pytest.approx(h.best_valid_acc)
    assert h.best_epoch == 1 + h["valid_acc"].index(h.best_valid_acc)
    saved = torch.load(ckpt, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]


def test_clip_grad_norm_is_applied(monkeypatch):
    calls = []
    real = nn.utils.clip_grad_norm_
    monkeypatch.setattr(nn.utils, "clip_grad_norm_", lambda ps, m: calls.append(m) or real(ps, m))
    net = grading.tiny_net()
    training.train(net, grading.tiny_loader(), None, sgd(net), 1, clip_grad_norm=1.0, progress=False)
    assert calls == [1.0] * 4


def test_warmup_cosine_schedule_values():
    lrs = training.lr_trace(lambda o: training.warmup_cosine(o, 3, 13, start_factor=0.1), 13)
    assert lrs[0] == pytest.approx(0.1) and lrs[3] == pytest.approx(1.0)
    assert lrs[1] == pytest.approx(0.4) and lrs[8] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(lrs[3:], lrs[4:])) and lrs[-1] < 0.03
    with pytest.raises(ValueError):
        training.warmup_cosine(torch.optim.SGD([nn.Parameter(torch.zeros(1))], 1.0), 5, 5)


def test_schedulers_keep_discriminative_ratios_and_plateau_steps_on_accuracy():
    net = grading.tiny_net()
    mult = models.discriminative_mult(2.6)
    assert mult["head"] == 1 and mult["layer4"] == pytest.approx(1 / 2.6) and mult["stem"] == pytest.approx(2.6 ** -5)
    opt = sgd(net, **mult)
    sched = training.warmup_cosine(opt, 1, 4)
    training.train(net, grading.tiny_loader(), None, opt, 2, scheduler=sched, progress=False)
    ratio = opt.param_groups[0]["lr"] / opt.param_groups[-1]["lr"]
    assert ratio == pytest.approx(2.6 ** -5)
    opt = sgd(net)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
    training.train(net, grading.tiny_loader(), grading.tiny_loader(), opt, 4, scheduler=plateau, progress=False)
    assert opt.param_groups[0]["lr"] < 0.1


def test_distillation_loss_scales_the_soft_term_by_t_squared():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 5), torch.randn(8, 5), torch.randint(0, 5, (8,))
    T = 4.0
    kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert training.distillation_loss(s, t, y, T, 0.0) == pytest.approx(kl.item() * T * T, rel=1e-5)
    assert training.distillation_loss(s, t, y, T, 1.0) == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-5)
    teacher = grading.tiny_net().train()
    loss = training.DistillationLoss(teacher, T, 0.5)
    loss.train()
    assert not teacher.training
    student = grading.tiny_net(seed=1)
    h = training.train(student, grading.tiny_loader(), None, sgd(student), 1, loss=loss, progress=False)
    assert math.isfinite(h.final["train_loss"])


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    target = tmp_path / "model.pt"
    training.atomic_save({"a": torch.ones(2)}, target)
    with pytest.raises(RuntimeError):
        training.atomic_save({"bad": Boom()}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert torch.equal(torch.load(target)["a"], torch.ones(2))


def test_seed_everything_makes_training_repeatable():
    def run():
        g = helpers.seed_everything(3)
        net = grading.tiny_net(seed=3)
        training.train(net, grading.tiny_loader(), None, sgd(net), 1, progress=False)
        return net.fc.weight.detach().clone(), torch.rand(1, generator=g)
    a, b = run(), run()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_bad_profile_name_says_what_to_do(monkeypatch):
    from helpers.profile import get_profile
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        get_profile()


def _record_conv_layouts(net):
    """Every convolution records whether its input was NCHW-contiguous."""
    seen = set()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_pre_hook(lambda m, args: seen.add(
                "nchw" if args[0].is_contiguous() else "nhwc" if args[0].is_contiguous(
                    memory_format=torch.channels_last) else "other"))
    return seen


def test_cpu_convolutions_never_see_nhwc_whatever_channels_last_or_the_loader_says():
    # oneDNN#6035: NHWC 1x1 stride-2 backward with < 8 input channels corrupts the heap on AVX2 CPUs
    nhwc_loader = [(X.contiguous(memory_format=torch.channels_last), y) for X, y in grading.tiny_loader()]
    runs = []
    for channels_last, data in ((False, grading.tiny_loader()), (True, grading.tiny_loader()),
                                (True, nhwc_loader)):
        net = grading.tiny_net(seed=1)
        seen = _record_conv_layouts(net)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        hist = training.train(net, data, data, opt, 2, progress=False, channels_last=channels_last)
        training.evaluate(net, nhwc_loader, channels_last=channels_last)
        assert seen == {"nchw"}  # training and evaluation batches alike
        runs.append((hist, net))
    (h0, n0), *others = runs
    for h1, n1 in others:  # the same computation: identical results
        assert all(p.is_contiguous() for p in n1.parameters())
        assert [r["train_loss"] for r in h0.rows] == [r["train_loss"] for r in h1.rows]
        for (name, p0), p1 in zip(n0.state_dict().items(), n1.state_dict().values()):
            assert torch.equal(p0, p1), name
    flat = nn.Sequential(nn.Linear(4, 2))  # 2-D batches: the default must not try to reformat them
    data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
    training.train(flat, data, None, torch.optim.SGD(flat.parameters(), lr=0.1), 1, progress=False)


def test_channels_last_weights_are_refused_on_the_cpu():
    net = grading.tiny_net().to(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="contiguous_format"):
        training.train(net, grading.tiny_loader(), None, sgd(net), 1, progress=False)
    with pytest.raises(ValueError, match="contiguous_format"):  # the finder trains a copy: same layout, same rule
        training.lr_find(net, grading.tiny_loader(n=64, batch_size=4), sgd(net), 1e-3, 1.0)


class NoMoving(nn.Module):
    """Wraps a model; moving it (``to``, ``cpu``, ``cuda``) fails the test."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def to(self, *a, **k):
        raise AssertionError(f"a helper moved the caller's model: .to{a}")

    def cpu(self):
        raise AssertionError("a helper moved the caller's model: .cpu()")

    def cuda(self, *a, **k):
        raise AssertionError("a helper moved the caller's model: .cuda()")


def test_train_and_evaluate_run_where_the_model_is_and_never_move_it(monkeypatch):
    net = NoMoving(grading.tiny_net())
    moved = []
    real = training._batch_to
    monkeypatch.setattr(training, "_batch_to", lambda X, d, cl: moved.append(d) or real(X, d, cl))
    h = training.train(net, grading.tiny_loader(), grading.tiny_loader(), sgd(net.net), 1, progress=False)
    assert math.isfinite(h.final["train_loss"]) and set(moved) == {torch.device("cpu")}
    training.evaluate(net, grading.tiny_loader())
    with pytest.raises(ValueError, match=r"net.to\(profile.device\)"):  # never a silent move
        training.train(net, grading.tiny_loader(), None, sgd(net.net), 1, device="meta", progress=False)
    with pytest.raises(ValueError, match="the model is on cpu"):
        training.evaluate(net, grading.tiny_loader(), device="meta")
    meta = grading.tiny_net().to("meta")  # a model on another device: batches follow it there
    moved.clear()
    with pytest.raises(Exception):  # meta tensors have no values; what matters is where they went
        training.evaluate(meta, grading.tiny_loader())
    assert moved == [torch.device("meta")]


def test_stage_recorder_sees_each_epochs_trainable_groups_after_the_unfreezer():
    class UnfreezeOneMore:
        def on_epoch_start(self, epoch, net, optimizer):
            models.freeze(net, models.LAYER_GROUPS)
            models.unfreeze(net, list(reversed(models.LAYER_GROUPS))[:epoch + 1])

    net = grading.tiny_net()
    recorder = training.StageRecorder()
    opt = torch.optim.SGD(models.param_groups(net, 0.01), lr=0.01)
    training.train(net, grading.tiny_loader(), None, opt, 3, progress=False,
                   callbacks=[UnfreezeOneMore(), recorder])
    assert recorder.stages == [["head"], ["layer4", "head"], ["layer3", "layer4", "head"]]


# --- BatchNorm recalibration ---

def test_recalibrate_batchnorm_recomputes_the_statistics_without_training():
    from helpers import compression as C

    net = grading.tiny_net()
    loader = grading.tiny_loader(n=32, batch_size=8)
    training.train(net, loader, None, sgd(net, lr=0.05), 1, progress=False)
    pruned = C.prune_global_l1(net, 0.8).eval()
    params = {n: p.detach().clone() for n, p in pruned.named_parameters()}
    stale = pruned.bn1.running_mean.clone()
    out = training.recalibrate_batchnorm(pruned, loader)
    assert out is pruned and not pruned.training and not pruned.bn1.training  # modes restored
    assert pruned.bn1.momentum == 0.1  # momentum restored
    assert all(torch.equal(p, params[n]) for n, p in pruned.named_parameters())  # no parameter changes
    # equal batches: the cumulative average of the batch means is the mean over every example
    X = torch.cat([x for x, _ in loader])
    with torch.no_grad():
        expected = pruned.conv1(X).mean(dim=(0, 2, 3))
    assert torch.allclose(pruned.bn1.running_mean, expected, atol=1e-5)
    assert not torch.allclose(stale, expected, atol=1e-3)
    assert pruned.bn1.num_batches_tracked.item() == len(loader)
    training.recalibrate_batchnorm(pruned, loader, num_batches=1)
    assert pruned.bn1.num_batches_tracked.item() == 1
# --- learning-rate finder ---

def _finder_setup(seed=0):
    net = grading.tiny_net(seed=seed)
    models.freeze(net, ["stem", "layer1", "layer2", "layer3"])
    opt = torch.optim.SGD(models.param_groups(net, 1.0, {"layer4": 0.1}), lr=1.0, momentum=0.9)
    return net, opt


def test_lr_find_leaves_the_callers_model_optimizer_and_random_state_alone():
    net, opt = _finder_setup()
    net.train()
    state = copy.deepcopy(net.state_dict())
    flags = [p.requires_grad for p in net.parameters()]
    group_lrs = [g["lr"] for g in opt.param_groups]
    rng = torch.get_rng_state()
    lrs, losses = training.lr_find(net, grading.tiny_loader(n=64, batch_size=4), opt, 1e-3, 1.0)
    assert len(lrs) == len(losses) > 2
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())  # BatchNorm buffers too
    assert [p.requires_grad for p in net.parameters()] == flags and net.training
    assert all(p.grad is None for p in net.parameters())
    assert [g["lr"] for g in opt.param_groups] == group_lrs and not opt.state
    assert torch.equal(torch.get_rng_state(), rng)


def test_lr_find_sweeps_geometrically_over_one_epoch_keeping_group_ratios():
    net, _ = _finder_setup()
    built = []

    def factory(copy_):
        assert copy_ is not net
        built.append(torch.optim.SGD(models.param_groups(copy_, 1.0, {"layer4": 0.1}), lr=1.0))
        return built[-1]

    loader = grading.tiny_loader(n=64, batch_size=4)  # 16 batches
    lrs, losses = training.lr_find(net, loader, factory, 1e-4, 1e-1)
    assert len(lrs) == 16  # no divergence at these rates: the whole epoch, no more
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-1)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert ratios == pytest.approx([ratios[0]] * 15) and ratios[0] == pytest.approx(1000 ** (1 / 15))
    groups = {g["name"]: g["lr"] for g in built[0].param_groups}
    assert groups["head"] == pytest.approx(1e-1) and groups["layer4"] == pytest.approx(1e-2)
    assert min(losses) < losses[0]  # the head learns on the way
    assert len(training.lr_find(net, loader, factory, 1e-4, 1e-1, num_steps=5)[0]) == 5


def test_lr_find_repeats_average_runs_over_other_shuffles():
    net, _ = _finder_setup()

    def factory(copy_):
        return torch.optim.SGD(models.param_groups(copy_, 1.0), lr=1.0)

    fixed = grading.tiny_loader(n=64, batch_size=4)  # no shuffling: every run sees the same batches
    one = training.lr_find(net, fixed, factory, 1e-4, 1e-1)
    three = training.lr_find(net, fixed, factory, 1e-4, 1e-1, repeats=3)
    assert three[0] == one[0] and three[1] == pytest.approx(one[1], rel=1e-5)
    shuffled = DataLoader(fixed.dataset, batch_size=4, shuffle=True)
    torch.manual_seed(0)
    runs = [training.lr_find(net, shuffled, factory, 1e-4, 1e-1)[1]]
    torch.manual_seed(0)  # lr_find leaves the random state alone: the next call would repeat the shuffle
    with torch.random.fork_rng(devices=[]):
        for _ in range(2):
            [_ for _ in shuffled]  # noqa: B018 - advance the generator past one epoch's shuffle
            runs.append(training.lr_find(net, shuffled, factory, 1e-4, 1e-1)[1])
    torch.manual_seed(0)
    avg = training.lr_find(net, shuffled, factory, 1e-4, 1e-1, repeats=3)[1]
    assert runs[0] != pytest.approx(runs[1])  # other shuffles, other curves
    assert avg == pytest.approx([sum(r[i] for r in runs) / 3 for i in range(len(avg))], rel=1e-5)
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        training.lr_find(net, fixed, factory, repeats=0)


def test_lr_find_stops_when_the_loss_diverges():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2))  # logits grow, the loss stays finite
    opt = torch.optim.SGD(net.parameters(), lr=1.0, momentum=0.9)
    g = torch.Generator().manual_seed(0)  # random labels: too large a rate overshoots, the loss grows
    X, y = torch.randn(160, 3, 16, 16, generator=g), torch.randint(0, 2, (160,), generator=g)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)  # 40 batches
    lrs, losses = training.lr_find(net, loader, opt, 1e-3, 1e5)
    assert 2 < len(lrs) < 40 and lrs[-1] < 1e5
    assert losses[-1] > 4 * min(losses) and all(v <= 4 * min(losses) for v in losses[:-1])

    class NanAfter(nn.Module):  # a loss that turns NaN at the 6th step: 5 points, nothing after
        calls = 0

        def forward(self, out, y):
            self.calls += 1
            return F.cross_entropy(out, y) * (float("nan") if self.calls > 5 else 1.0)

    lrs, losses = training.lr_find(net, loader, opt, 1e-4, 1e-3, loss=NanAfter())
    assert len(lrs) == 5 and all(math.isfinite(v) for v in losses)


def test_lr_find_rebuilds_only_optimizers_of_this_network():
    net, _ = _finder_setup()
    other = torch.optim.SGD(grading.tiny_net(seed=1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="not the network's"):
        training.lr_find(net, grading.tiny_loader(n=80), other)
    with pytest.raises(ValueError, match="start_lr"):
        training.lr_find(net, grading.tiny_loader(), other, 1.0, 0.1)
# --- mean and spread over repeated runs ---
def test_fine_tune_trains_the_head_alone_then_everything_with_geometric_rates():
    net = grading.tiny_net()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    loader = grading.tiny_loader()
    groups = models.param_groups(net, 123.0)  # the lr given here is replaced
    h1 = training.fine_tune(net, loader, loader, groups, 0.1, 1, progress=False)  # head phase only
    assert len(h1) == 1 and h1.rows[0]["lrs"][-1] == pytest.approx(0.1 * 0.1)  # warmup starts at 10 %
    assert torch.equal(net.layer4[0].conv1.weight, start["layer4.0.conv1.weight"])
    assert not torch.equal(net.fc.weight, start["fc.weight"])
    net = grading.tiny_net()
    h = training.fine_tune(net, loader, loader, models.param_groups(net, 1.0), 0.1, 3, progress=False)
    assert [r["epoch"] for r in h.rows] == [1, 2, 3]
    lrs = h.rows[1]["lrs"]  # start of the unfrozen phase: warmup again, rates lr/2/100 .. lr/2
    assert lrs[-1] == pytest.approx(0.1 / 2 * 0.1) and lrs[0] == pytest.approx(lrs[-1] / 100)
    assert lrs[1] / lrs[0] == pytest.approx(100 ** 0.2)
    assert all(p.requires_grad for p in net.parameters())
    assert not torch.equal(net.conv1.weight, start["conv1.weight"])
    with pytest.raises(ValueError):
        training.fine_tune(net, loader, None, [], 0.1, 2)
# --- predictions for error analysis ---
def test_predict_uses_eval_mode_without_autograd_and_restores_the_mode():
    from helpers.grading import tiny_loader, tiny_net
    from helpers.training import evaluate, predict

    net, loader = tiny_net(), tiny_loader(n=20, batch_size=8)
    bn_mean = net.bn1.running_mean.clone()
    seen = []
    net.bn1.register_forward_hook(lambda m, i, o: seen.append((m.training, torch.is_grad_enabled())))
    net.train()
    probs, labels = predict(net, loader)
    assert net.training and all(m.training for m in net.modules())  # restored
    assert seen and all(s == (False, False) for s in seen)  # eval mode, no autograd
    assert torch.equal(net.bn1.running_mean, bn_mean)  # no batch statistics leaked in
    assert probs.shape == (20, 2) and torch.allclose(probs.sum(1), torch.ones(20))
    assert torch.equal(labels, torch.cat([y for _, y in loader]))
    acc = (probs.argmax(1) == labels).float().mean().item()
    assert acc == pytest.approx(evaluate(net, loader)[1])
    # batch-independent: one item at a time gives the same probabilities
    one = predict(net, tiny_loader(n=20, batch_size=1))[0]
    assert torch.allclose(one, probs, atol=1e-5)
    net.eval()
    predict(net, loader)
    assert not net.training
