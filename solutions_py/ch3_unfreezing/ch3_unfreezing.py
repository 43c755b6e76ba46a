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
# The chapter works through a five-item checklist for unfreezing strategies, one graded exercise per item, plus
# a written question on an experiment:
#
# | exercise | checklist item | points |
# | --- | --- | --- |
# | 1. `get_layer_groups` | layer groups identified correctly | 3 |
# | 2. `freeze_group`, `unfreeze_group`, `count_trainable` | freeze / unfreeze functions | 2 |
# | 3. `discriminative_param_groups` | discriminative learning rates | 3 |
# | 4. `GradualUnfreezer` | gradual unfreezing | 4 |
# | 5. `warmup_cosine_scheduler` | a scheduler with warmup | 3 |
# | 6. written: what the comparison shows | gradual unfreezing (does it help?) | 3 |
#
# Exercises 1-5 come first; section 6 puts them together in a real training run, section 7 compares gradual
# unfreezing with training everything at once and with fastai's `fine_tune`. The `fast` profile uses the mini
# ResNet (same module names as torchvision's ResNet-18); the tests use an even smaller `grading.tiny_net()`.

# %%
import copy
import math

import torch
import torchvision
from torch import nn

import helpers
from helpers import data, grading, models, plots, training

profile = helpers.setup()
net = models.finetune_net(profile, num_classes=2).to(profile.device)  # pretrained body, new 2-class head


# %% [markdown]
# ## 1. Layer groups
#
# A ResNet-18 has 62 parameter tensors; nobody wants 62 learning rates. We cut it into groups, input to output: the
# **stem** (everything before the first stage), one group per **stage** (`layer1` .. `layer4`, each a
# `Sequential` of residual blocks), and the **head** (everything after the last stage). Writing the six groups out
# by hand works for one model; a function that *reads* them from the model also works for the variants you will
# meet (a deeper stem, as in ResNet-D or timm's ResNets; a head of two layers; fewer stages).
#
# `net.named_children()` yields the model's direct sub-modules **in the order they were registered**, which in a
# torchvision ResNet is the order of the forward pass:
#
# ```
# conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4, avgpool, fc
# ```
#
# ### Exercise 1 (3 points; checklist item "layer groups identified correctly"): `get_layer_groups`
#
# Write `get_layer_groups(net)` that derives the groups from `net.named_children()` (do not name `conv1`, `bn1`
# or `fc` in your code). Decide for each child where it belongs:
#
# - a child whose name starts with `"layer"` is a stage: it is a group of its own, under its own name;
# - children **before the first stage** form the group `"stem"`; children **after the last stage** form `"head"`;
# - a child **without parameters** (`relu`, `maxpool`, `avgpool`, ...) belongs to no group: there is nothing in it
#   to freeze or to give a learning rate.
#
# Return a dict from group name to a **list of modules**, keys in forward order: `"stem"`, the stages, `"head"`.
#
# > **Common mistake:** a stem of `conv1` alone. Its BatchNorm `bn1` has trainable parameters (and running
# > statistics) too; a parameter in no group is never frozen, and never gets its group's learning rate.

# %% nbgrader={"grade": false, "grade_id": "layer_groups_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def get_layer_groups(net):
    ### BEGIN SOLUTION
    stem, stages, head = [], {}, []
    for name, child in net.named_children():
        if name.startswith("layer"):
            stages[name] = [child]
        elif any(True for _ in child.parameters()):  # children without parameters: no group
            (head if stages else stem).append(child)
    return {"stem": stem, **stages, "head": head}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "layer_groups_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
groups = get_layer_groups(tiny)
assert list(groups) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"], \
    f"expected the keys stem, layer1 .. layer4, head in this order, got {list(groups)}"
