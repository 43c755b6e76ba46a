# %% [markdown]
# # Chapter 5: Recovering accuracy after compression
#
# Chapter 4 compressed a fine-tuned model and accuracy paid for it. Here a **short fine-tuning of the compressed
# model** gets it back without undoing the compression. Part A writes the tools (exercises 1-5, each tested in a
# second on a tiny network); Part B prunes the mini model, recovers with each tool over a few seeds and asks you
# to interpret the measurements (exercises 6-9). The exercises follow *Fine-tuning Post-Compression* (section 25.3
# of a French course on model compression) and correct its mistakes. Every comparison is made on the
# **validation** split; the test set is measured once, at the end, for the recipe chosen on validation.

# %%
import contextlib
import copy
import math
from unittest import mock

import torch
from torch import nn
from torch.nn import functional as F

import helpers
from helpers import compression as C
from helpers import data, grading, models, plots, training
from helpers.compression import recovery

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
# ### Exercise 1 (3 points; *Fine-tuning Post-Compression*, exercise 1): `clip_gradients`
#
# Write `clip_gradients(parameters, max_norm)` with tensor operations (the tests block
# `torch.nn.utils.clip_grad_norm_` and its parts `get_total_norm` and `clip_grads_with_norm_`):
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
def no_clip_helper():
    """Inside this block PyTorch's clip_grad_norm_ (however it was imported) and its two parts raise."""
    stack = contextlib.ExitStack()
    error = AssertionError("exercise 1 asks for tensor operations: the tests block torch.nn.utils.clip_grad_norm_ "
                           "and its parts get_total_norm and clip_grads_with_norm_")
    for name in ("clip_grad._get_total_norm", "clip_grad._clip_grads_with_norm_", "get_total_norm",
                 "clip_grads_with_norm_"):
        stack.enter_context(mock.patch(f"torch.nn.utils.{name}", side_effect=error))
    return stack


a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)
a.grad, b.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([[0.0, 4.0], [0.0, 0.0]])  # total norm 5
with no_clip_helper():
    norm = clip_gradients([a, b], max_norm=1.0)
assert isinstance(norm, float) and math.isclose(norm, 5.0, rel_tol=1e-6), \
    f"return the total norm before clipping as a Python float: expected 5.0, got {norm!r}"
assert torch.allclose(a.grad, torch.tensor([0.6, 0.0, 0.0]), atol=1e-5) and \
    torch.allclose(b.grad, torch.tensor([[0.0, 0.8], [0.0, 0.0]]), atol=1e-5), \
    f"one norm for all tensors, every gradient times 1/5 in place: got {a.grad} and {b.grad}"
### BEGIN HIDDEN TESTS
with no_clip_helper():
    # below the threshold: nothing changes (no scaling *up*)
    a.grad, b.grad = torch.tensor([0.3, 0.0, 0.0]), torch.tensor([[0.0, 0.4], [0.0, 0.0]])
    got = clip_gradients([a, b], 1.0)
    assert math.isclose(got, 0.5, rel_tol=1e-6), f"the total norm is 0.5, got {got}"
    assert torch.equal(a.grad, torch.tensor([0.3, 0.0, 0.0])), "below max_norm the gradients must not change"
    # one norm for all tensors: each tensor (1.2 and 1.6) below max_norm=1.7, the total (2.0) above it
    a.grad, b.grad = torch.tensor([1.2, 0.0, 0.0]), torch.tensor([[0.0, 1.6], [0.0, 0.0]])
    got = clip_gradients([a, b], 1.7)
    assert math.isclose(got, 2.0, rel_tol=1e-6), f"the total norm is 2.0, got {got}"
    assert torch.allclose(a.grad / b.grad.sum(), torch.tensor([0.75, 0.0, 0.0]), atol=1e-6), \
        "all gradients are scaled by the same factor (one total norm), the direction is kept"
    assert torch.allclose(a.grad, torch.tensor([1.02, 0.0, 0.0]), atol=1e-4), \
        f"each tensor below max_norm, the total above: scale by 1.7 / 2.0; got {a.grad}"
    # the direction is kept (clip_grad_value_ would clamp each element)
    c = torch.zeros(2, requires_grad=True)
    c.grad = torch.tensor([10.0, 1.0])
    clip_gradients([c], 1.0)
    assert math.isclose((c.grad[0] / c.grad[1]).item(), 10.0, rel_tol=1e-5), "clip by norm, not by value"
    assert clip_gradients([torch.zeros(2, requires_grad=True)], 1.0) == 0.0, "no gradient at all: return 0.0"
# a whole network, parameters given as a generator, compared with PyTorch's clip_grad_norm_ (outside the block)
tiny, ref = grading.tiny_net(), grading.tiny_net()
X, y = next(iter(grading.tiny_loader()))
for net_ in (tiny, ref):
    F.cross_entropy(net_(X) * 20, y).backward()
tiny.fc.bias.grad = None  # ignored
ref.fc.bias.grad = None
for max_norm in (0.05, float("inf")):
    expected = torch.nn.utils.clip_grad_norm_(ref.parameters(), max_norm).item()
    with no_clip_helper():
        got = clip_gradients(tiny.parameters(), max_norm)
    assert math.isclose(got, expected, rel_tol=1e-5), f"max_norm={max_norm}: total norm {expected}, got {got}"
    for (n, p), q in zip(tiny.named_parameters(), ref.parameters()):
        assert (p.grad is None) == (q.grad is None), f"{n}: a gradient that was None must stay None"
        if p.grad is not None:
            assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-7), \
                f"{n}: gradients differ from clip_grad_norm_ (a generator can be iterated only once)"
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
# The optimizer's keyword arguments (`lr=`, `weight_decay=`, ...) are **defaults**: a group that has its own key
# keeps its own value.
#
# > **Common mistake.** Passing `weight_decay=1e-4` to the optimizer while every group carries
# > `"weight_decay": 0.0` (as a helper that excludes some groups from decay may write): the group's key wins and
# > the model trains with **no** weight decay, without an error or a warning. **Fix:** put a key in a group only
# > where that group must differ, and read `optimizer.param_groups` back after building the optimizer.
# > (`models.param_groups` writes a `weight_decay` key only when you pass it one.)

# %%
groups_with_key = [{**g, "weight_decay": 0.0} for g in models.param_groups(tiny, 1e-3)]
for label, groups in [("models.param_groups", models.param_groups(tiny, 1e-3)),
                      ("groups with weight_decay 0.0", groups_with_key)]:
    opt = torch.optim.Adam(groups, lr=1e-3, weight_decay=1e-4)
    print(f"Adam(..., weight_decay=1e-4) on {label}: {[g['weight_decay'] for g in opt.param_groups]}")

