# %% [markdown]
# # Chapter 5: Recovering accuracy after compression
#
# Chapter 4 compressed a fine-tuned model and accuracy paid for it. Here a **short fine-tuning of the compressed
# model** gets it back without undoing the compression. Part A writes the tools (exercises 1-5, each tested in a
# second on a tiny network); Part B prunes the mini model, recovers with each tool over a few seeds and asks you
# to interpret the measurements (exercises 6-9). Choices are made on the **validation** split; the test set is
# measured once per final model.

# %%
import copy
import math
from unittest import mock

import torch
from torch import nn
from torch.nn import functional as F

import helpers
from helpers import compression as C
from helpers import data, grading, models, plots, training

profile = helpers.setup()


# %% [markdown]
# # Part A: the tools
#
# ## 1. Gradient clipping
#
# `clip_grad_norm_(params, max_norm)` treats all the gradients as **one** vector $g$ of norm
# $\|g\| = \sqrt{\sum_i \|g_i\|^2}$. Above `max_norm`, every gradient is multiplied by `max_norm / ||g||`: the
# step keeps its **direction**. Clamping each element (`clip_grad_value_`) or each tensor by its own norm does not.
#
# ### Exercise 1 (3 points, seed exercise 1): `clip_gradients`
#
# Write `clip_gradients(parameters, max_norm)` with tensor operations:
#
# - `parameters` is an iterable of tensors, possibly a **generator** such as `net.parameters()` (it can be
#   iterated only once); tensors whose `.grad` is `None` are ignored;
# - if the total norm of all the gradients is larger than `max_norm`, multiply every gradient **in place** by
#   `max_norm / (total_norm + 1e-6)`; otherwise leave them alone;
# - return the total norm **before** clipping, as a Python `float` (`0.0` if no tensor has a gradient).

# %% nbgrader={"grade": false, "grade_id": "clip_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def clip_gradients(parameters, max_norm):
    ### BEGIN SOLUTION
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.sqrt(sum((g.detach().double() ** 2).sum() for g in grads)).item()
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (total + 1e-6))
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "clip_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)
a.grad, b.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([[0.0, 4.0], [0.0, 0.0]])  # total norm 5
norm = clip_gradients([a, b], max_norm=1.0)
assert isinstance(norm, float) and math.isclose(norm, 5.0, rel_tol=1e-6), norm
assert torch.allclose(a.grad, torch.tensor([0.6, 0.0, 0.0]), atol=1e-5), a.grad
assert torch.allclose(b.grad, torch.tensor([[0.0, 0.8], [0.0, 0.0]]), atol=1e-5), b.grad
### BEGIN HIDDEN TESTS
# below the threshold: nothing changes (no scaling *up*)
a.grad, b.grad = torch.tensor([0.3, 0.0, 0.0]), torch.tensor([[0.0, 0.4], [0.0, 0.0]])
assert math.isclose(clip_gradients([a, b], 1.0), 0.5, rel_tol=1e-6)
assert torch.equal(a.grad, torch.tensor([0.3, 0.0, 0.0])), "below max_norm the gradients must not change"
# one norm for all tensors: each tensor (1.2 and 1.6) below max_norm=1.7, the total (2.0) above it
a.grad, b.grad = torch.tensor([1.2, 0.0, 0.0]), torch.tensor([[0.0, 1.6], [0.0, 0.0]])
assert math.isclose(clip_gradients([a, b], 1.7), 2.0, rel_tol=1e-6)
assert torch.allclose(a.grad / b.grad.sum(), torch.tensor([0.75, 0.0, 0.0]), atol=1e-6), \
    "all gradients are scaled by the same factor (one total norm), the direction is kept"
assert torch.allclose(a.grad, torch.tensor([1.02, 0.0, 0.0]), atol=1e-4), a.grad
# the direction is kept (clip_grad_value_ would clamp each element)
c = torch.zeros(2, requires_grad=True)
c.grad = torch.tensor([10.0, 1.0])
clip_gradients([c], 1.0)
assert math.isclose((c.grad[0] / c.grad[1]).item(), 10.0, rel_tol=1e-5), "clip by norm, not by value"
# a whole network, parameters given as a generator, compared with PyTorch's clip_grad_norm_
tiny, ref = grading.tiny_net(), grading.tiny_net()
X, y = next(iter(grading.tiny_loader()))
for net_ in (tiny, ref):
    F.cross_entropy(net_(X) * 20, y).backward()
tiny.fc.bias.grad = None  # ignored
ref.fc.bias.grad = None
for max_norm in (0.05, float("inf")):
    expected = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm).item()
    got = clip_gradients(tiny.parameters(), max_norm)
    assert math.isclose(got, expected, rel_tol=1e-5), (max_norm, got, expected)
    for (n, p), q in zip(tiny.named_parameters(), ref.parameters()):
        assert (p.grad is None) == (q.grad is None), n
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-7), \
                f"{n}: gradients differ from clip_grad_norm_ (a generator can be iterated only once)"
assert clip_gradients([torch.zeros(2, requires_grad=True)], 1.0) == 0.0
### END HIDDEN TESTS


# %% [markdown]
# `training.train(..., clip_grad_norm=1.0)` calls PyTorch's `clip_grad_norm_` after every backward pass; section 8
# compares recovery with and without it.