assert groups["head"] == [tiny.fc] and groups["layer4"] == [tiny.layer4]
### BEGIN HIDDEN TESTS
assert all(isinstance(v, list) for v in groups.values()), "each group is a list of modules"
assert all(any(True for _ in m.parameters()) for v in groups.values() for m in v), \
    "modules without parameters (relu, maxpool, avgpool) belong to no group"
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
# variants: a deeper stem, a head of two layers, three stages (derive the groups, do not list them)
from collections import OrderedDict
variant = nn.Sequential(OrderedDict(
    conv1=nn.Conv2d(3, 4, 3), bn1=nn.BatchNorm2d(4), relu=nn.ReLU(), conv2=nn.Conv2d(4, 4, 3),
    bn2=nn.BatchNorm2d(4), maxpool=nn.MaxPool2d(2), layer1=nn.Sequential(nn.Conv2d(4, 4, 3)),
    layer2=nn.Sequential(nn.Conv2d(4, 8, 3)), layer3=nn.Sequential(nn.Conv2d(8, 8, 3)),
    avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), neck=nn.Linear(8, 8), fc=nn.Linear(8, 2)))
vg = get_layer_groups(variant)
assert list(vg) == ["stem", "layer1", "layer2", "layer3", "head"], \
    f"a net with three stages has the groups stem, layer1 .. layer3, head; got {list(vg)}"
assert [id(m) for m in vg["stem"]] == [id(variant.conv1), id(variant.bn1), id(variant.conv2), id(variant.bn2)], \
    "the stem is every child with parameters before the first stage (here conv1, bn1, conv2, bn2)"
assert [id(m) for m in vg["head"]] == [id(variant.neck), id(variant.fc)], \
    "the head is every child with parameters after the last stage (here neck and fc)"
### END HIDDEN TESTS

# %% [markdown]
# The parameter counts of the groups. Almost all parameters are at the top:
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
# ### Exercise 2 (2 points; checklist item "freeze / unfreeze functions"): `freeze_group`, `unfreeze_group`, `count_trainable`
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
# > **Common mistake:** building the optimizer from the parameters with `requires_grad=True` only. Groups frozen at
# > that moment are then **never** trained, even after they are unfrozen (chapter 1's classic bug). Fix: register
# > **every** group up front; frozen parameters have no gradient, and the optimizer skips them until unfrozen.
#
# > **Common mistake:** multiplying the rate by `0.1` per group. Five groups down, the stem gets `base_lr * 1e-5`:
# > frozen in all but name. ULMFiT divides by 2.6 per group.
#
# ### Exercise 3 (3 points; checklist item "discriminative learning rates"): `discriminative_param_groups`
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
# The learning rates per group, with ULMFiT's factor 2.6 and with the mistaken multiplier 0.1:

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
# opposite schedule lets the random head's large early gradients flow into every pretrained layer: exactly what
# fine-tuning tries to avoid.
#
# > **Common mistake:** "progressive freezing": training everything at first, then freezing more and more of the
# > first layers. Progressive **unfreezing** starts with the head alone and unfreezes toward the input.
#
# `helpers.training.train(..., callbacks=[cb])` calls `cb.on_epoch_start(epoch, net, optimizer)` at the start of
# every epoch (`epoch` = 0, 1, 2, ...), before `net.train()`. An unfreezer is such a callback. Since it receives the
# optimizer, it can also catch chapter 1's bug: unfreezing a group the optimizer does not know.
#
# ### Exercise 4 (4 points; checklist item "gradual unfreezing"): `GradualUnfreezer`
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
# At the start of training the new head is random, its gradients are large, and the optimizer statistics
# (momentum, Adam's moments) are not yet meaningful: a **warmup** starts with a small learning rate and raises it
# linearly to its full value. A **cosine** decay then lowers it smoothly to zero, so training ends with small,
# careful steps. The schedule here is **one** warmup for the whole run: the groups unfrozen later (section 6) start
# training at the current, already decaying rate, with no second warmup (ULMFiT's slanted triangular schedule
# also warms up once). fastai's `fine_tune` does the other thing: it starts a new schedule, warmup included, when
# it unfreezes the body (section 7 compares the two).
#
# With discriminative learning rates, the schedule must scale **every group's own rate** by the same factor, so
# the ratios between groups stay 2.6. `LambdaLR` does this, and so does `SequentialLR([LinearLR,
# CosineAnnealingLR])` with the default `eta_min=0`.
#
# > **Common mistake:** `CosineAnnealingLR(..., eta_min=1e-6)` with discriminative rates: one absolute floor for
# > every group, so the ratios are lost at the end of training, and the groups whose rate starts below 1e-6
# > (`layer1` and the stem with the `x0.1` rates above) get their rates *raised*. Keep `eta_min=0` or use `LambdaLR`.
#
# > **Common mistake:** counting `warmup_steps` / `total_steps` in batches but stepping the scheduler once per
# > epoch. Use `train(..., scheduler_interval="batch")`. And create the scheduler only after every group is in the
# > optimizer: `add_param_group` afterwards breaks `LambdaLR`.
#
# ### Exercise 5 (3 points; checklist item "a scheduler with warmup"): `warmup_cosine_scheduler`
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
# A schedule of 3 warmup epochs, 20 in all: the factor that multiplies every group's rate.