# %% [markdown]
# ### Exercise 2 (3 points, a classic mistake): `make_optimizer`
#
# Write `make_optimizer(net, lr, make_scheduler=None)`, called once **before** progressive unfreezing starts
# (some groups still frozen), returning `(optimizer, scheduler)`:
#
# - `torch.optim.Adam` (Adam's weight decay, not AdamW's) with learning rate `lr` and weight decay `1e-4` in
#   every group, one named group per layer group, in order (`models.param_groups`);
# - `scheduler = make_scheduler(optimizer)` on the optimizer you return (or `None` without a factory); do not step
#   it: every group, frozen or not, must follow the schedule from the first epoch and be trained once unfrozen;
# - do not change which parameters are trainable.

# %% nbgrader={"grade": false, "grade_id": "optimizer_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_optimizer(net, lr, make_scheduler=None):
    ### BEGIN SOLUTION
    optimizer = torch.optim.Adam(models.param_groups(net, lr, weight_decay=1e-4))
    return optimizer, (make_scheduler(optimizer) if make_scheduler is not None else None)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "optimizer_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
with grading.blocked([recovery.optimizer],
                     "write make_optimizer yourself, not with helpers.compression.recovery.optimizer"):
    tiny = grading.tiny_net()
    models.freeze(tiny)  # stage 0: the head alone is trainable
    opt, sched = make_optimizer(tiny, 1e-3, lambda o: training.warmup_cosine(o, 1, 4))  # x0.1, then x1, ...
    assert [g.get("name") for g in opt.param_groups] == list(models.LAYER_GROUPS), \
        "one named optimizer group per layer group, in order (models.param_groups)"
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert all(math.isclose(v, 1e-4) for v in lrs.values()), \
        f"epoch 0: every group, frozen or not, follows the warmup (1e-3 x 0.1), got {lrs}"
    models.unfreeze(tiny, ["layer4", "head"])  # stage 1
    X, y = next(iter(grading.tiny_loader()))
    F.cross_entropy(tiny(X), y).backward()
    opt.step()
    try:
        sched.step()
    except (ValueError, KeyError) as err:
        raise AssertionError(f"the scheduler fails after unfreezing ({err!r}): register every group before "
                             "building the scheduler") from None
### BEGIN HIDDEN TESTS
    assert sched.optimizer is opt, "build the scheduler on the optimizer you return: make_scheduler(optimizer)"
    assert type(opt) is torch.optim.Adam and not opt.param_groups[0].get("decoupled_weight_decay", False), \
        "use torch.optim.Adam (Adam's weight decay), not AdamW"
    wds = [g["weight_decay"] for g in opt.param_groups]
    assert all(w == 1e-4 for w in wds), f"weight decay 1e-4 in every group (a group key beats the default): {wds}"
    tiny = grading.tiny_net()
    models.freeze(tiny)
    opt, sched = make_optimizer(tiny, 1e-3, lambda o: training.warmup_cosine(o, 1, 4))
    assert models.trainable_groups(tiny) == ["head"], "make_optimizer must not change which groups are trainable"
    assert grading.optimizer_param_ids(opt) == {id(p) for p in tiny.parameters()}, \
        "every parameter in the optimizer, frozen ones included"
    stem_before = tiny.conv1.weight.detach().clone()
    schedule = [0.1, 1.0, 0.75, 0.25]  # warmup_cosine(opt, 1, 4), per epoch
    for epoch in range(4):  # progressive unfreezing: one group more per epoch, from the head down
        models.unfreeze(tiny, list(models.LAYER_GROUPS[-1 - epoch:]))
        lrs = [g["lr"] for g in opt.param_groups]
        assert all(math.isclose(lr, 1e-3 * schedule[epoch]) for lr in lrs), \
            f"epoch {epoch}: every group must follow the schedule ({1e-3 * schedule[epoch]:.2e}), got rates {lrs}"
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
    for start in ([], ["stem", "layer1", "layer2", "layer3"]):  # other starting stages
        tiny = grading.tiny_net()
        models.freeze(tiny, start)
        expected = models.trainable_groups(tiny)
        make_optimizer(tiny, 1e-3)
        assert models.trainable_groups(tiny) == expected, \
            f"make_optimizer must not change which groups are trainable: {expected} before, " \
            f"{models.trainable_groups(tiny)} after"
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
    assert sched is None and all(g["lr"] == 0.1 for g in opt.param_groups), \
        "no scheduler factory: (optimizer, None), every group at lr"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Keep the best epoch, and return it
#
# *Fine-tuning Post-Compression* saves the weights each time the validation accuracy improves
# (`torch.save(self.model.state_dict(), 'best_finetuned.pth')`), returns the best accuracy, and leaves the
# model of the **last** epoch in `self.model`: the checkpoint is written and never read back, so the model you
# deploy is not the one whose accuracy you report. fastai's `SaveModelCallback` saves the best epoch and loads
# it back at the end of training.
#
# Keeping the best weights in memory has a trap of its own: `net.state_dict()` holds the parameters and buffers
# **themselves**, not a copy, and `optimizer.step()` updates them in place:

# %%
tiny = grading.tiny_net()
saved = tiny.state_dict()
with torch.no_grad():
    tiny.fc.weight.add_(1.0)  # an in-place update, as optimizer.step() makes
print("the 'saved' state followed the update:", torch.equal(saved["fc.weight"], tiny.fc.weight))

# %% [markdown]
# > **Common mistake.** Saving the best checkpoint but returning the last epoch's model; or keeping
# > `best = net.state_dict()`, which the next steps overwrite. **Fix:** keep a **copy** of the whole state
# > (`copy.deepcopy(net.state_dict())`: parameters and buffers, BatchNorm statistics included) and load it back
# > into the model at the end (`net.load_state_dict(...)`). `training.train(..., restore_best=True)` does this.
#
# ### Exercise 3 (3 points, a classic mistake): `KeepBest`
#
# Write a class `KeepBest` (no constructor argument) with two methods:
#
# - `update(net, epoch, valid_acc)`, called after each epoch's validation: when `valid_acc` is **strictly**
#   better than at every earlier call (a tie keeps the earlier epoch; the first call always counts), keep a copy
#   of `net`'s state (parameters **and** buffers) that later training cannot change, remember `epoch`, and
#   return `True`; otherwise return `False`. `update` must not change `net`.
# - `restore(net)`: load the best state back into `net` itself (in place) and return the best epoch; called
#   before any `update`, raise a `RuntimeError` that says so.

