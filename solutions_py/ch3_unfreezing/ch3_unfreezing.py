# %% [markdown]
# # Chapter 3: Unfreezing strategies
#
# Chapter 1 trained the head, then unfroze `layer4`. This chapter turns that into the full toolbox of
# fine-tuning schedules (ULMFiT, Howard & Ruder 2018, arXiv 1801.06146; fastai's `fine_tune`):
#
# - **layer groups**: the network cut into a few named groups, configured together;
# - **freeze / unfreeze** by group;
# - **discriminative learning rates**: a different learning rate per group, smaller toward the input;
# - **gradual unfreezing**: start with the head only, unfreeze one more group **from the head toward the input**
#   at each stage (progressive *unfreezing*, not progressive *freezing*);
# - **learning-rate scheduling**: a short linear warmup, then a cosine decay.
#
# The checklist of the source exercise has five items; each is a graded exercise here:
#
# 1. layer groups identified correctly;
# 2. freeze / unfreeze functions;
# 3. discriminative learning rates;
# 4. gradual unfreezing;
# 5. a scheduler with warmup.
#
# All five exercises come first; section 6 puts them together in a real training run. The `fast` profile uses the
# mini ResNet (same module names as torchvision's ResNet-18); the tests use an even smaller `grading.tiny_net()`.

# %%
import copy
import math

import torch
import torchvision
from torch import nn

import helpers
from helpers import data, grading, models, plots, training

profile = helpers.setup()
net = models.finetune_net(profile, num_classes=2)  # pretrained body, new 2-class head


# %% [markdown]
# ## 1. Layer groups
#
# A ResNet-18 has 62 parameter tensors; nobody wants 62 learning rates. We cut it into six groups, input to output:
# the **stem** (`conv1` and its BatchNorm `bn1`), the four stages `layer1` .. `layer4`, and the **head** `fc`.
# (`relu`, `maxpool` and `avgpool` have no parameters.)
#
# ### Exercise 1 (2 points): `get_layer_groups`
#
# Write `get_layer_groups(net)`: return a dict from group name to a **list of modules**, with the keys in this order
# (input to output): `"stem": [net.conv1, net.bn1]`, `"layer1": [net.layer1]`, ..., `"layer4": [net.layer4]`,
# `"head": [net.fc]`.

# %% nbgrader={"grade": false, "grade_id": "layer_groups_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def get_layer_groups(net):
    ### BEGIN SOLUTION
    return {"stem": [net.conv1, net.bn1], "layer1": [net.layer1], "layer2": [net.layer2],
            "layer3": [net.layer3], "layer4": [net.layer4], "head": [net.fc]}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "layer_groups_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
groups = get_layer_groups(tiny)
assert list(groups) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"], list(groups)
assert groups["head"] == [tiny.fc] and groups["layer4"] == [tiny.layer4]
### BEGIN HIDDEN TESTS
assert all(isinstance(v, list) for v in groups.values()), "each group is a list of modules"
assert any(m is tiny.bn1 for m in groups["stem"]) and any(m is tiny.conv1 for m in groups["stem"]), \
    "the stem is conv1 and its BatchNorm bn1"
ids = [id(p) for mods in groups.values() for m in mods for p in m.parameters()]
assert len(ids) == len(set(ids)), "a parameter belongs to two groups"
assert set(ids) == {id(p) for p in tiny.parameters()}, "some parameters belong to no group"
for name in models.LAYER_GROUPS:
    assert {id(p) for m in groups[name] for p in m.parameters()} == \
        {id(p) for p in models.group_parameters(tiny, name)}, name
big = get_layer_groups(net)
assert sum(p.numel() for m in big["layer4"] for p in m.parameters()) == models.group_sizes(net)["layer4"]
### END HIDDEN TESTS

# %% [markdown]
# The parameter counts of the groups (the source document's first printout). Almost all parameters are at the top:
# each stage doubles the channels, and a 3x3 convolution's weights grow with the square of the width.

# %%
# NBVAL_CHECK_OUTPUT
for name, layers in get_layer_groups(net).items():
    params = sum(p.numel() for layer in layers for p in layer.parameters())
    print(f"{name:>6}: {params:>7,} parameters")
assert {n: sum(p.numel() for m in ms for p in m.parameters()) for n, ms in get_layer_groups(net).items()} \
    == models.group_sizes(net)