# %% [markdown]
# ## 2. Register every layer group before the scheduler
#
# > **Common mistake.** During progressive unfreezing, building the optimizer from the parameters trainable *now*
# > and calling `optimizer.add_param_group(...)` at each stage. A scheduler built before does not know the new
# > group: `LambdaLR` (so `training.warmup_cosine`) fails at its next `step()`, `OneCycleLR` raises a `KeyError`.
# > **Fix:** register every group up front (frozen parameters get no gradient, the optimizer skips them), then
# > build the scheduler; or rebuild both at each stage (losing Adam's moment estimates).

# %%
tiny = grading.tiny_net()
opt = torch.optim.Adam([{"params": models.group_parameters(tiny, "head"), "name": "head"}], lr=1e-3)
sched = training.warmup_cosine(opt, warmup_steps=1, total_steps=4)
opt.add_param_group({"params": models.group_parameters(tiny, "layer4"), "name": "layer4"})  # stage 2
try:
    opt.step()
    sched.step()
except ValueError as err:
    print("LambdaLR after add_param_group:", err)


# %% [markdown]
# ### Exercise 2 (3 points, a classic mistake): `make_optimizer`
#
# Write `make_optimizer(net, lr, make_scheduler=None)`, called once **before** progressive unfreezing starts
# (some groups still frozen), returning `(optimizer, scheduler)`: `torch.optim.Adam` with learning rate `lr`,
# weight decay `1e-4` and one named group per layer group (`models.param_groups`); every group must be trained
# once unfrozen and follow the schedule from the first epoch; `scheduler = make_scheduler(optimizer)` (or `None`).
# Do not change which parameters are trainable.

# %% nbgrader={"grade": false, "grade_id": "optimizer_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_optimizer(net, lr, make_scheduler=None):
    ### BEGIN SOLUTION
    optimizer = torch.optim.Adam(models.param_groups(net, lr, weight_decay=1e-4))
    return optimizer, (make_scheduler(optimizer) if make_scheduler is not None else None)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "optimizer_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
models.freeze(tiny)  # stage 0: the head alone is trainable
opt, sched = make_optimizer(tiny, 1e-3, lambda o: training.warmup_cosine(o, 1, 4))
assert [g.get("name") for g in opt.param_groups] == list(models.LAYER_GROUPS), \
    "one named optimizer group per layer group (models.param_groups)"
assert grading.optimizer_param_ids(opt) == {id(p) for p in tiny.parameters()}, \
    "register every layer group now, frozen ones included"
### BEGIN HIDDEN TESTS
assert models.trainable_groups(tiny) == ["head"], "make_optimizer must not change which groups are trainable"
assert isinstance(opt, torch.optim.Adam), "use torch.optim.Adam"
assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups), "weight decay 1e-4 in every group"
assert isinstance(sched, torch.optim.lr_scheduler.LambdaLR), "scheduler = make_scheduler(optimizer)"
X, y = next(iter(grading.tiny_loader()))
stem_before = tiny.conv1.weight.detach().clone()
for epoch in range(4):  # progressive unfreezing: one group more per epoch, from the head down
    models.unfreeze(tiny, list(models.LAYER_GROUPS[-1 - epoch:]))
    lrs = [g["lr"] for g in opt.param_groups]
    assert all(math.isclose(lr, lrs[-1]) for lr in lrs), \
        f"epoch {epoch}: every group must follow the schedule, got rates {lrs}"
    before = models.group_parameters(tiny, "layer4")[0].detach().clone()
    opt.zero_grad()
    F.cross_entropy(tiny(X), y).backward()
    opt.step()
    try:
        sched.step()
    except (ValueError, KeyError) as err:
        raise AssertionError(f"the scheduler fails after unfreezing ({err!r}): register every group before "
                             "building the scheduler") from None
    changed = not torch.equal(before, models.group_parameters(tiny, "layer4")[0])
    assert changed == (epoch >= 1), f"epoch {epoch}: layer4 {'is' if changed else 'is not'} trained"
assert torch.equal(stem_before, tiny.conv1.weight), "a frozen group was trained"
assert math.isclose(sched.base_lrs[0], 1e-3) and len(sched.base_lrs) == len(models.LAYER_GROUPS)
tiny = grading.tiny_net()
models.freeze(tiny)
opt, sched = make_optimizer(tiny, 0.01, lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 0.01, total_steps=5))
models.unfreeze(tiny)
opt.step()
try:
    sched.step()
except KeyError as err:
    raise AssertionError(f"OneCycleLR fails ({err!r}): register every group before building it") from None
assert len({round(g["lr"], 12) for g in opt.param_groups}) == 1, "OneCycleLR must schedule every group"
opt, sched = make_optimizer(grading.tiny_net(), 0.1)
assert sched is None and all(g["lr"] == 0.1 for g in opt.param_groups), "no scheduler factory: (optimizer, None)"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Frozen layers keep their BatchNorm statistics
#
# `requires_grad=False` freezes **parameters**. A BatchNorm layer also has **buffers**, `running_mean` and
# `running_var`, which every forward pass in training mode overwrites, gradient or not:

# %%
tiny = grading.tiny_net()
models.freeze(tiny, list(models.LAYER_GROUPS))  # every parameter frozen
stats = tiny.bn1.running_mean.clone()
tiny.train()
with torch.no_grad():
    tiny(next(iter(grading.tiny_loader()))[0])
print("running_mean of a frozen BatchNorm changed:", not torch.equal(stats, tiny.bn1.running_mean))