# %% nbgrader={"grade": false, "grade_id": "keepbest_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
class KeepBest:
    def __init__(self):
        ### BEGIN SOLUTION
        self.best_acc, self.best_epoch, self.state = -math.inf, None, None
        ### END SOLUTION

    def update(self, net, epoch, valid_acc):
        ### BEGIN SOLUTION
        if self.state is not None and not valid_acc > self.best_acc:
            return False
        self.best_acc, self.best_epoch = valid_acc, epoch
        self.state = copy.deepcopy(net.state_dict())
        return True
        ### END SOLUTION

    def restore(self, net):
        ### BEGIN SOLUTION
        if self.state is None:
            raise RuntimeError("nothing to restore: call update(net, epoch, valid_acc) after each epoch first")
        net.load_state_dict(self.state)
        return self.best_epoch
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "keepbest_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def train_step(net, opt):  # one in-place optimizer step in training mode (BatchNorm statistics move too)
    X, y = next(iter(grading.tiny_loader()))
    net.train()
    opt.zero_grad()
    F.cross_entropy(net(X), y).backward()
    opt.step()


tiny = grading.tiny_net()
opt = torch.optim.SGD(tiny.parameters(), lr=0.5)
keeper, states = KeepBest(), {}
for epoch, acc in [(1, 0.6), (2, 0.8), (3, 0.7)]:  # the best epoch is 2
    train_step(tiny, opt)
    states[epoch] = copy.deepcopy(tiny.state_dict())
    keeper.update(tiny, epoch, acc)
assert keeper.restore(tiny) == 2, "restore returns the best epoch (2, accuracy 0.8)"
for k, v in tiny.state_dict().items():
    assert torch.equal(v, states[2][k]), \
        f"after restore, {k} must be epoch 2's: keep a copy of the whole state (not net.state_dict() itself, " \
        "which the next optimizer.step() changes) and load it back into net"
### BEGIN HIDDEN TESTS
tiny = grading.tiny_net()
opt = torch.optim.SGD(tiny.parameters(), lr=0.5)
keeper, states, returned = KeepBest(), {}, []
for epoch, acc in [(1, 0.0), (2, 0.5), (3, 0.5), (4, 0.4)]:  # a tie at epoch 3 keeps epoch 2
    train_step(tiny, opt)
    states[epoch] = copy.deepcopy(tiny.state_dict())
    returned.append(keeper.update(tiny, epoch, acc))
    assert all(torch.equal(v, states[epoch][k]) for k, v in tiny.state_dict().items()), \
        "update must not change the network"
assert returned == [True, True, False, False], \
    f"update returns True for a strictly better accuracy (the first call always counts, a tie does not): {returned}"
params = [id(p) for p in tiny.parameters()]
assert keeper.restore(tiny) == 2, "a tie is not an improvement: the earlier epoch (2) is kept"
assert [id(p) for p in tiny.parameters()] == params, "restore loads the state into the same parameters, in place"
for k, v in tiny.state_dict().items():
    assert torch.equal(v, states[2][k]), f"{k}: restore epoch 2's parameters and buffers (BatchNorm statistics)"
train_step(tiny, opt)  # training after a restore must not change the kept copy
assert keeper.restore(tiny) == 2 and all(torch.equal(v, states[2][k]) for k, v in tiny.state_dict().items()), \
    "the kept copy must not share memory with the network, even after a restore"
# another architecture: the buffers of a BatchNorm1d are restored too; two keepers do not share their state
seq = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
seq_keeper, other = KeepBest(), KeepBest()
seq_keeper.update(seq, 1, 0.9)
mean_before = seq[1].running_mean.clone()
seq.train()
seq(torch.randn(8, 3) + 5)
seq_keeper.update(seq, 2, 0.8)
assert seq_keeper.restore(seq) == 1 and torch.equal(seq[1].running_mean, mean_before), \
    "restore the buffers too (BatchNorm running statistics): the whole state_dict"
try:
    other.restore(seq)
except RuntimeError:
    pass
else:
    raise AssertionError("restore before any update must raise a RuntimeError (each KeepBest keeps its own state)")
### END HIDDEN TESTS


# %% [markdown]
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
# ### Exercise 4 (4 points; *Fine-tuning Post-Compression*, exercise 3): `make_scheduler`
#
# Write `make_scheduler(name, optimizer, epochs)`:
#
# - `"cosine"`: a `CosineAnnealingLR` reaching 0 after `epochs` epochs (1 point);
# - `"step"`: a `StepLR` with `step_size=max(1, epochs // 3)` and `gamma=0.1`; any other name but `"plateau"`:
#   a `ValueError` (1 point);
# - `"plateau"`: a `ReduceLROnPlateau` whose arguments you **choose** for runs of `epochs >= 6` epochs on the
#   validation accuracy, so that the rate never drops while the accuracy improves (1 point), one epoch without
#   improvement (noise) does not cut it, and a stalled accuracy makes it drop **at least twice** within the run
#   (1 point). Exercise 8 asks you to justify your choice.
#
# Each point is a test cell of its own.

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


# %% nbgrader={"grade": false, "grade_id": "scheduler_trace", "locked": true, "schema_version": 3, "solution": false, "task": false}
def trace(name, epochs, steps, metrics=None):  # the rate of each epoch (initial rate 1.0), for the tests below
    with grading.blocked([recovery.scheduler],
                         "write make_scheduler yourself, not with helpers.compression.recovery.scheduler"):
        return training.lr_trace(lambda opt: make_scheduler(name, opt, epochs), steps=steps, lr=1.0, metrics=metrics)


# %% nbgrader={"grade": true, "grade_id": "scheduler_cosine_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
cos = trace("cosine", 4, 4)
assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(cos, [1.0, 0.8535534, 0.5, 0.1464466])), \
    f"cosine over 4 epochs: [1.0, 0.854, 0.5, 0.146], got {cos}"
### BEGIN HIDDEN TESTS
cos = trace("cosine", 10, 11)
expected = [0.5 * (1 + math.cos(math.pi * e / 10)) for e in range(11)]
assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(cos, expected)), \
    f"cosine: T_max=epochs, down to exactly 0 (eta_min=0), stepped per epoch; got {cos}"
opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0},
                       {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}])
s = make_scheduler("cosine", opt, 2)
opt.step(); s.step()
assert [round(g["lr"], 9) for g in opt.param_groups] == [0.5, 0.05], "cosine: every parameter group is scheduled"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "scheduler_step_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
st = trace("step", 6, 6)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])), \
    f"step over 6 epochs: x0.1 every 2 epochs, got {st}"
### BEGIN HIDDEN TESTS
st = trace("step", 9, 9)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0] * 3 + [0.1] * 3 + [0.01] * 3)), \
    f"step over 9 epochs: x0.1 every 3 epochs, got {st}"
st = trace("step", 2, 3)
assert all(math.isclose(a, b) for a, b in zip(st, [1.0, 0.1, 0.01])), f"step_size is at least 1: {st}"
opt = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 1.0},
                       {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1}])