# %% [markdown]
# ## 2. Freeze and unfreeze by group
#
# To keep a mistake in one exercise from cascading into the next ones, the later solutions use the helpers' reference
# versions: `models.layer_groups(net)` (your exercise 1), `models.freeze(net, groups)` / `models.unfreeze(net, groups)`
# and `models.count_parameters(net, trainable_only=True)` (your exercise 2).
#
# ### Exercise 2 (2 points): `freeze_group`, `unfreeze_group`, `count_trainable`
#
# Write `freeze_group(group_layers)` and `unfreeze_group(group_layers)`: given a list of modules (one value of
# `get_layer_groups`), set `requires_grad` to `False` / `True` on **every** parameter of **every** module of the list.
# Change only `requires_grad`: do not switch modules to eval mode (`training.train` keeps the statistics of
# frozen BatchNorm layers fixed by itself, see chapter 1). Write `count_trainable(model)`: the number of trainable
# parameter **elements** (not tensors).

# %% nbgrader={"grade": false, "grade_id": "freeze_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_group(group_layers):
    ### BEGIN SOLUTION
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad_(False)
    ### END SOLUTION


def unfreeze_group(group_layers):
    ### BEGIN SOLUTION
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad_(True)
    ### END SOLUTION


def count_trainable(model):
    ### BEGIN SOLUTION
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "freeze_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
groups = models.layer_groups(tiny)
for name in ["stem", "layer1", "layer2", "layer3", "layer4"]:
    freeze_group(groups[name])
assert models.trainable_groups(tiny) == ["head"]
assert count_trainable(tiny) == 16 * 2 + 2, count_trainable(tiny)
unfreeze_group(groups["layer4"])
assert models.trainable_groups(tiny) == ["layer4", "head"]
### BEGIN HIDDEN TESTS
assert count_trainable(tiny) == models.group_sizes(tiny)["layer4"] + 34, "count elements (numel), not tensors"
# every module of the list: the stem has two (conv1 and bn1)
tiny = grading.tiny_net()
freeze_group(models.layer_groups(tiny)["stem"])
assert not tiny.conv1.weight.requires_grad and not tiny.bn1.weight.requires_grad and not tiny.bn1.bias.requires_grad
assert all(p.requires_grad for n, p in tiny.named_parameters() if not n.startswith(("conv1.", "bn1.")))
assert count_trainable(tiny) == models.count_parameters(tiny) - models.group_sizes(tiny)["stem"]
unfreeze_group(models.layer_groups(tiny)["stem"])
assert count_trainable(tiny) == models.count_parameters(tiny)
# freezing is requires_grad, nothing else: the module stays in training mode and keeps its weights
w = tiny.layer2[0].conv1.weight.detach().clone()
freeze_group([tiny.layer2])
assert tiny.layer2.training, "freeze_group must only set requires_grad, not call .eval()"
assert torch.equal(tiny.layer2[0].conv1.weight, w), "freeze_group must not change the weights"
assert all(not p.requires_grad for p in tiny.layer2.parameters())
assert count_trainable(grading.tiny_net()) == models.count_parameters(grading.tiny_net())
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Discriminative learning rates
#
# Lower layers hold generic features that need little change; upper layers hold task-specific features that need
# more. **Discriminative learning rates** (ULMFiT) give each group its own rate: the head gets `base_lr`, and each
# group further down gets the rate of the group above **divided by 2.6**.
#
# The source document's version has two bugs worth knowing:
#
# * it keeps only parameters with `requires_grad=True`, so groups that are frozen when the optimizer is built are
#   **never** trained, even after they are unfrozen (chapter 1's classic bug). Register **every** group up front:
#   frozen parameters have no gradient and the optimizer skips them until they are unfrozen;
# * it multiplies by `0.1` per group: the stem ends up at `base_lr * 1e-5`, which is frozen in all but name.
#
# ### Exercise 3 (3 points): `discriminative_param_groups`
#
# Write `discriminative_param_groups(net, base_lr, factor=2.6)`: return a list of optimizer parameter groups, one per
# layer group of `models.layer_groups(net)` (all six, **frozen or not**), each
# `{"params": <list of all the group's parameters>, "lr": base_lr / factor ** k, "name": <group name>}`, where
# `k = 0` for the head, `1` for `layer4`, ..., `5` for the stem.