# %%
# NBVAL_CHECK_OUTPUT
factors = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 3, 20), steps=20, lr=1.0)
print("factors:", [round(f, 4) for f in factors])

# %%
assert factors[0] == min(factors[:4]) and max(factors) == factors[3] == 1.0

# %% [markdown]
# ## 6. Putting it together: gradual unfreezing on the mini hotdog data
#
# The pretrained model with a new head, discriminative learning rates for all six groups registered up front, one
# warmup + cosine schedule stepped every batch, and your unfreezer: one more group per epoch from the head down. A
# second callback, `training.StageRecorder`, records which optimizer groups are trainable at each epoch. The epoch
# is chosen on the **validation** split (20 % of the training folder); the test set is used once, at the end, for
# the final model.

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
epochs, base_lr = profile.epochs(4), (0.05 if profile.fast else 0.01)
warmup, steps = len(train_iter) // 2, epochs * len(train_iter)
gradual = models.finetune_net(profile, num_classes=2).to(profile.device)
pretrained = copy.deepcopy(gradual)
optimizer = torch.optim.SGD(discriminative_param_groups(gradual, base_lr), momentum=0.9)
scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=warmup, total_steps=steps)
recorder = training.StageRecorder()  # records the trainable groups of each epoch
history = training.train(gradual, train_iter, valid_iter, optimizer, epochs, scheduler=scheduler,
                         scheduler_interval="batch", callbacks=[GradualUnfreezer(every=1), recorder])
print(history)
plots.plot_history(history);

# %% [markdown]
# The schedule this run followed, batch by batch, for the head, `layer4` and the stem (log scale: the curves are
# parallel, the discriminative ratios are kept). The dotted lines mark the epochs where one more group is unfrozen:
# the run warms up **once**, over its first half epoch; each newly unfrozen group joins at the current, decaying
# rate. (The stem's curve is its rate *if* it were trainable: four epochs unfreeze only the top four groups.)

# %%
trace = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, warmup, steps), steps=steps, lr=1.0)
ax = plots.plot_lr({g: [lr * f for f in trace] for g, lr in
                    (("head", base_lr), ("layer4", base_lr / 2.6), ("stem", base_lr / 2.6 ** 5))},
                   xlabel="batch", log=True)
for epoch, stage in list(enumerate(recorder.stages))[1:]:
    ax.axvline(epoch * len(train_iter), color="gray", linestyle=":")
    ax.annotate(f"+{stage[0]}", (epoch * len(train_iter), ax.get_ylim()[0]), fontsize=8, rotation=90,
                xytext=(2, 2), textcoords="offset points")

# %%
assert max(trace) == trace[warmup] == 1.0 and trace.index(max(trace)) == warmup  # one warmup, then down only
assert all(a >= b for a, b in zip(trace[warmup:], trace[warmup + 1:]))

# %% [markdown]
# Checked: each epoch trained exactly the expected groups, head first and toward the input; the groups never
# unfrozen are untouched, BatchNorm statistics included; and the learning rates recorded at the start of each epoch
# follow the schedule with the discriminative ratios.

# %%
# NBVAL_CHECK_OUTPUT
for epoch, stage in enumerate(recorder.stages):
    print(f"epoch {epoch}: {stage}")