s = make_scheduler("step", opt, 3)
opt.step(); s.step()
assert [round(g["lr"], 9) for g in opt.param_groups] == [0.1, 0.01], "step: every parameter group is scheduled"
for bad in ("linear", "Cosine", ""):
    try:
        make_scheduler(bad, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), 3)
    except ValueError:
        pass
    else:
        raise AssertionError(f"make_scheduler({bad!r}, ...) must raise ValueError")
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "scheduler_plateau_mode_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
assert trace("plateau", 6, 6, [0.6, 0.7, 0.8, 0.85, 0.9, 0.95]) == [1.0] * 6, \
    "plateau: the accuracy keeps improving, the rate must not drop (mode='max' for an accuracy)"
### BEGIN HIDDEN TESTS
opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1e-3)
assert isinstance(make_scheduler("plateau", opt, 10), torch.optim.lr_scheduler.ReduceLROnPlateau), \
    "plateau: a ReduceLROnPlateau (training.train recognises it by its type and steps it with the accuracy)"
for epochs in (6, 8, 12, 20):
    rising = [0.5 + 0.02 * e for e in range(epochs)]
    assert trace("plateau", epochs, epochs, rising) == [1.0] * epochs, \
        f"plateau, {epochs} epochs, rising accuracy: the rate must not drop (mode='max' for an accuracy)"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "scheduler_plateau_patience_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
flat = trace("plateau", 6, 6, [0.8] * 6)
assert sum(b < a for a, b in zip(flat, flat[1:])) >= 2, \
    f"plateau: 6 epochs of a flat accuracy must cut the rate at least twice, got {flat} (patience too large?)"
### BEGIN HIDDEN TESTS
for epochs in (6, 8, 12, 20):
    noisy = [0.5 + 0.02 * (e // 2) + (0.01 if e % 2 == 0 else 0.0) for e in range(epochs)]
    assert trace("plateau", epochs, epochs, noisy) == [1.0] * epochs, \
        f"plateau, {epochs} epochs: one epoch without improvement between two improvements must not cut the " \
        "rate (patience)"
    flat = trace("plateau", epochs, epochs, [0.8] * epochs)
    drops = sum(b < a for a, b in zip(flat, flat[1:]))
    assert drops >= 2 and 0 < flat[-1] < 1, \
        f"plateau, {epochs} epochs of a flat accuracy: at least two drops, to a rate above 0; got {flat}"
### END HIDDEN TESTS

# %% [markdown]
# The three schedules over 12 epochs (factor of the initial rate); for the plateau scheduler, a made-up accuracy
# curve that stops improving after epoch 4.

# %%
schedule = grading.or_reference(make_scheduler, recovery.scheduler)
accuracy_curve = [0.70, 0.80, 0.85, 0.88, 0.90, 0.90, 0.89, 0.90, 0.90, 0.90, 0.91, 0.90]
curves = {name: training.lr_trace(lambda opt: schedule(name, opt, 12), steps=12, lr=1.0,
                                  metrics=accuracy_curve if name == "plateau" else None)
          for name in ("cosine", "step", "plateau")}
for name, lrs in curves.items():
    print(f"{name:>7}:", " ".join(f"{lr:.3f}" for lr in lrs))
plots.plot_lr(curves, xlabel="epoch");


# %% [markdown]
# ## 5. Distillation loss
#
# The uncompressed **teacher**'s output distribution says more than the label: which wrong classes it finds
# plausible. Hinton et al. (2015, *Distilling the Knowledge in a Neural Network*) train the compressed
# **student** to match it. With logits $z$ and a temperature $T$, the softened distributions are
# $p^T = \mathrm{softmax}(z_t / T)$ (teacher) and $q^T = \mathrm{softmax}(z_s / T)$ (student); $T > 1$ flattens
# them so that the small probabilities count.
#
# **Which KL.** The student should put probability wherever the teacher does. The cross-entropy with the soft
# targets, $-\sum_k p^T_k \log q^T_k$, is
# $\mathrm{KL}(p^T \,\|\, q^T) + H(p^T)$, and the teacher's entropy $H(p^T)$ does not depend on the student: the
# soft term is $\mathrm{KL}(p^T \,\|\, q^T) = \sum_k p^T_k (\log p^T_k - \log q^T_k)$, teacher first. The other
# direction, $\mathrm{KL}(q^T \| p^T)$, is another loss (it lets the student ignore classes the teacher finds
# plausible). `F.kl_div(input, target)` computes $\sum \mathrm{target} \cdot (\log \mathrm{target} - \mathrm{input})$:
# `input` is the student's **log**-probabilities, `target` the teacher's probabilities.
#
# **Why $T^2$.** The gradient of the soft term with respect to a student logit is
# $\frac{1}{T}(q^T_k - p^T_k)$, and for a large $T$, $q^T_k - p^T_k \approx (z_{s,k} - z_{t,k}) / (K T)$ (logits
# centred, $K$ classes): the gradient shrinks like $1/T^2$. Multiplying the soft term by $T^2$ keeps its weight
# against the cross-entropy the same whatever the temperature:
#
# $$\mathcal{L} = \alpha \, \mathrm{CE}(z_s, y) + (1 - \alpha)\, T^2\, \mathrm{KL}\big(\mathrm{softmax}(z_t / T)\,\|\,\mathrm{softmax}(z_s / T)\big)$$
#
# averaged over the examples of the batch.
#
# > **Common mistake.** Swapping the arguments of `F.kl_div(input, target)`, passing probabilities as `input`, or
# > forgetting $T^2$. **Fix:** `input` = the student's **log**-probabilities, `target` = the teacher's
# > probabilities, `reduction="batchmean"` (`"mean"` also divides by the number of classes), times $T^2$.
#
# ### Exercise 5 (4 points; *Fine-tuning Post-Compression*, exercise 4): `kd_loss`
#
# Write `kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5)`: $\mathcal{L}$ as a scalar tensor
# that gradients flow through to `student_logits`, with `F.cross_entropy`, `F.kl_div`, `F.log_softmax` and
# `F.softmax` (the tests block `training.distillation_loss`). Two test cells of 2 points each: the soft term
# (direction, temperature, $T^2$, average over the batch), then its mix with the cross-entropy and the gradient.

# %% nbgrader={"grade": false, "grade_id": "kd_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    ### BEGIN SOLUTION
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="batchmean") * T * T
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "kd_blocked", "locked": true, "schema_version": 3, "solution": false, "task": false}
def no_kd_helper():  # inside this block the course's own distillation losses raise
    return grading.blocked([training.distillation_loss, recovery.kd_loss],
                           "write the loss yourself, not with training.distillation_loss (or recovery.kd_loss)")