# %% nbgrader={"grade": false, "grade_id": "discriminative_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def discriminative_param_groups(net, base_lr, factor=2.6):
    ### BEGIN SOLUTION
    groups = list(models.layer_groups(net).items())
    return [{"params": [p for m in modules for p in m.parameters()],
             "lr": base_lr / factor ** (len(groups) - 1 - i), "name": name}
            for i, (name, modules) in enumerate(groups)]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "discriminative_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
pg = discriminative_param_groups(tiny, 0.01)
lrs = {g["name"]: g["lr"] for g in pg}
assert set(lrs) == set(models.LAYER_GROUPS), list(lrs)
assert math.isclose(lrs["head"], 0.01) and math.isclose(lrs["layer4"], 0.01 / 2.6), lrs
### BEGIN HIDDEN TESTS
# the right direction: smallest at the input, largest at the head
assert math.isclose(lrs["stem"], 0.01 / 2.6 ** 5), "the stem is 5 groups below the head"
assert [lrs[g] for g in models.LAYER_GROUPS] == sorted(lrs[g] for g in models.LAYER_GROUPS), \
    "learning rates must increase from the stem to the head"
for g, m in models.discriminative_mult(2.6).items():
    assert math.isclose(lrs[g], 0.01 * m), (g, lrs[g])
lrs10 = {g["name"]: g["lr"] for g in discriminative_param_groups(tiny, 1.0, factor=10)}
assert math.isclose(lrs10["layer3"], 0.01), "use the factor argument"
# every parameter of every group, exactly once, frozen ones included
tiny = grading.tiny_net()
models.freeze(tiny)  # all but the head
pg = discriminative_param_groups(tiny, 0.05)
ids = [id(p) for g in pg for p in g["params"]]
assert len(ids) == len(set(ids)) == len(list(tiny.parameters())), \
    "register every group, frozen ones included (a frozen group must be trainable later)"
for g in pg:
    assert {id(p) for p in g["params"]} == {id(p) for p in models.group_parameters(tiny, g["name"])}, g["name"]
# the optimizer trains a group unfrozen later, and not before
opt = torch.optim.SGD(pg, momentum=0.9)
before = copy.deepcopy(tiny.state_dict())
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert torch.equal(tiny.layer3[0].conv1.weight, before["layer3.0.conv1.weight"])
models.unfreeze(tiny, "layer3")
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert not torch.equal(tiny.layer3[0].conv1.weight, before["layer3.0.conv1.weight"]), \
    "layer3 was unfrozen but the optimizer did not train it"
### END HIDDEN TESTS

# %% [markdown]
# The learning rates per group, with ULMFiT's factor 2.6 and with the source document's multiplier 0.1:

# %%
# NBVAL_CHECK_OUTPUT
ulmfit = {g["name"]: g["lr"] for g in discriminative_param_groups(net, 1e-3)}
doc = {g["name"]: g["lr"] for g in discriminative_param_groups(net, 1e-3, factor=10)}
print(f"{'group':>6}  {'/2.6':>8}  {'x0.1':>8}")
for name in reversed(models.LAYER_GROUPS):
    print(f"{name:>6}  {ulmfit[name]:8.2e}  {doc[name]:8.2e}")


# %% [markdown]
# ## 4. Gradual unfreezing
#
# ULMFiT unfreezes **one group per epoch, starting from the head**: epoch 0 trains the head only (the new layer
# learns on frozen features), epoch 1 adds `layer4`, epoch 2 adds `layer3`, and so on toward the input. The
# opposite schedule, "progressive freezing" (train everything at first, then freeze more and more of the first
# layers), lets the random head's large early gradients flow into every pretrained layer: exactly what
# fine-tuning tries to avoid.
#
# `helpers.training.train(..., callbacks=[cb])` calls `cb.on_epoch_start(epoch, net, optimizer)` at the start of
# every epoch (`epoch` = 0, 1, 2, ...), before `net.train()`. An unfreezer is such a callback. Since it receives the
# optimizer, it can also catch chapter 1's bug: unfreezing a group the optimizer does not know.
#
# ### Exercise 4 (4 points): `GradualUnfreezer`
#
# Write the class `GradualUnfreezer(every=1)`. Its method `on_epoch_start(epoch, net, optimizer)` makes exactly the
# top `1 + epoch // every` groups of `models.layer_groups(net)` trainable (at least the head, at most all six) and
# freezes all the others. With `every=2`: epochs 0-1 the head only, epochs 2-3 `layer4` and the head, epochs 4-5
# `layer3` to the head, ...
# If a group to be made trainable has parameters that the optimizer does not know (any of its `param_groups`), raise a
# `ValueError`. `grading.optimizer_param_ids(optimizer)` gives the set of `id`s of the optimizer's parameters.