# %% [markdown]
# > **Common mistake.** Believing `requires_grad_(False)` leaves a layer unchanged: `net.train()` puts its
# > BatchNorm layers in training mode and their statistics drift. **Fix:** after `net.train()`, put the BatchNorm
# > layers whose parameters are all frozen back in eval mode (`training.train` does, unless `freeze_bn_stats=False`).
#
# ### Exercise 3 (3 points, a classic mistake): `keep_frozen_bn_stats`
#
# Write `keep_frozen_bn_stats(net)`, called right after `net.train()`: every BatchNorm layer (subclasses of
# `nn.modules.batchnorm._BatchNorm`) whose parameters are **all** frozen goes to eval mode, every other module keeps
# its mode. Return the sorted names (`net.named_modules()`) of those layers. Do not call
# `training.freeze_frozen_batchnorm`.

# %% nbgrader={"grade": false, "grade_id": "bn_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def keep_frozen_bn_stats(net):
    ### BEGIN SOLUTION
    names = []
    for name, m in net.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.eval()
                names.append(name)
    return sorted(names)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "bn_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
models.freeze(tiny)  # everything but the head
tiny.train()
with mock.patch.object(training, "freeze_frozen_batchnorm",
                       side_effect=AssertionError("write it yourself, not training.freeze_frozen_batchnorm")):
    names = keep_frozen_bn_stats(tiny)
assert "bn1" in names and "layer4.0.bn2" in names, names
assert not tiny.bn1.training and tiny.training, "frozen BatchNorm layers in eval mode, the network itself not"
### BEGIN HIDDEN TESTS
bns = sorted(n for n, m in tiny.named_modules() if isinstance(m, nn.BatchNorm2d))
assert names == bns, f"every frozen BatchNorm layer, nested ones included, sorted: expected {bns}, got {names}"
# stage 2: layer4 unfrozen; its BatchNorm layers keep learning their statistics
tiny = grading.tiny_net()
models.freeze(tiny, ["stem", "layer1", "layer2", "layer3"])
frozen_stats = {n: b.clone() for n, b in tiny.named_buffers() if "running_mean" in n and not n.startswith("layer4")}
l4_stats = tiny.layer4[0].bn1.running_mean.clone()
tiny.train()
with mock.patch.object(training, "freeze_frozen_batchnorm",
                       side_effect=AssertionError("write it yourself, not training.freeze_frozen_batchnorm")):
    names = keep_frozen_bn_stats(tiny)
assert not any(n.startswith("layer4") for n in names), "layer4 is trainable: its BatchNorm stays in train mode"
assert tiny.layer4[0].bn1.training and tiny.layer4.training and tiny.fc.training, \
    "only the frozen BatchNorm layers change mode (do not call net.eval())"
with torch.no_grad():
    tiny(next(iter(grading.tiny_loader()))[0])
for n, b in tiny.named_buffers():
    if n in frozen_stats:
        assert torch.equal(b, frozen_stats[n]), f"{n} drifted: put its BatchNorm layer in eval mode"
assert not torch.equal(l4_stats, tiny.layer4[0].bn1.running_mean), "layer4's statistics must keep updating"
# a BatchNorm with only its weight frozen is not frozen; BatchNorm1d counts too
seq = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.BatchNorm1d(4))
seq[1].requires_grad_(False)
seq[3].weight.requires_grad_(False)
seq.train()
assert keep_frozen_bn_stats(seq) == ["1"], "BatchNorm1d counts; a layer with a trainable parameter stays"
assert not seq[1].training and seq[3].training and seq[0].training
### END HIDDEN TESTS

# %% [markdown]
# After pruning, the same drift is a hidden **repair** (section 6).
#
# ## 4. Learning-rate schedules
#
# Stepped once per epoch: **cosine** decays to 0 along half a cosine; **step** multiplies the rate by `gamma`
# every `step_size` epochs; **plateau** (`ReduceLROnPlateau`) multiplies it by `factor` when the monitored metric,
# here the validation accuracy, has not improved for more than `patience` epochs.
#
# > **Common mistake.** `ReduceLROnPlateau(optimizer, patience=3)` on an accuracy in a short run: the default
# > `mode="min"` cuts the rate while the accuracy *rises*, and a 3-epoch run ends before `patience=3` can act.
# > **Fix:** choose mode and patience from the metric and the number of epochs.
#
# ### Exercise 4 (4 points, seed exercise 3): `make_scheduler`
#
# Write `make_scheduler(name, optimizer, epochs)`: `"cosine"`, a `CosineAnnealingLR` reaching 0 after `epochs`
# epochs; `"step"`, a `StepLR` with `step_size=max(1, epochs // 3)` and `gamma=0.1`; any other name but
# `"plateau"`, a `ValueError`. For `"plateau"`, **choose** the arguments of a `ReduceLROnPlateau` for runs of
# `epochs >= 6` epochs on the validation accuracy so that the rate never drops while the accuracy improves, one
# epoch without improvement (noise: one image is 2 % of the validation split) does not cut it, and a stalled
# accuracy makes it drop **at least twice** within the run. Exercise 8 asks you to justify your choice.

# %% nbgrader={"grade": false, "grade_id": "scheduler_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_scheduler(name, optimizer, epochs):
    ### BEGIN SOLUTION
    sched = torch.optim.lr_scheduler
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.0)
    if name == "step":
        return sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        # an accuracy: mode="max"; patience=1 tolerates one noisy epoch; a drop needs patience + 1 = 2 epochs
        # without improvement, so two drops fit in any run of 6 epochs or more
        return sched.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    raise ValueError(f"unknown scheduler {name!r}; use 'cosine', 'step' or 'plateau'")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "scheduler_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
trace = lambda name, epochs, steps, metrics=None: training.lr_trace(
    lambda opt: make_scheduler(name, opt, epochs), steps=steps, lr=1.0, metrics=metrics)