# %% nbgrader={"grade": true, "grade_id": "kd_soft_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
with no_kd_helper():  # the soft term alone (alpha=0)
    # a uniform student (logits 0, 0) and a teacher with probabilities 3/4, 1/4 at T=1
    s1, t1, y1 = torch.zeros(1, 2), torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0])
    kl_t1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # KL(teacher || student) = 0.1308
    got = kd_loss(s1, t1, y1, T=1.0, alpha=0.0).item()
    assert math.isclose(got, kl_t1, rel_tol=1e-4), \
        f"alpha=0, T=1: KL(teacher || student) = {kl_t1:.5f}, got {got:.5f} (KL direction? log-probabilities? " \
        "reduction='batchmean'?)"
    p = math.sqrt(3) / (1 + math.sqrt(3))  # the teacher at T=2
    kl_t2 = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    got = kd_loss(s1, t1, y1, T=2.0, alpha=0.0).item()
    assert math.isclose(got, 4 * kl_t2, rel_tol=1e-4), \
        f"alpha=0, T=2: T^2 * KL = {4 * kl_t2:.5f}, got {got:.5f} (T^2 factor? temperature on both logits?)"
### BEGIN HIDDEN TESTS
    # per example: a batch of two copies gives the same loss ("batchmean", not "sum" or "mean")
    got = kd_loss(s1.repeat(2, 1), t1.repeat(2, 1), y1.repeat(2), T=2.0, alpha=0.0).item()
    assert math.isclose(got, 4 * kl_t2, rel_tol=1e-4), f"average over the batch (reduction='batchmean'): {got:.5f}"
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g) * 3
    y = torch.randint(0, 5, (8,), generator=g)
    assert abs(kd_loss(zt, zt, y, T=4.0, alpha=0.0).item()) < 1e-5, "alpha=0 and student == teacher: 0"
    # five classes: "mean" would divide by 5 too
    log_p, log_q = F.log_softmax(zt / 4, 1), F.log_softmax(zs / 4, 1)
    want = (16 * (log_p.exp() * (log_p - log_q)).sum(1).mean()).item()
    got = kd_loss(zs, zt, y, T=4.0, alpha=0.0).item()
    assert math.isclose(got, want, rel_tol=1e-4), f"5 classes, T=4: T^2 * KL per example = {want:.5f}, got {got:.5f}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "kd_mix_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
with no_kd_helper():  # the mix with the cross-entropy, and the gradient
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g) * 3
    y = torch.randint(0, 5, (8,), generator=g)
    got = kd_loss(zs, zt, y, T=4.0, alpha=1.0).item()
    assert math.isclose(got, F.cross_entropy(zs, y).item(), rel_tol=1e-5), \
        f"alpha=1: the cross-entropy alone ({F.cross_entropy(zs, y).item():.5f}), got {got:.5f}"
    soft = kd_loss(zs, zt, y, T=4.0, alpha=0.0).item()
    want = 0.3 * F.cross_entropy(zs, y).item() + 0.7 * soft
    got = kd_loss(zs, zt, y, T=4.0, alpha=0.3).item()
    assert math.isclose(got, want, rel_tol=1e-5), \
        f"alpha=0.3: 0.3 * CE + 0.7 * (the soft term) = {want:.5f}, got {got:.5f}"
### BEGIN HIDDEN TESTS
    assert math.isclose(kd_loss(zs, zt, y).item(), kd_loss(zs, zt, y, T=4.0, alpha=0.5).item()), \
        "defaults: T=4.0, alpha=0.5"
    s = zs.clone().requires_grad_()
    out = kd_loss(s, zt, y, T=4.0, alpha=0.5)
    assert out.requires_grad, "gradients must flow to student_logits (no detach, no .item(), no torch.tensor(...))"
    assert out.dim() == 0, "return a scalar"
    out.backward()
    own_soft = zs.clone().requires_grad_()  # the gradient of your own soft term (graded in the cell above)
    kd_loss(own_soft, zt, y, T=4.0, alpha=0.0).backward()
    ce_grad = (F.softmax(zs, 1) - F.one_hot(y, 5)) / len(zs)  # of the cross-entropy, averaged over the batch
    assert torch.allclose(s.grad, 0.5 * ce_grad + 0.5 * own_soft.grad, atol=1e-5), \
        "wrong gradient at alpha=0.5: 0.5 * (gradient of the cross-entropy) + 0.5 * (gradient of the soft term)"
### END HIDDEN TESTS

# %% [markdown]
# `training.DistillationLoss(teacher, temperature, alpha)` runs the teacher in **eval mode** under
# `torch.no_grad()` and computes the same loss.


# %% [markdown]
# # Part B: prune, then recover
#
# ## 6. The baseline, its pruned copy, and a free repair
#
# The chapter-2 recipe: the pretrained mini ResNet with a new head, fine-tuned for 6 epochs with SGD and weight
# decay `5e-4` (the groups of `models.param_groups` carry no `weight_decay` key, so the optimizer's value applies:
# section 2). It is the **teacher** of section 11 and must not change: we keep a copy of its weights.

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
example_batch = next(iter(valid_iter))[0][:8]

helpers.seed_everything(0)
baseline = models.finetune_net(profile).to(profile.device)
optimizer = torch.optim.SGD(models.param_groups(baseline, 0.05), momentum=0.9, weight_decay=5e-4)
epochs = profile.epochs(6)
history = training.train(baseline, train_iter, valid_iter, optimizer, epochs, progress=False,
                         scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs))
baseline_state = copy.deepcopy(baseline.state_dict())
print(history)
print("weight decay per group:", [g["weight_decay"] for g in optimizer.param_groups])

# %%
# course check (not part of the lesson): the baseline really decays and is a good teacher on the mini world
assert all(g["weight_decay"] == 5e-4 for g in optimizer.param_groups)
if profile.checks:
    assert history.final["valid_acc"] >= 0.85, history

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
n_valid = len(valid_iter.dataset)
print(f"validation accuracy ({n_valid} images, one image = {1 / n_valid:.3f}):",
      {k: round(v, 3) for k, v in accuracy.items()})

# %%
# course check: recalibration keeps the masks, repairs part of the damage, not all of it
assert C.sparsity(recalibrated) == pruned_sparsity and C.is_pruned(recalibrated)
if profile.checks:
    assert accuracy["pruned"] < accuracy["recalibrated"] < accuracy["baseline"] - 0.1, accuracy