# %% nbgrader={"grade": false, "grade_id": "unfreezer_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
class GradualUnfreezer:
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
        ### BEGIN SOLUTION
        names = list(models.layer_groups(net))  # input -> output
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        known = grading.optimizer_param_ids(optimizer)
        for name in trainable:
            if any(id(p) not in known for p in models.group_parameters(net, name)):
                raise ValueError(f"group {name!r} is unfrozen but the optimizer does not know its parameters")
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "unfreezer_tests", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
opt = torch.optim.SGD(models.param_groups(tiny, 0.01), lr=0.01)  # all groups registered
unfreezer = GradualUnfreezer(every=1)
unfreezer.on_epoch_start(0, tiny, opt)
assert models.trainable_groups(tiny) == ["head"], models.trainable_groups(tiny)
unfreezer.on_epoch_start(1, tiny, opt)
assert models.trainable_groups(tiny) == ["layer4", "head"], models.trainable_groups(tiny)
### BEGIN HIDDEN TESTS
expected = [models.LAYER_GROUPS[max(0, 5 - k):] for k in range(8)]  # head first, toward the input
tiny = grading.tiny_net()
opt = torch.optim.SGD(models.param_groups(tiny, 0.01), lr=0.01)
unfreezer = GradualUnfreezer()
for epoch in range(8):
    unfreezer.on_epoch_start(epoch, tiny, opt)
    assert models.trainable_groups(tiny) == list(expected[epoch]), \
        f"epoch {epoch}: expected {list(expected[epoch])} (progressive unfreezing from the head), " \
        f"got {models.trainable_groups(tiny)}"
    assert models.count_parameters(tiny, trainable_only=True) == \
        sum(models.group_sizes(tiny)[g] for g in expected[epoch]), f"epoch {epoch}: freeze the other groups"
# every=2, starting from a fully trainable net: epoch 0 freezes everything but the head
tiny = grading.tiny_net()
opt = torch.optim.SGD(models.param_groups(tiny, 0.01), lr=0.01)
unfreezer = GradualUnfreezer(every=2)
stages = []
for epoch in range(6):
    unfreezer.on_epoch_start(epoch, tiny, opt)
    stages.append(models.trainable_groups(tiny))
assert stages == [["head"], ["head"], ["layer4", "head"], ["layer4", "head"],
                  ["layer3", "layer4", "head"], ["layer3", "layer4", "head"]], stages
# an optimizer that misses a group unfrozen later must be reported
tiny = grading.tiny_net()
head_only = torch.optim.SGD(tiny.fc.parameters(), lr=0.01)
unfreezer = GradualUnfreezer()
unfreezer.on_epoch_start(0, tiny, head_only)  # fine: the optimizer knows the head
try:
    unfreezer.on_epoch_start(1, tiny, head_only)
except ValueError:
    pass
else:
    raise AssertionError("layer4 is unfrozen but the optimizer does not know it: raise ValueError")
# with helpers.training.train: each group trains only once unfrozen
tiny = grading.tiny_net()
start = copy.deepcopy(tiny)
opt = torch.optim.SGD(models.param_groups(tiny, 0.05), momentum=0.9)
training.train(tiny, grading.tiny_loader(), None, opt, 2, callbacks=[GradualUnfreezer()], progress=False)
moved = [g for g in models.LAYER_GROUPS
         if not all(torch.equal(a, b) for a, b in zip(models.group_parameters(tiny, g),
                                                      models.group_parameters(start, g)))]