# %%
expected = [list(models.LAYER_GROUPS[max(0, 5 - k):]) for k in range(epochs)]
assert recorder.stages == expected, recorder.stages
never = [g for g in models.LAYER_GROUPS if g not in expected[-1]]  # the stem and layer1 with 4 epochs
prefixes = {"stem": ("conv1.", "bn1."), "layer1": ("layer1.",), "layer2": ("layer2.",), "layer3": ("layer3.",),
            "layer4": ("layer4.",)}
for g in never:
    keys = [k for k in pretrained.state_dict() if k.startswith(prefixes[g])]
    assert all(torch.equal(gradual.state_dict()[k], pretrained.state_dict()[k]) for k in keys), g
moved = [g for g in models.LAYER_GROUPS
         if not all(torch.equal(a, b) for a, b in zip(models.group_parameters(gradual, g),
                                                      models.group_parameters(pretrained, g)))]
print("groups changed by training:", moved)
assert moved == expected[-1], moved
names = [g["name"] for g in optimizer.param_groups]
for row in history.rows:
    lrs = dict(zip(names, row["lrs"]))
    assert math.isclose(lrs["layer4"], lrs["head"] / 2.6) and math.isclose(lrs["stem"], lrs["head"] / 2.6 ** 5)
assert warmup == 0 or math.isclose(history.rows[0]["lrs"][names.index("head")], base_lr * 0.1), \
    "the warmup starts at 10 % of the rate"  # (a smoke run with one batch per epoch has no warmup)

# %%
if profile.fast:  # the mini world's figure; meaningless in a smoke run of the full profile
    assert history.final["valid_acc"] > 0.8, history.final

# %% [markdown]
# This is the chapter's final model: its test accuracy, measured once.

# %%
test_loss, test_acc = training.evaluate(gradual, test_iter)
print(f"gradual unfreezing, {epochs} epochs: test accuracy {test_acc:.3f} (validation {history.final['valid_acc']:.3f})")

# %% [markdown]
# ## 7. Does gradual unfreezing help? Three strategies, same budget
#
# Gradual unfreezing has a cost: the lower groups train for fewer epochs. Is it worth it here? Three strategies,
# each with the same budget of epochs from the same pretrained model, and the same SGD with momentum:
#
# - **gradual**: section 6's recipe (rates divided by 2.6 per group, one warmup + cosine, one more group per epoch);
# - **all at once**: the same rates and schedule, every group trainable from the first batch;
# - **fine_tune** (fastai's): one epoch on the head alone, then every group with rates spread geometrically from
#   `lr/2/100` (stem) to `lr/2` (head), as fastai's `slice(lr/100, lr)` after halving `lr`, and a new warmup +
#   cosine for the unfrozen phase (`training.fine_tune`; fastai also keeps BatchNorm layers trainable and uses Adam
#   and a one-cycle schedule, not reproduced here).
#
# One run says little: a different seed changes the head's initialisation, the batches and the random crops. Each
# strategy runs with a few seeds (`profile.seeds(3)`; a single seed when autograding), and the plot shows the mean
# validation accuracy with a band of ± one standard deviation across seeds.

# %%
def run(strategy, seed):
    """One run of `strategy` from the pretrained model, `epochs` epochs in all; returns its History."""
    helpers.seed_everything(seed)
    net = models.finetune_net(profile, num_classes=2).to(profile.device)
    if strategy == "fine_tune":
        return training.fine_tune(net, train_iter, valid_iter, models.param_groups(net, base_lr), base_lr,
                                  epochs, freeze_epochs=1, lr_div=100, progress=False)
    optimizer = torch.optim.SGD(models.param_groups(net, base_lr, models.discriminative_mult(2.6)), momentum=0.9)
    scheduler = training.warmup_cosine(optimizer, warmup, steps)
    callbacks = [GradualUnfreezer(every=1)] if strategy == "gradual" else []
    return training.train(net, train_iter, valid_iter, optimizer, epochs, scheduler=scheduler,
                          scheduler_interval="batch", callbacks=callbacks, progress=False)


strategies = ("gradual", "all at once", "fine_tune")
runs = {s: [run(s, seed) for seed in profile.seeds(3)] for s in strategies}