cos = trace("cosine", 4, 4)
assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(cos, [1.0, 0.8535534, 0.5, 0.1464466])), cos
st = trace("step", 6, 6)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])), st
assert trace("plateau", 6, 6, [0.6, 0.7, 0.8, 0.85, 0.9, 0.95]) == [1.0] * 6, \
    "the accuracy keeps improving: the rate must not drop (mode?)"
### BEGIN HIDDEN TESTS
opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-3)
assert isinstance(make_scheduler("plateau", opt, 10), torch.optim.lr_scheduler.ReduceLROnPlateau), \
    "training.train recognises a ReduceLROnPlateau by its type"
cos = trace("cosine", 10, 11)
expected = [0.5 * (1 + math.cos(math.pi * e / 10)) for e in range(11)]
assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(cos, expected)), \
    f"cosine: T_max=epochs, down to exactly 0 (eta_min=0), stepped per epoch; got {cos}"
st = trace("step", 9, 9)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0] * 3 + [0.1] * 3 + [0.01] * 3)), st
st = trace("step", 2, 3)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0, 0.1, 0.01])), f"step_size is at least 1: {st}"
for epochs in (6, 8, 12, 20):
    rising = [0.5 + 0.02 * e for e in range(epochs)]
    assert trace("plateau", epochs, epochs, rising) == [1.0] * epochs, \
        f"{epochs} epochs, rising accuracy: the rate must not drop (mode='max' for an accuracy)"
    noisy = [0.5 + 0.02 * (e // 2) + (0.01 if e % 2 == 0 else 0.0) for e in range(epochs)]
    assert trace("plateau", epochs, epochs, noisy) == [1.0] * epochs, \
        f"{epochs} epochs: one epoch without improvement between two improvements must not cut the rate (patience)"
    flat = trace("plateau", epochs, epochs, [0.8] * epochs)
    drops = sum(b < a for a, b in zip(flat, flat[1:]))
    assert drops >= 2, (f"{epochs} epochs of a flat accuracy: the rate must drop at least twice within the run, "
                        f"got {flat} (patience too large for the run?)")
    assert 0 < flat[-1] < 1, flat
opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0},
                       {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}])
s = make_scheduler("step", opt, 3)
opt.step(); s.step()
assert [round(g["lr"], 9) for g in opt.param_groups] == [0.1, 0.01], "every parameter group is scheduled"
for bad in ("linear", "Cosine", ""):
    try:
        make_scheduler(bad, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 3)
    except ValueError:
        pass
    else:
        raise AssertionError(f"make_scheduler({bad!r}, ...) must raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# The three schedules over 12 epochs (factor of the initial rate); for the plateau scheduler, a made-up accuracy
# curve that stops improving after epoch 4.

# %%
accuracy_curve = [0.70, 0.80, 0.85, 0.88, 0.90, 0.90, 0.89, 0.90, 0.90, 0.90, 0.91, 0.90]
curves = {name: training.lr_trace(lambda opt: make_scheduler(name, opt, 12), steps=12, lr=1.0,
                                  metrics=accuracy_curve if name == "plateau" else None)
          for name in ("cosine", "step", "plateau")}
for name, lrs in curves.items():
    print(f"{name:>7}:", " ".join(f"{lr:.3f}" for lr in lrs))
plots.plot_lr(curves, xlabel="epoch");


# %% [markdown]
# ## 5. Distillation loss
#
# The uncompressed **teacher**'s output distribution says more than the label. Hinton et al. (2015) soften the
# teacher's and the pruned **student**'s with a temperature $T$:
#
# $$\mathcal{L} = \alpha \, \mathrm{CE}(z_s, y) + (1 - \alpha)\, T^2\, \mathrm{KL}\big(\mathrm{softmax}(z_t / T)\,\|\,\mathrm{softmax}(z_s / T)\big)$$
#
# > **Common mistake.** Swapping the arguments of `F.kl_div(input, target)`, or passing probabilities as `input`.
# > **Fix:** `input` = the student's **log**-probabilities, `target` = the teacher's probabilities,
# > `reduction="batchmean"` (`"mean"` also divides by the number of classes), and the factor $T^2$ (the soft
# > term's gradient shrinks like $1/T^2$).
#
# ### Exercise 5 (4 points, seed exercise 4): `kd_loss`
#
# Write `kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5)`: $\mathcal{L}$ as a scalar tensor
# that gradients flow through to `student_logits`, with `F.cross_entropy`, `F.kl_div`, `F.log_softmax` and
# `F.softmax` (not `training.distillation_loss`).

# %% nbgrader={"grade": false, "grade_id": "kd_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    ### BEGIN SOLUTION
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="batchmean") * T * T
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "kd_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
g = torch.Generator().manual_seed(0)
zs, zt = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g) * 3
y = torch.randint(0, 5, (8,), generator=g)
assert math.isclose(kd_loss(zs, zt, y, T=4.0, alpha=1.0).item(), F.cross_entropy(zs, y).item(), rel_tol=1e-5), \
    "alpha=1: the cross-entropy alone"