assert moved == ["layer4", "head"], moved
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Warmup + cosine annealing
#
# At the start of training (and again each time a group is unfrozen) the gradients are large and the optimizer
# statistics (momentum, Adam's moments) are not yet meaningful: a **warmup** starts with a small learning rate and
# raises it linearly to its full value. A **cosine** decay then lowers it smoothly to zero, so training ends with
# small, careful steps.
#
# With discriminative learning rates, the schedule must scale **every group's own rate** by the same factor, so
# the ratios between groups stay 2.6. `LambdaLR` does this; so does the source document's
# `SequentialLR([LinearLR, CosineAnnealingLR])`, except for its `eta_min=1e-6`: one absolute floor for every group,
# so the ratios are lost at the end of training, and with the document's `x0.1` rates (`layer1`, `stem` below 1e-6
# in the table above) the cosine would *raise* those groups' rates. Two more traps: step the scheduler once per
# **batch** if `warmup_steps` / `total_steps` count batches (`train(..., scheduler_interval="batch")`); and create the
# scheduler only after every group is in the optimizer (`add_param_group` afterwards breaks `LambdaLR`).
#
# ### Exercise 5 (3 points): `warmup_cosine_scheduler`
#
# Write `warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1)`: a scheduler, stepped
# once per step, such that the learning rate of every group at step `s` (`s = 0` before any `scheduler.step()`) is the
# group's initial learning rate times
# - `start_factor + (1 - start_factor) * s / warmup_steps` for `s < warmup_steps` (linear warmup, starting low);
# - `0.5 * (1 + cos(pi * (s - warmup_steps) / (total_steps - warmup_steps)))` for `warmup_steps <= s <= total_steps`.
#
# Use `torch.optim.lr_scheduler.LambdaLR` (or `LinearLR` + `CosineAnnealingLR` in a `SequentialLR`).

# %% nbgrader={"grade": false, "grade_id": "warmup_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    ### BEGIN SOLUTION
    def factor(s):
        if s < warmup_steps:
            return start_factor + (1 - start_factor) * s / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "warmup_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
trace = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 5, 20), steps=21, lr=1.0)
assert math.isclose(trace[0], 0.1, abs_tol=1e-6), f"warmup starts at start_factor * lr, got {trace[0]}"
assert math.isclose(trace[5], 1.0, abs_tol=1e-6), f"full learning rate after warmup, got {trace[5]}"
assert trace[20] < 1e-6, f"the cosine ends at 0, got {trace[20]}"
### BEGIN HIDDEN TESTS
assert all(a < b for a, b in zip(trace[:5], trace[1:6])), "the warmup must increase"
assert all(a > b for a, b in zip(trace[5:20], trace[6:21])), "the cosine must decrease"
assert math.isclose(trace[3], 0.1 + 0.9 * 3 / 5, abs_tol=1e-6), trace[:6]
assert math.isclose(trace[5 + 15 // 2], 0.5 * (1 + math.cos(math.pi * 7 / 15)), abs_tol=1e-6)
ref = training.lr_trace(lambda opt: training.warmup_cosine(opt, 5, 20), steps=21, lr=1.0)
assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(trace, ref)), (trace, ref)
t2 = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 10, 40, start_factor=0.2), steps=41, lr=0.5)
assert math.isclose(t2[0], 0.1, abs_tol=1e-6) and math.isclose(t2[10], 0.5, abs_tol=1e-6) and t2[40] < 1e-6, t2
assert max(t2) <= 0.5 + 1e-9
# every group keeps its own rate (discriminative ratios are preserved)
w = [nn.Parameter(torch.zeros(1)) for _ in range(3)]
opt = torch.optim.SGD([{"params": [w[0]], "lr": 1.0}, {"params": [w[1]], "lr": 1 / 2.6},
                       {"params": [w[2]], "lr": 1 / 2.6 ** 5}], lr=1.0)
sched = warmup_cosine_scheduler(opt, 3, 12)
for s in range(12):
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] <= 1.0 + 1e-9 and lrs[0] > 0
    assert math.isclose(lrs[1], lrs[0] / 2.6, rel_tol=1e-6) and math.isclose(lrs[2], lrs[0] / 2.6 ** 5, rel_tol=1e-6), \
        (s, lrs)
    opt.step()
    sched.step()
### END HIDDEN TESTS

# %% [markdown]
# The schedule of the source document (3 warmup epochs, 20 in all), for the head, `layer4` and the stem with
# discriminative rates (log scale: the curves are parallel, the ratios are kept):

# %%
# NBVAL_CHECK_OUTPUT
factors = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 3, 20), steps=20, lr=1.0)
print("factors:", [round(f, 4) for f in factors])
assert factors[0] == min(factors[:4]) and max(factors) == factors[3] == 1.0
per_group = {name: [ulmfit[name] * f for f in factors] for name in ("head", "layer4", "stem")}
plots.plot_lr(per_group, xlabel="epoch", log=True);