# %% [markdown]
# Recalibration is free and repairs part of the damage. Any fine-tuning in training mode does it too, as a side
# effect (BatchNorm layers in training mode update their statistics: chapter 3), so a method started from
# `pruned` gets that repair for free. The comparisons below start from `recalibrated`: the reference every
# method must beat.
#
# ## 7. The recovery recipe, and how to compare methods
#
# Every method fine-tunes a copy of `recalibrated` with your `make_optimizer` (`lr=1e-3`) for the **same budget**,
# `EPOCHS` epochs, once per seed; every method uses the **same seeds** (`profile.seeds(3)`: the batches and the
# crops of a seed are the same for every method), so the comparisons are **paired**: for each seed, the
# difference between two methods. `training.train(..., restore_best=True)` keeps the epoch with the best
# validation accuracy (what your `KeepBest` does); we record that accuracy per seed. All the comparisons use the
# validation split; section 14 measures the chosen recipe on the test set, once.
#
# `full` is plain fine-tuning of every group at a **constant** rate: the control for every other method.

# %%
EPOCHS = profile.epochs(6)
SEEDS = profile.seeds(3)
results = {}
optimizer_for = grading.or_reference(make_optimizer, recovery.optimizer)


def recover(name, start=recalibrated, scheduler=None, **train_kwargs):
    # Fine-tune a copy of `start` for EPOCHS epochs once per seed; keep each seed's best validation accuracy
    # (the restored epoch's), and the first seed's model and history.
    accs = []
    for seed in SEEDS:
        net = C.clone(start)
        helpers.seed_everything(seed)
        optimizer, sched = optimizer_for(net, 1e-3, scheduler)
        history = training.train(net, train_iter, valid_iter, optimizer, EPOCHS, scheduler=sched,
                                 restore_best=True, progress=False, **train_kwargs)
        models.unfreeze(net)
        accs.append(history.best_valid_acc)
        if len(accs) == 1:
            results[name] = {"net": net, "history": history}
    results[name]["valid_acc"] = accs
    curve = [round(a, 3) for a in results[name]["history"]["valid_acc"]]
    mean, sd = plots.mean_std(accs)
    print(f"{name:>13}: validation acc per epoch (first seed) {curve}, best epoch "
          f"{results[name]['history'].best_epoch}; best validation acc {mean:.3f} ± {sd:.3f} ({len(accs)} seeds)")


def paired(name, control="full"):
    # Per seed, `name` minus `control` (the same seed, so the same batches): mean ± standard deviation.
    diffs = [a - b for a, b in zip(results[name]["valid_acc"], results[control]["valid_acc"])]
    mean, sd = plots.mean_std(diffs)
    print(f"{name} - {control}, paired over {len(diffs)} seeds: {mean:+.3f} ± {sd:.3f} "
          f"(per seed {[round(d, 3) for d in diffs]})")
    return diffs


recover("full")

# %%
# course check: the best epoch is the one restored, the masks hold, recovery recovers
full = results["full"]
h = full["history"]
assert h.best_valid_acc == h["valid_acc"][h.best_epoch - 1]
assert training.evaluate(full["net"], valid_iter)[1] == h.best_valid_acc, "the best epoch was restored"
assert C.sparsity(full["net"]) == pruned_sparsity, "the masks keep the pruned weights at zero"
if profile.checks:
    assert plots.mean_std(full["valid_acc"])[0] > accuracy["recalibrated"] + 0.05


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
recover("full + clip", clip_grad_norm=1.0)  # the threshold of Fine-tuning Post-Compression
recover("full + clip 0.25", clip_grad_norm=0.25)  # below every norm printed above: clips (nearly) every step
paired("full + clip")
paired("full + clip 0.25");

# %% [markdown] nbgrader={"grade": false, "grade_id": "clip_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 6 (2 points, written; *Fine-tuning Post-Compression*, exercise 1)
#
# Compare `full` with `full + clip` (`max_norm=1.0`, the source's value) and `full + clip 0.25` (a threshold below
# the gradient norms printed above): the paired differences and their spreads. Did clipping change anything beyond
# the seed-to-seed spread, and why? Consider how often each threshold was exceeded and what **Adam** does with a
# gradient multiplied by a constant. When would you expect clipping to matter?

# %% [markdown] nbgrader={"grade": true, "grade_id": "clip_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (2 points).** 1 point: reads the student's own output correctly: how many of the printed gradient norms
# exceed 1.0 (so how often `max_norm=1.0` acted; 0.25 is below them, so it acted on most steps), and whether each
# paired difference is within its spread (mean smaller than its standard deviation, or per-seed differences of
# both signs, or exactly zero, or a single validation image) or beyond it; claiming that clipping helped or hurt while the printed difference is
# within the spread loses this point. 1 point: explains it with Adam's step (normalised by a running RMS of the
# gradient, so scaling a gradient by a constant barely changes the step) and names at least one situation where
# clipping matters (plain SGD, large learning rates, gradient spikes at the start of fine-tuning or from a new
# head, deep or recurrent networks).
#
# **Model answer.** In our run none of the six printed norms (0.60 to 0.81) exceeded 1.0, so `full + clip`
# repeated `full` step for step: +0.000 ± 0.000 for every seed. At 0.25, below every printed norm, clipping
# shortened nearly every step, and the paired difference is +0.005 ± 0.000: one validation image, the same in
# every seed, so the clipped runs followed almost exactly the trajectory of `full`. Adam divides each step by a running
# estimate of the gradient's RMS: multiplying the gradients by a constant leaves Adam's step almost unchanged (only
# the relative weight of the clipped batches in the running averages changes), so clipping cannot change much here.
# Clipping matters with plain SGD (the step is proportional to the gradient), with large learning rates, at the
# start of fine-tuning when a fresh head or a badly damaged model produces gradient spikes, and in deep or
# recurrent networks with exploding gradients: a safety net against rare large steps, not a way to recover
# accuracy.
# ### END SOLUTION
#

# %% [markdown]
# ## 9. Progressive unfreezing against full fine-tuning
#
# > **Common mistake.** Stage 0 trains **every** layer, then each stage freezes more of the first layers: that is
# > progressive *freezing*. **Fix:** progressive *unfreezing* starts with the head alone and unfreezes one group
# > more per stage **toward the input**.
#
# A callback unfreezes one group per epoch, head first: with 6 groups and `EPOCHS` = 6 epochs, the stem is
# unfrozen in the last epoch, so every group is trained for at least one epoch, within the same budget as `full`.
# `training.StageRecorder` records the trainable optimizer groups; `training.train` keeps frozen BatchNorm layers
# in eval mode (chapter 3).

# %%
class Unfreezer:
    def on_epoch_start(self, epoch, net, optimizer):
        models.freeze(net, models.LAYER_GROUPS)
        models.unfreeze(net, list(models.LAYER_GROUPS[-1 - epoch:]))


recorder = training.StageRecorder()
recover("progressive", callbacks=[Unfreezer(), recorder])
print("trainable groups per epoch (first seed):", recorder.stages[:EPOCHS])
paired("progressive");