assert abs(kd_loss(zt, zt, y, T=4.0, alpha=0.0).item()) < 1e-5, "alpha=0 and student == teacher: 0"
### BEGIN HIDDEN TESTS
with mock.patch.object(training, "distillation_loss",
                       side_effect=AssertionError("write the loss yourself, not training.distillation_loss")):
    # known values: a uniform student (logits 0, 0) and a teacher with probabilities 3/4, 1/4 at T=1
    s1, t1, y1 = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0])
    kl_t1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    got = kd_loss(s1, t1, y1, T=1.0, alpha=0.0).item()
    assert math.isclose(got, kl_t1, rel_tol=1e-4), \
        f"alpha=0, T=1: KL(teacher || student) = {kl_t1:.5f}, got {got:.5f} (KL arguments? log-probabilities?)"
    p = math.sqrt(3) / (1 + math.sqrt(3))  # the teacher at T=2
    kl_t2 = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    got = kd_loss(s1, t1, y1, T=2.0, alpha=0.0).item()
    assert math.isclose(got, 4 * kl_t2, rel_tol=1e-4), \
        f"alpha=0, T=2: T^2 * KL = {4 * kl_t2:.5f}, got {got:.5f} (T^2 factor? temperature on both logits?)"
    got = kd_loss(s1, t1, y1, T=1.0, alpha=0.3).item()
    assert math.isclose(got, 0.3 * math.log(2) + 0.7 * kl_t1, rel_tol=1e-4), \
        f"alpha=0.3: 0.3 * CE + 0.7 * T^2 * KL = {0.3 * math.log(2) + 0.7 * kl_t1:.5f}, got {got:.5f}"
    # per example: a batch of two copies gives the same loss ("batchmean", not "sum" or "mean")
    got = kd_loss(s1.repeat(2, 1), t1.repeat(2, 1), y1.repeat(2), T=2.0, alpha=0.0).item()
    assert math.isclose(got, 4 * kl_t2, rel_tol=1e-4), f"average over the batch (reduction='batchmean'): {got:.5f}"
    assert math.isclose(kd_loss(zs, zt, y).item(), kd_loss(zs, zt, y, T=4.0, alpha=0.5).item()), "defaults"
    # the gradient reaches the student: for the soft term it is T * (softmax(zs/T) - softmax(zt/T)) / batch
    s = zs.clone().requires_grad_()
    kd_loss(s, zt, y, T=4.0, alpha=0.0).backward()
    assert s.grad is not None, "gradients must flow to student_logits (no detach, no .item())"
    want = 4.0 * (F.softmax(zs / 4, dim=1) - F.softmax(zt / 4, dim=1)) / len(zs)
    assert torch.allclose(s.grad, want, atol=1e-5), "wrong gradient of the soft term (T^2? KL direction?)"
    assert kd_loss(zs, zt, y).dim() == 0, "return a scalar"
### END HIDDEN TESTS

# %% [markdown]
# `training.DistillationLoss(teacher, temperature, alpha)` runs the teacher in **eval mode** under
# `torch.no_grad()` and computes the same loss.

# %% [markdown]
# # Part B: prune, then recover
#
# ## 6. The baseline, its pruned copy, and a free repair
#
# The chapter-2 recipe: the pretrained mini ResNet with a new head, fine-tuned for 6 epochs. It is the
# **teacher** of section 11 and must not change: we keep a copy of its weights.

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
example_batch = next(iter(test_iter))[0][:8]

helpers.seed_everything(0)
baseline = models.finetune_net(profile).to(profile.device)
optimizer = torch.optim.SGD(models.param_groups(baseline, 0.05), momentum=0.9, weight_decay=5e-4)
epochs = profile.epochs(6)
history = training.train(baseline, train_iter, valid_iter, optimizer, epochs, progress=False,
                         scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs))
baseline_state = copy.deepcopy(baseline.state_dict())
base_acc = training.evaluate(baseline, test_iter)[1]
print(history)
print(f"baseline test accuracy: {base_acc:.3f}")

# %%
if profile.fast:
    assert base_acc >= 0.85

# %% [markdown]
# `C.prune_global_l1` returns a **copy** with the smallest weights (one global threshold) at zero and keeps the
# **masks** (`weight = weight_orig * weight_mask`): fine-tuning updates `weight_orig`, pruned entries stay zero.
# We prune hard, 98 %, so that recovery has something to do.
#
# > **Common mistake.** Removing the masks (`prune.remove`) **before** fine-tuning: the pruned weights get
# > gradients and grow back. **Fix:** keep the masks while fine-tuning, fold them in for export only
# > (`C.make_permanent`), and check the sparsity after recovery.

# %%
SPARSITY = 0.98
pruned = C.prune_global_l1(baseline, SPARSITY)
pruned_sparsity = C.sparsity(pruned)
for name, m in pruned.named_modules():
    if hasattr(m, "weight_mask"):
        print(f"{name:>22}: {m.weight_mask.numel():>10,} weights, {1 - m.weight_mask.mean().item():6.1%} pruned")
print(f"sparsity {pruned_sparsity:.4f}, non-zero parameters {C.count_nonzero(baseline):,} -> "
      f"{C.count_nonzero(pruned):,}")

# %% [markdown]
# BatchNorm layers still hold the statistics of the **unpruned** network's activations.
# `training.recalibrate_batchnorm` recomputes them over the training batches, without a gradient step:

# %%
recalibrated = training.recalibrate_batchnorm(C.clone(pruned), train_iter)
accuracy = {name: training.evaluate(net, valid_iter)[1]
            for name, net in [("baseline", baseline), ("pruned", pruned), ("recalibrated", recalibrated)]}
print("validation accuracy:", {k: round(v, 3) for k, v in accuracy.items()})

# %%
assert C.sparsity(recalibrated) == pruned_sparsity and C.is_pruned(recalibrated)
if profile.fast:
    assert accuracy["pruned"] < accuracy["recalibrated"] < accuracy["baseline"] - 0.1