# %%
mean_std = plots.mean_std  # mean and spread across seeds (the sample standard deviation; 0 for one seed)
print(f"{'strategy':>12}  {'final valid acc':>16}  {'final valid loss':>16}  per seed (acc)")
for s, hs in runs.items():
    (m, sd), (ml, sdl) = mean_std([h.final["valid_acc"] for h in hs]), mean_std([h.final["valid_loss"] for h in hs])
    print(f"{s:>12}  {m:8.3f} ± {sd:.3f}  {ml:8.3f} ± {sdl:.3f}  {[round(h.final['valid_acc'], 3) for h in hs]}")
print(f"({len(valid_iter.dataset)} validation images: one image is {1 / len(valid_iter.dataset):.3f} of accuracy)")
plots.plot_mean_spread({s: [h["valid_acc"] for h in hs] for s, hs in runs.items()});

# %%
if profile.fast:  # every strategy learns the mini task (no claim on which is best: see the question below)
    assert all(mean_std([h.final["valid_acc"] for h in hs])[0] > 0.75 for hs in runs.values()), runs

# %% [markdown] nbgrader={"grade": false, "grade_id": "comparison_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 6 (3 points, written; checklist item "gradual unfreezing", does it help?)
#
# Look at the plot and the table above. (a) Does one strategy beat the others on the mini hotdog data? Use the
# spread across seeds and the size of the validation set to say whether the differences you see are real.
# (b) Why might the mini world not show the benefit ULMFiT reports for gradual unfreezing? Name what would have to
# be different (data, model, learning rate) for the head-first phase to matter. (c) What would you run to decide?
# (3-8 sentences.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "comparison_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# (a) No strategy wins by more than the noise. With the three seeds of the table (measured while writing the
# chapter) the final validation accuracies are 0.875 ± 0.036 (gradual), 0.826 ± 0.012 (all at once) and
# 0.840 ± 0.012 (fine_tune): gradual unfreezing is ahead by 2-2.5 images out of 48 (one image = 0.021), about one
# to one and a half of its own standard deviation, from three runs each. With eight seeds the gap shrinks
# (0.891 ± 0.037, 0.865 ± 0.043, 0.862 ± 0.031): the bands overlap. The validation *loss* is the more consistent hint (0.30 vs
# 0.47 and 0.38): training everything at once makes more confident mistakes, but accuracy does not show a
# difference we could trust. (b) Gradual unfreezing protects the pretrained features from the large, noisy
# gradients of a random head. In the mini world those gradients do little harm: the source task (food shapes) is
# close to the target, the warmup starts at 10 % of the rate, the lower groups get rates 2.6^k smaller, and four
# short epochs leave little room to destroy features. It would matter with a higher learning rate or no warmup,
# a target far from the source, or a bigger model on fewer images: at six times the rate (0.3, five seeds),
# fine_tune, whose body rates are 2-100 times lower after a head-only epoch, kept 0.89 ± 0.03 validation accuracy
# and a 0.35 loss while the other two fell to 0.84-0.86 with losses near 0.89. (c) More seeds (10 or more) with
# paired comparisons (same seed for each strategy), a larger validation set or k-fold cross-validation, each
# strategy at its own best learning rate (a sweep), then the test set once for the strategy chosen.

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
    print(f"{name:>6}: {sum(p.numel() for m in layers for p in m.parameters()):>10,} parameters")

# %% [markdown]
# For reference: ULMFiT (text classification) unfreezes one group per epoch from the top with rates divided by 2.6
# per group and a slanted triangular schedule (a short warmup, then a long linear decay); fastai's `fine_tune`
# trains the head alone for one epoch, then unfreezes everything with rates spread geometrically from `lr/100`
# (stem) to `lr` (head), keeps BatchNorm layers trainable, and uses a one-cycle schedule. On the hotdog data, d2l's
# fine-tuned ResNet-18 reaches 0.940 test accuracy (0.850 from scratch); gradual unfreezing matters most when the
# target data set is small and the new head would otherwise disturb the pretrained features.
#
# Points: exercise 1: 3, exercise 2: 2, exercise 3: 3, exercise 4: 4, exercise 5: 3, exercise 6 (written): 3;
# 18 in all.