# %% [markdown]
# ## 6. Putting it together: gradual unfreezing on the mini hotdog data
#
# The pretrained model with a new head, discriminative learning rates for all six groups registered up front, a
# warmup + cosine schedule stepped every batch, and your unfreezer: one more group per epoch from the head down. A
# second callback, `training.StageRecorder`, records which groups are trainable at each epoch.

# %%
train_iter, test_iter = data.hotdog_loaders(profile)
epochs, base_lr = 4, (0.05 if profile.fast else 0.01)
steps = epochs * len(train_iter)
gradual = models.finetune_net(profile, num_classes=2)
pretrained = copy.deepcopy(gradual)
optimizer = torch.optim.SGD(discriminative_param_groups(gradual, base_lr), momentum=0.9)
scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=len(train_iter) // 2, total_steps=steps)
recorder = training.StageRecorder()  # records the trainable groups of each epoch
history = training.train(gradual, train_iter, test_iter, optimizer, epochs, scheduler=scheduler,
                         scheduler_interval="batch", callbacks=[GradualUnfreezer(every=1), recorder])
print(history)
plots.plot_history(history);

# %% [markdown]
# Checked: each epoch trained exactly the expected groups, head first and toward the input; the groups never
# unfrozen (`stem`, `layer1`) are untouched, BatchNorm statistics included; and the learning rates recorded at the
# start of each epoch follow the schedule with the discriminative ratios.

# %%
# NBVAL_CHECK_OUTPUT
for epoch, stage in enumerate(recorder.stages):
    print(f"epoch {epoch}: {stage}")
assert recorder.stages == [["head"], ["layer4", "head"], ["layer3", "layer4", "head"],
                           ["layer2", "layer3", "layer4", "head"]]

# %%
for g in ("stem", "layer1"):
    keys = [k for k in pretrained.state_dict() if k.split(".")[0] in {"stem": ("conv1", "bn1"), "layer1": ("layer1",)}[g]]
    assert all(torch.equal(gradual.state_dict()[k], pretrained.state_dict()[k]) for k in keys), g
moved = [g for g in models.LAYER_GROUPS
         if not all(torch.equal(a, b) for a, b in zip(models.group_parameters(gradual, g),
                                                      models.group_parameters(pretrained, g)))]
print("groups changed by training:", moved)
assert moved == ["layer2", "layer3", "layer4", "head"]
names = [g["name"] for g in optimizer.param_groups]
for row in history.rows:
    lrs = dict(zip(names, row["lrs"]))
    assert math.isclose(lrs["layer4"], lrs["head"] / 2.6) and math.isclose(lrs["stem"], lrs["head"] / 2.6 ** 5)
assert math.isclose(history.rows[0]["lrs"][names.index("head")], base_lr * 0.1)  # the warmup starts low
assert history.final["test_acc"] > 0.85, history.final

# %% [markdown]
# ## Full profile
#
# `COURSE_PROFILE=full make lab` runs the same chapter on the real ResNet-18 (`weights=ResNet18_Weights.IMAGENET1K_V1`)
# and the d2l hotdog data (224 x 224 images; a GPU is strongly advised). The groups are much larger, and just as
# top-heavy: `layer4` holds 75 % of the parameters.

# %%
# NBVAL_CHECK_OUTPUT
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2)  # the full profile's architecture
for name, layers in get_layer_groups(full_net).items():
    print(f"{name:>6}: {sum(p.numel() for m in layers for p in m.parameters()):>9,} parameters")

# %% [markdown]
# For reference: ULMFiT (text classification) unfreezes one group per epoch from the top with rates divided by 2.6
# per group and a slanted triangular schedule (a short warmup, then a long linear decay); fastai's `fine_tune`
# trains the head alone for one epoch, then unfreezes everything with rates spread geometrically from `lr/100`
# (stem) to `lr` (head), keeps BatchNorm layers trainable, and uses a one-cycle schedule. On the hotdog data, d2l's
# fine-tuned ResNet-18 reaches 0.940 test accuracy (0.850 from scratch); gradual unfreezing matters most when the
# target data set is small and the new head would otherwise disturb the pretrained features.