# %% [markdown]
# Recalibration is free and repairs part of the damage. Any fine-tuning in training mode does it too, as a side
# effect (section 3), so a method started from `pruned` gets that repair for free. The comparisons below start
# from `recalibrated`: the reference every method must beat.
#
# ## 7. The recovery recipe
#
# Every method fine-tunes a copy of `recalibrated` with your `make_optimizer` (`lr=1e-3`) for `RECOVERY_EPOCHS`
# epochs, once per seed (`profile.seeds(3)`: batches and crops change), and reports the test accuracy's mean and
# standard deviation.
#
# > **Common mistake.** Saving the best checkpoint but returning the **last** epoch's model. **Fix:**
# > `restore_best=True` loads back the epoch with the best **validation** accuracy.

# %%
RECOVERY_EPOCHS = profile.epochs(3)
SEEDS = profile.seeds(3)
results = {}


def recover(name, start=recalibrated, epochs=RECOVERY_EPOCHS, scheduler=None, seeds=SEEDS, **train_kwargs):
    # Fine-tune a copy of `start` once per seed; keep every test accuracy, and the first seed's model and history.
    accs = []
    for seed in seeds:
        net = C.clone(start)
        helpers.seed_everything(seed)
        optimizer, sched = make_optimizer(net, 1e-3, scheduler)
        history = training.train(net, train_iter, valid_iter, optimizer, epochs, scheduler=sched,
                                 restore_best=True, progress=False, **train_kwargs)
        models.unfreeze(net)
        accs.append(training.evaluate(net, test_iter)[1])
        if len(accs) == 1:
            results[name] = {"net": net, "history": history}
    results[name]["test_acc"] = accs
    curve = [round(a, 3) for a in results[name]["history"]["valid_acc"]]
    mean, sd = plots.mean_std(accs)
    print(f"{name:>13}: validation acc per epoch (first seed) {curve}; "
          f"test acc {mean:.3f} ± {sd:.3f} ({len(accs)} seeds)")


recover("full")

# %%
full = results["full"]
h = full["history"]
assert h.best_valid_acc == h["valid_acc"][h.best_epoch - 1]
assert training.evaluate(full["net"], valid_iter)[1] == h.best_valid_acc, "the best epoch was restored"
assert C.sparsity(full["net"]) == pruned_sparsity, "the masks keep the pruned weights at zero"
if profile.fast:
    assert plots.mean_std(full["test_acc"])[0] > training.evaluate(recalibrated, test_iter)[1] + 0.05


# %% [markdown]
# ## 8. With and without gradient clipping
#
# The total gradient norm on a few batches (`clip_grad_norm_` with an infinite threshold clips nothing):

# %%
def gradient_norms(net, batches=6):
    net = C.clone(net).train()
    norms = []
    for i, (X, y) in enumerate(train_iter):
        if i == batches:
            break
        net.zero_grad()
        F.cross_entropy(net(X.to(profile.device)), y.to(profile.device)).backward()
        norms.append(torch.nn.utils.clip_grad_norm_(net.parameters(), float("inf")).item())
    return norms