# %%
# course check: one group more per epoch, every group trained before the end, masks kept
expected_stages = [list(models.LAYER_GROUPS[-1 - e:]) for e in range(EPOCHS)]
assert recorder.stages[:EPOCHS] == expected_stages, recorder.stages[:EPOCHS]
if EPOCHS >= len(models.LAYER_GROUPS):
    assert recorder.stages[EPOCHS - 1] == list(models.LAYER_GROUPS), "every group is unfrozen within the budget"
assert C.sparsity(results["progressive"]["net"]) == pruned_sparsity

# %% [markdown] nbgrader={"grade": false, "grade_id": "unfreezing_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 7 (3 points, written; *Fine-tuning Post-Compression*, exercise 2)
#
# Compare `progressive` with `full` (the paired difference and its spread, and the validation accuracy per epoch).
# Which layers did pruning hit hardest (table of section 6), and for how many epochs did each method train them?
# Progressive unfreezing was designed for a pretrained body under a **new, random** head: is that the situation
# after compression? When would you still use it?

# %% [markdown] nbgrader={"grade": true, "grade_id": "unfreezing_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (3 points).** 1 point: states the paired difference `progressive - full` from the student's own output
# and whether it is beyond the spread (mean larger than its standard deviation, every seed the same sign) or
# within it, and connects it to the per-epoch curves (e.g. progressive flat while only the head trains). 1 point:
# reads the pruning table (which groups lost most of their weights) and counts the epochs each group was trained:
# `full` all `EPOCHS`, `progressive` `EPOCHS - k` for the k-th group from the top (the stem only in the last
# epoch). 1 point: after compression there is no new random head and the damage is in the body, so nothing needs
# protecting from a random head's gradients; names a case for progressive unfreezing (a new head for a new task,
# very little data, only the upper layers compressed).
#
# **Model answer.** In our run `progressive - full` is -0.038 ± 0.032, negative for every seed (-0.025, -0.015,
# -0.075): a loss whose mean is a little larger than its spread, clear in sign, imprecise in size with three seeds.
# The first seed's validation accuracy stays at 0.575 for two epochs while only the head and `layer4` train, and
# climbs once the body is unfrozen. The table of section 6: `layer4` lost 99.9-100 % of its weights, `layer3`
# 98-99 %, `layer2` about 90 %, `layer1` about 72 %, the stem about half: the damage is everywhere, and progressive
# unfreezing trains `layer4` for 5 epochs, `layer3` for 4, `layer2` for 3, `layer1` for 2 and the stem for 1,
# against 6 epochs for every group in `full`. Progressive unfreezing protects good pretrained features from the
# large, random gradients of a new head; after compression there is no new head and the features themselves are
# damaged, so full fine-tuning at a small rate is the better default. It stays useful when the compressed model
# also gets a new head (a new task), with very little fine-tuning data (fewer trainable parameters, less
# overfitting), or when only the upper layers were compressed.
# ### END SOLUTION
#

# %% [markdown]
# ## 10. Cosine, step and plateau against a constant rate
#
# Your schedulers over the same `EPOCHS` epochs (enough for your plateau scheduler to drop twice), with the same
# seeds. The control is `full`: the same recipe at a **constant** rate. The printed rates and the curves are the
# first seed's.

# %%
for name in ("cosine", "step", "plateau"):
    recover(name, scheduler=lambda opt, name=name: schedule(name, opt, EPOCHS))
used = {name: [row["lrs"][-1] for row in results[name]["history"].rows] for name in ("cosine", "step", "plateau")}
for name, lrs in used.items():
    print(f"{name:>8}: learning rate per epoch {[f'{lr:.1e}' for lr in lrs]}")
for name in ("cosine", "step", "plateau"):
    paired(name)
plots.plot_history({name: results[name]["history"] for name in ("full", "cosine", "step", "plateau")},
                   metrics=("train_loss", "valid_acc"));

# %% [markdown] nbgrader={"grade": false, "grade_id": "scheduler_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 8 (2 points, written; *Fine-tuning Post-Compression*, exercise 3)
#
# Justify the arguments you gave `ReduceLROnPlateau` in exercise 4 (how many epochs does one drop need?). Did it
# reduce the rate in this run, and when? Compare each schedule with the constant-rate control `full` (paired
# differences): are the differences beyond the spread? What does each schedule need to know in advance, and which
# recipe would you pick on this validation evidence for a short recovery budget?

# %% [markdown] nbgrader={"grade": true, "grade_id": "scheduler_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (2 points).** 1 point: justifies the student's own plateau arguments (`mode="max"` for an accuracy; a
# patience that survives one noisy epoch; `patience + 1` epochs without improvement per drop, so two drops fit in
# `EPOCHS`) and reads the printed rates correctly (whether and when the plateau rate dropped in their run). 1 point:
# compares each schedule with `full` using the printed paired differences (beyond the spread or not, in their
# run), says what cosine and step need in advance (the number of epochs; step its milestones) and what plateau
# needs (a reliable validation metric every epoch), and picks a recipe consistent with their own numbers: the
# best validation mean, or the simplest recipe when the differences are within the spread.
#
# **Model answer.** `mode="max"` because the monitored metric is an accuracy; `patience=1` because one epoch without
# improvement is often noise; `factor=0.5`. A drop needs `patience + 1` = 2 epochs without improvement, so two
# drops need at least 4 of the 5 epochs after the first: 6 epochs is the minimum run (with `patience=3`, a value
# often copied from examples, a drop needs 4 epochs, and a 3-epoch run can never see one). In our run the plateau
# rate never dropped: the first seed's validation accuracy rose every epoch (0.61 to 0.78), so `plateau` was exactly
# the constant-rate control (+0.000 ± 0.000). Cosine (-0.040 ± 0.018) and step (-0.108 ± 0.028) are below `full`
# for every seed, beyond the spread: at a constant rate the accuracy was still rising at epoch 6, and a decaying
# rate (step spends two thirds of the run at 10x and 100x smaller rates) cut the recovery short. Cosine and step
# need the number of epochs in advance (step also its milestones); plateau needs no budget but reacts late and
# needs a reliable validation metric every epoch. For a short recovery budget like this one, the constant rate
# (`full`; plateau behaved the same) has the best validation mean; a decaying schedule pays off once the run is
# long enough for the accuracy to level off.
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
    mine = grading.or_reference(kd_loss, recovery.kd_loss)(student(X), teacher(X), y, T=4.0, alpha=0.5)
    print("your kd_loss and training.DistillationLoss agree:", torch.allclose(kd(student(X), y, X), mine, atol=1e-5))
recover("distillation", loss=kd)
paired("distillation");