norms = gradient_norms(recalibrated)
print("gradient norms:", [round(n, 2) for n in norms], f"- above max_norm=1.0: {sum(n > 1.0 for n in norms)}")
recover("full + clip", clip_grad_norm=1.0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "clip_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 6 (2 points, written, seed exercise 1)
#
# Compare `full` and `full + clip` (means, spreads, gradient norms). Did clipping at `max_norm=1.0` change
# anything, and why? Consider how often the threshold was exceeded and what **Adam** does with a gradient
# multiplied by a constant. When would you expect clipping to matter?

# %% [markdown] nbgrader={"grade": true, "grade_id": "clip_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# The two means differ by less than the seed-to-seed spread: clipping changed nothing measurable. The threshold
# was exceeded on some batches, by a small factor, so only those steps were shortened. More importantly, Adam
# divides each step by a running estimate of the gradient's RMS: multiplying the gradient by a constant leaves
# Adam's step almost unchanged (only the clipped batches' weight in the running averages changes). Clipping
# matters with plain SGD (the step is proportional to the gradient), with large learning rates, at the start of
# fine-tuning when a fresh head or a badly damaged model produces gradient spikes, and in deep or recurrent
# networks with exploding gradients: a safety net against rare large steps, not a way to recover accuracy.
# ### END SOLUTION
#

# %% [markdown]
# ## 9. Progressive unfreezing against full fine-tuning
#
# > **Common mistake.** Stage 0 trains **every** layer, then each stage freezes more of the first layers: that is
# > progressive *freezing*. **Fix:** progressive *unfreezing* starts with the head alone and unfreezes one group
# > more per stage **toward the input**.
#
# A callback unfreezes one group per epoch; `training.StageRecorder` records the trainable optimizer groups;
# `training.train` keeps frozen BatchNorm layers in eval mode (exercise 3).

# %%
class Unfreezer:
    def on_epoch_start(self, epoch, net, optimizer):
        models.freeze(net, models.LAYER_GROUPS)
        models.unfreeze(net, list(models.LAYER_GROUPS[-1 - epoch:]))


recorder = training.StageRecorder()
recover("progressive", callbacks=[Unfreezer(), recorder])
print("trainable groups per epoch (seed 0):", recorder.stages[:RECOVERY_EPOCHS])

# %%
assert recorder.stages[:3] == [["head"], ["layer4", "head"], ["layer3", "layer4", "head"]][:RECOVERY_EPOCHS]
progressive = results["progressive"]["net"]
assert C.sparsity(progressive) == pruned_sparsity
for key, value in recalibrated.state_dict().items():  # never unfrozen: untouched, BatchNorm statistics included
    if key.split(".")[0] in ("conv1", "bn1", "layer1", "layer2"):
        assert torch.equal(progressive.state_dict()[key], value), key

# %% [markdown] nbgrader={"grade": false, "grade_id": "unfreezing_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 7 (3 points, written, seed exercise 2)
#
# Compare `progressive` with `full` (means and spreads, and the validation accuracy per epoch). Which layers did
# pruning hit hardest (table of section 6), and which could each method repair in `RECOVERY_EPOCHS` epochs?
# Progressive unfreezing was designed for a pretrained body under a **new, random** head: is that the situation
# after compression? When would you still use it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "unfreezing_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Progressive unfreezing recovers much less than full fine-tuning, by far more than the spread of either: in its
# first epoch only the head trains, and the head was not the problem, so the validation accuracy hardly moves; by
# the last epoch only `layer3`, `layer4` and the head have been trained, briefly. Global pruning at 98 % removed
# most weights everywhere (nearly all of the large `layer4`, a large share of the lower layers), so the damage is
# spread over every group; full fine-tuning repairs all of them from the first step, progressive unfreezing never
# touches `stem`, `layer1` and `layer2`. Progressive unfreezing protects good pretrained features from the large,
# random gradients of a new head; after compression there is no new head and the features themselves are damaged,
# so full fine-tuning at a small rate is the better default. It stays useful when the compressed model also gets
# a new head (a new task), with very little fine-tuning data (fewer trainable parameters, less overfitting), or
# when only the upper layers were compressed.
# ### END SOLUTION
#

# %% [markdown]
# ## 10. Cosine, step and plateau
#
# Your schedulers over `SCHEDULE_EPOCHS` epochs, enough for your plateau scheduler to act, with the seeds of
# section 7. The printed rates and the curves are the first seed's.

# %%
SCHEDULE_EPOCHS = profile.epochs(6)
for name in ("cosine", "step", "plateau"):
    recover(name, epochs=SCHEDULE_EPOCHS,
            scheduler=lambda opt, name=name: make_scheduler(name, opt, SCHEDULE_EPOCHS))
used = {name: [row["lrs"][-1] for row in results[name]["history"].rows] for name in ("cosine", "step", "plateau")}
for name, lrs in used.items():
    print(f"{name:>8}: learning rate per epoch {[f'{lr:.1e}' for lr in lrs]}")
plots.plot_history({name: results[name]["history"] for name in ("full", "cosine", "step", "plateau")},
                   metrics=("train_loss", "valid_acc"));

# %% [markdown] nbgrader={"grade": false, "grade_id": "scheduler_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 8 (2 points, written, seed exercise 3)
#
# Justify the arguments you gave `ReduceLROnPlateau` in exercise 4 from the schedule (how many epochs does one
# drop need?). Did it reduce the rate in this run, and when? What does each schedule need to know in advance, and
# which one would you pick for a short recovery budget? Are the differences larger than the noise?

# %% [markdown] nbgrader={"grade": true, "grade_id": "scheduler_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# `mode="max"` because the monitored metric is an accuracy; `patience=1` because one epoch without improvement
# is often noise (one image is 2 % of the validation split); `factor=0.5`. A drop needs `patience + 1` = 2 epochs
# without improvement, so two drops need at least 4 of the 5 epochs after the first: 6 epochs is the minimum run
# (with `patience=3`, a value often copied from examples, a drop needs 4 epochs, and a 3-epoch run can never see
# one). Read the printed rates: in our first seed the validation accuracy reached a new best in every epoch but
# one, so the rate never dropped and plateau was plain fine-tuning at 1e-3 for 6 epochs; it drops only after two
# epochs without a new best. Over 3 seeds (our run, test): plateau 0.85 ± 0.01, cosine 0.82 ± 0.02, step
# 0.77 ± 0.02, and `full` (3 epochs) 0.79 ± 0.01. Step is behind the other two by more than the spread: it spends
# two thirds of the run at 10x and 100x smaller rates. Cosine against plateau is one to two spreads apart, not a
# ranking to rely on; and the 6-epoch runs beat `full` mostly because they train twice as long. Cosine and step
# need the number of epochs in advance (step also its milestones); plateau needs no budget but reacts late and
# needs a reliable validation metric every epoch. For a short, known recovery budget, cosine is the simple,
# predictable choice; plateau suits long runs of unknown length.
# ### END SOLUTION
#

# %% [markdown]
# ## 11. Distillation from the uncompressed teacher
#
# Teacher: the baseline; $T=4$, $\alpha=0.5$. `training.DistillationLoss` must agree with your `kd_loss`.

# %%
teacher = baseline
kd = training.DistillationLoss(teacher, temperature=4.0, alpha=0.5)
X, y = [t.to(profile.device) for t in next(iter(train_iter))]
student = C.clone(recalibrated).eval()  # eval: this check must not change the student's BatchNorm statistics
with torch.no_grad():
    kd_matches = torch.allclose(kd(student(X), y, X), kd_loss(student(X), teacher(X), y, T=4.0, alpha=0.5),
                                atol=1e-5)
recover("distillation", loss=kd)

# %%
assert kd_matches, "kd_loss and training.DistillationLoss disagree"
assert not teacher.training, "the teacher stays in eval mode"
assert all(torch.equal(v, baseline_state[k]) for k, v in teacher.state_dict().items()), "the teacher changed"

# %% [markdown]
# ## 12. All the results
#
# Mean test accuracy per method, one standard deviation as error bar, each seed as a dot:

# %%
references = {"baseline": base_acc, "recalibrated (start)": training.evaluate(recalibrated, test_iter)[1]}
plots.plot_seed_bars({name: r["test_acc"] for name, r in results.items()}, references=references);
rows = [C.measure(C.clone(net).cpu(), test_iter, example_batch, method=name) for name, net in
        [("baseline", baseline), ("pruned", pruned), ("recalibrated", recalibrated),
         ("full (seed 0)", results["full"]["net"])]]
C.print_table(rows)

# %%
for name, r in results.items():
    assert C.sparsity(r["net"]) == pruned_sparsity, name

# %% [markdown]
# For export, `C.make_permanent` folds the masks into a copy's weights:

# %%
exported = C.make_permanent(results["full"]["net"])
print(f"{C.serialized_size(baseline):,} -> {C.serialized_size(exported):,} bytes (zlib)")

# %%
assert not C.is_pruned(exported) and C.sparsity(exported) == pruned_sparsity
assert training.evaluate(exported, test_iter)[1] == training.evaluate(results["full"]["net"], test_iter)[1]

# %% [markdown] nbgrader={"grade": false, "grade_id": "kd_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 9 (3 points, written, seed exercise 4)
#
# Analyse the impact of distillation: compare `distillation` with `full` (same recipe, cross-entropy only) on
# the chart. Is the difference larger than the spread? Give two reasons for what you see in this setting, and
# describe a setting where you would expect distillation to help more. What does it cost per training step?

# %% [markdown] nbgrader={"grade": true, "grade_id": "kd_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Distillation recovers **less** than plain fine-tuning here (in our run about 0.72 ± 0.05 against 0.79 ± 0.01
# over 3 seeds: a gap larger than either spread, though with three seeds each, not a precise one), so the teacher
# hurt. Reasons: (1) with 2 classes and $T=4$ the softened teacher targets are close to uniform and carry little
# "dark knowledge" beyond the label, while they take half the loss ($\alpha=0.5$): the label signal a badly
# damaged student needs in 3 epochs is halved; (2) a student with 2 % of the weights cannot imitate the teacher's
# function, and the teacher itself is only about 90 % accurate, so imitation also copies its errors. Distillation
# helps with many classes (1,000 ImageNet classes: the wrong classes' probabilities say much), a student with enough
# capacity, longer training, little labelled data or noisy labels, and unlabelled data the teacher can label; a
# larger $\alpha$ or a lower $T$ would be the first things to try here. The cost is one teacher forward pass per
# step (no backward pass), about a third more compute, and the teacher's memory.
# ### END SOLUTION
#

# %% [markdown]
# ## 13. After quantization: quantization-aware fine-tuning
#
# An int8 model has no float parameters for an optimizer: recovery is **quantization-aware training** (QAT).
# `C.prepare_qat` makes a float copy that *simulates* int8 (fake quantization), fine-tuned like any model (on
# `profile.device`); `C.convert_qat` produces the int8 model. int8 kernels run on the **CPU only**: quantization,
# conversion and int8 evaluation use a CPU copy.

# %%
cpu_baseline = copy.deepcopy(baseline).cpu()
static_int8 = C.quantize_static(cpu_baseline, train_iter)
qat = C.prepare_qat(cpu_baseline).to(profile.device)
helpers.seed_everything(0)
qat_history = training.train(qat, train_iter, valid_iter, torch.optim.SGD(qat.parameters(), lr=1e-3, momentum=0.9),
                             profile.epochs(1), progress=False)
qat_int8 = C.convert_qat(qat.cpu())
static_acc, qat_acc = training.evaluate(static_int8, test_iter)[1], training.evaluate(qat_int8, test_iter)[1]
print(f"test accuracy: baseline {base_acc:.3f}, static int8 {static_acc:.3f}, QAT int8 {qat_acc:.3f}")

# %%
assert len(C.quantized_layers(qat_int8)) > 0 and sum(1 for _ in qat_int8.parameters()) == 0
assert all(torch.equal(v.cpu(), baseline_state[k].cpu()) for k, v in baseline.state_dict().items()), "baseline changed"

# %% [markdown]
# Static int8 loses almost nothing here, so QAT only shows the mechanics. It pays off when post-training
# quantization loses accuracy (compact models, low-bit formats, pruned models: `C.prepare_qat` keeps the masks).
#
# ## Summary
#
# - Recalibrate BatchNorm after pruning (free); compare recovery methods from there, over seeds, against the spread.
# - Fine-tune with the masks in force; restore the best epoch chosen on validation; test once per final model.
# - Register every layer group before building the scheduler; keep frozen BatchNorm layers in eval mode.
# - After compression the damage is everywhere: full fine-tuning beats progressive unfreezing; clipping is a
#   safety net; plateau needs `patience + 1` epochs per drop; distillation helps most with many classes.
# - After int8 quantization, recover with quantization-aware training.
#
# Points: exercises 1-5 (code, autograded) 3 + 3 + 3 + 4 + 4, exercises 6-9 (written) 2 + 3 + 2 + 3: 27 in all.
#
# ## Full profile
#
# `COURSE_PROFILE=full make lab` runs the chapter on the real ResNet-18 and the d2l hotdog data, on a GPU when
# there is one (int8 on the CPU); whether the methods separate beyond the seed spread there is the experiment to run.