# %%
# course check: the teacher is not changed by distillation
assert not teacher.training, "the teacher stays in eval mode"
assert all(torch.equal(v, baseline_state[k]) for k, v in teacher.state_dict().items()), "the teacher changed"

# %% [markdown]
# ## 12. All the results, on validation
#
# Mean best validation accuracy per method, one standard deviation as error bar, each seed as a dot; then each
# method minus the control `full`, seed by seed. A difference is beyond the noise when it is larger than its
# spread, has the same sign for every seed, and is more than a couple of validation images (one image is
# `1 / n_valid` of accuracy, printed in section 6: a difference of one image with no spread means the runs barely
# diverged, not that one method is better). With 3 seeds, a difference within the spread means "no difference
# shown", not "no difference".

# %%
references = {"baseline": accuracy["baseline"], "recalibrated (start)": accuracy["recalibrated"]}
plots.plot_seed_bars({name: r["valid_acc"] for name, r in results.items()}, references=references,
                     ylabel="best validation accuracy");
for name in results:
    if name != "full":
        paired(name)
rows = [C.measure(C.clone(net).cpu(), valid_iter, example_batch, method=name) for name, net in
        [("baseline", baseline), ("pruned", pruned), ("recalibrated", recalibrated),
         ("full (first seed)", results["full"]["net"])]]
C.print_table(rows)

# %%
# course check: every recovered model keeps the pruning
for name, r in results.items():
    assert C.sparsity(r["net"]) == pruned_sparsity, name

# %% [markdown] nbgrader={"grade": false, "grade_id": "kd_answer_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 9 (3 points, written; *Fine-tuning Post-Compression*, exercise 4)
#
# Analyse the impact of distillation: compare `distillation` with `full` (same recipe, cross-entropy only) on the
# chart and with the paired difference. Is the difference beyond the spread? Give two reasons for what you see in
# this setting, and describe a setting where you would expect distillation to help more. What does it cost per
# training step?

# %% [markdown] nbgrader={"grade": true, "grade_id": "kd_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (3 points).** 1 point: states the printed paired difference `distillation - full` and its spread, and
# concludes correctly from them for the student's own run (beyond the spread, with its sign, or not shown). 1
# point: two reasons that fit that result, e.g. two classes and $T=4$ give near-uniform soft targets with little
# information beyond the label while taking half the loss; a 98 %-pruned student cannot imitate the teacher; the
# teacher's own errors (its validation accuracy is printed in section 6) are imitated too; or, if distillation
# helped, the soft targets' regularising effect on a small training set. 1 point: a setting where distillation helps
# more (many classes, a student with enough capacity, longer training, little labelled data or unlabelled data the
# teacher can label, noisy labels) and its cost: one teacher forward pass per step (no backward), roughly a third
# more compute, and the teacher's memory.
#
# **Model answer.** In our run `distillation - full` is -0.023 ± 0.020 (-0.02, -0.005, -0.045): negative for every
# seed but barely beyond its spread, so at best a small loss and no gain shown. Reasons: (1) with 2 classes and
# $T=4$ the softened teacher targets are close to uniform and carry little "dark knowledge" beyond the label, while
# they take half the loss ($\alpha=0.5$): the label signal a badly damaged student needs in a short run is halved;
# (2) a student with 2 % of the weights cannot imitate the teacher's function, and the teacher is itself wrong on
# about one validation image in ten (0.895 in section 6), so imitation also copies its errors. Distillation helps
# with many classes (1,000 ImageNet classes: the wrong classes' probabilities say much), a student with enough
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
static_acc, qat_acc = training.evaluate(static_int8, valid_iter)[1], training.evaluate(qat_int8, valid_iter)[1]
print(f"validation accuracy: baseline {accuracy['baseline']:.3f}, static int8 {static_acc:.3f}, "
      f"QAT int8 {qat_acc:.3f}")

# %%
# course check: int8 layers, no float parameters left, the baseline untouched
assert len(C.quantized_layers(qat_int8)) > 0 and sum(1 for _ in qat_int8.parameters()) == 0
assert all(torch.equal(v.cpu(), baseline_state[k].cpu()) for k, v in baseline.state_dict().items()), "baseline changed"

# %% [markdown]
# Static int8 loses little here, so QAT only shows the mechanics. It pays off when post-training quantization
# loses accuracy (compact models, low-bit formats, pruned models: `C.prepare_qat` keeps the masks).
#
# ## 14. The chosen recipe, on the test set, once
#
# The choice is made on validation: the simplest method (the first one tried, `full`, is the simplest) whose mean
# validation accuracy is within two validation images of the best mean. Its first-seed model is the final model; `C.make_permanent` folds the masks into a copy's weights for export. Only now, and only for the
# final model and the uncompressed baseline, do we read the test set.

# %%
means = {name: plots.mean_std(r["valid_acc"])[0] for name, r in results.items()}
best = max(means.values())
chosen = next(name for name in results if means[name] >= best - 2 / n_valid)  # simplest within 2 images
final = C.make_permanent(results[chosen]["net"])
print(f"chosen on validation: {chosen} ({means[chosen]:.3f}, best mean {best:.3f}); "
      f"size {C.serialized_size(baseline):,} -> {C.serialized_size(final):,} bytes (zlib)")
test_acc = {"baseline": training.evaluate(baseline, test_iter)[1], chosen: training.evaluate(final, test_iter)[1]}
print("test accuracy:", {k: round(v, 3) for k, v in test_acc.items()})

# %%
# course check: the exported model is the chosen one, with its sparsity and its validation accuracy
assert not C.is_pruned(final) and C.sparsity(final) == pruned_sparsity
assert training.evaluate(final, valid_iter)[1] == results[chosen]["history"].best_valid_acc

# %% [markdown]
# ## Summary
#
# - Recalibrate BatchNorm after pruning (free); compare recovery methods from there with the same budget and the
#   same seeds, on validation, against the seed-to-seed spread; test once, for the chosen model.
# - Fine-tune with the masks in force; keep a **copy** of the best epoch and load it back.
# - Register every layer group before building the scheduler; a key in a group beats the optimizer's default.
# - After compression the damage is in the body: progressive unfreezing spends its budget on the head; clipping is
#   a safety net; plateau needs `patience + 1` epochs per drop; distillation helps most with many classes.
# - After int8 quantization, recover with quantization-aware training.
#
# Points: exercises 1-5 (code, autograded) 3 + 3 + 3 + 4 + 4, exercises 6-9 (written) 2 + 3 + 2 + 3: 27 in all.
#
# ## Full profile
#
# `COURSE_PROFILE=full make lab` runs the chapter on the real ResNet-18 and the d2l hotdog data, on a GPU when
# there is one (int8 on the CPU); whether the methods separate beyond the seed spread there is the experiment to run.
