# %% [markdown]
# # Chapter 3: Unfreezing strategies
#
# Chapter 1 trained the head, then unfroze `layer4`. This chapter turns that into the full toolbox of
# fine-tuning schedules (ULMFiT, Howard & Ruder 2018, arXiv 1801.06146; fastai's `fine_tune`):
#
# - **layer groups**: the network cut into a few named groups, configured together;
# - **freeze / unfreeze** by group, BatchNorm statistics included;
# - **discriminative learning rates**: a different learning rate per group, smaller toward the input;
# - **gradual unfreezing**: start with the head only, unfreeze one more group **from the head toward the input**
#   at each stage (progressive *unfreezing*, not progressive *freezing*);
# - **learning-rate scheduling**: a short linear warmup, then a cosine decay.
#
# The chapter follows the five-item checklist of the exercise *Estrategias de fine-tuning* (fine-tuning
# strategies), one graded exercise per item, plus a written question on an experiment:
#
# | exercise | checklist item | points |
# | --- | --- | --- |
# | 1. `get_layer_groups` | layer groups identified correctly | 3 |
# | 2. `freeze_group`, `unfreeze_group`, `bn_freeze` | freeze / unfreeze functions | 2 |
# | 3. `discriminative_param_groups` | discriminative learning rates | 3 |
# | 4. `GradualUnfreezer` | gradual unfreezing | 4 (2 + 1 + 1) |
# | 5. `warmup_cosine_scheduler` | a scheduler with warmup | 3 |
# | 6. written: what the comparison shows | gradual unfreezing (does it help?) | 3 |
#
# Exercises 1-5 come first; section 6 puts them together in a real training run, section 7 compares gradual
# unfreezing with training everything at once and with fastai's `fine_tune`. The `fast` profile uses the mini
# ResNet (same module names as torchvision's ResNet-18); the tests use an even smaller `grading.tiny_net()`.

# %%
import copy
import math
from unittest import mock

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
assert groups["head"] == [tiny.fc] and groups["layer4"] == [tiny.layer4], \
    "each stage is a group of its own ([net.layer4]); the head is the children with parameters after the stages"
grouped = {id(p) for mods in groups.values() for m in mods for p in m.parameters()}
assert all(id(p) in grouped for p in tiny.parameters()), \
    "parameters in no group: " + ", ".join(n for n, p in tiny.named_parameters() if id(p) not in grouped) + \
    " (the stem is every child with parameters before layer1: conv1 and its BatchNorm bn1)"
### BEGIN HIDDEN TESTS
assert all(isinstance(v, list) for v in groups.values()), "each group is a list of modules"
assert all(any(True for _ in m.parameters()) for v in groups.values() for m in v), \
    "modules without parameters (relu, maxpool, avgpool) belong to no group"
ids = [id(p) for mods in groups.values() for m in mods for p in m.parameters()]
assert len(ids) == len(set(ids)), "a parameter belongs to two groups"
for name in models.LAYER_GROUPS:
    assert {id(p) for m in groups[name] for p in m.parameters()} == \
        {id(p) for p in models.group_parameters(tiny, name)}, f"group {name} holds the wrong parameters"
big = get_layer_groups(net)
assert sum(p.numel() for m in big["layer4"] for p in m.parameters()) == models.group_sizes(net)["layer4"], \
    "on the chapter's network too, layer4 is one group"
# variants: a deeper stem, a head of two layers, three stages (derive the groups, do not list them)
from collections import OrderedDict
variant = nn.Sequential(OrderedDict(
    conv1=nn.Conv2d(3, 4, 3), bn1=nn.BatchNorm2d(4), relu=nn.ReLU(), conv2=nn.Conv2d(4, 4, 3),
    bn2=nn.BatchNorm2d(4), maxpool=nn.MaxPool2d(2), layer1=nn.Sequential(nn.Conv2d(4, 4, 3)),
    layer2=nn.Sequential(nn.Conv2d(4, 8, 3)), layer3=nn.Sequential(nn.Conv2d(8, 8, 3)),
    avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), neck=nn.Linear(8, 8), fc=nn.Linear(8, 2)))
try:
    vg = get_layer_groups(variant)
except (AttributeError, KeyError, IndexError) as err:
    raise AssertionError("derive the groups from net.named_children(): on a net with a deeper stem, three "
                         f"stages and a two-layer head your function raised {type(err).__name__}: {err}") from None
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
# (This lesson cell calls your `get_layer_groups`; if it raises, the course's `models.layer_groups` stands in.)

# %%
layer_groups = grading.or_reference(get_layer_groups, models.layer_groups)
sizes = {name: sum(p.numel() for layer in layers for p in layer.parameters())
         for name, layers in layer_groups(net).items()}
for name, size in sizes.items():
    print(f"{name:>6}: {size:>7,} parameters")

# %%
# course check: the group sizes (in the fast profile, the mini ResNet's)
assert sizes == models.group_sizes(net), sizes
if profile.fast:
    assert sizes == {"stem": 464, "layer1": 4_672, "layer2": 14_528, "layer3": 57_728, "layer4": 230_144,
                     "head": 258}, sizes


# %% [markdown]
# ## 2. Freezing a group, BatchNorm included
#
# Chapter 1 froze layers with `requires_grad_(False)`: their weights get no gradient, so the optimizer leaves them
# alone. A BatchNorm layer holds more than weights: its **running statistics** (`running_mean`, `running_var`,
# buffers, not parameters), which it uses in eval mode. In **training mode** it normalises each batch with the
# batch's own statistics and updates its running statistics from every batch it sees, whether its parameters are
# trainable or not. After some training on the target data, a "frozen" group normalises with statistics its
# unchanged weights were never trained with: its features **drift**, and the head, trained on yesterday's features,
# is evaluated on today's. Calling `net.eval()` is no fix: the BatchNorm layers of the groups you *do* train need
# training mode.
#
# The fix (fastai's `BnFreeze` callback, and `training.train(..., freeze_bn_stats=True)` in this course): keep the
# BatchNorm layers of **frozen** groups in **eval mode** while the rest of the network trains. One catch: `net.train()`,
# which every training loop calls at the start of an epoch, puts *every* module back in training mode, so the eval
# mode has to be set again after each `net.train()`. With the small data sets fine-tuning is for, this matters: a
# few hundred images give noisy estimates of statistics that were measured on the whole source data set.
#
# To keep a mistake in one exercise from cascading into the next ones, the later solutions use the helpers' reference
# versions: `models.layer_groups(net)` (your exercise 1) and `models.freeze(net, groups)` /
# `models.unfreeze(net, groups)`.
#
# ### Exercise 2 (2 points; checklist item "freeze / unfreeze functions"): `freeze_group`, `unfreeze_group`, `bn_freeze`
#
# - `freeze_group(group_layers)`: given a list of modules (one value of `get_layer_groups`), set `requires_grad` to
#   `False` on every parameter of every module of the list, and put every BatchNorm layer inside them in eval mode
#   (nested ones too: look through `module.modules()`; `isinstance(m, nn.modules.batchnorm._BatchNorm)` is true for
#   `BatchNorm1d`, `BatchNorm2d` and `BatchNorm3d`).
# - `unfreeze_group(group_layers)`: the reverse: `requires_grad=True`, and those BatchNorm layers back in training
#   mode.
# - `bn_freeze(net)`, to call right after `net.train()`: put in eval mode every BatchNorm layer of `net` whose
#   parameters are all frozen. Change nothing else: the other BatchNorm layers and modules keep their mode, and no
#   `requires_grad` or weight changes.
#
# Write them yourself: the tests switch off the course's own version, `training.freeze_frozen_batchnorm`.

# %% nbgrader={"grade": false, "grade_id": "freeze_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_group(group_layers):
    ### BEGIN SOLUTION
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad_(False)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    ### END SOLUTION


def unfreeze_group(group_layers):
    ### BEGIN SOLUTION
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad_(True)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()
    ### END SOLUTION


def bn_freeze(net):
    ### BEGIN SOLUTION
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters())
            if params and not any(p.requires_grad for p in params):
                m.eval()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "freeze_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
no_helper = grading.blocked([training.freeze_frozen_batchnorm],  # by any name, aliases included
                           "write bn_freeze yourself: the tests switch off training.freeze_frozen_batchnorm")
tiny = grading.tiny_net()
groups = models.layer_groups(tiny)
for name in ["stem", "layer1", "layer2", "layer3", "layer4"]:
    freeze_group(groups[name])
still = [n for n, p in tiny.named_parameters() if p.requires_grad and not n.startswith("fc.")]
assert not still, \
    f"freeze_group sets requires_grad=False on every parameter of every module of the list; still trainable: {still}"
assert not tiny.bn1.training and not tiny.layer2[0].bn1.training, \
    "freeze_group puts the BatchNorm layers of the group in eval mode (bn1, and the ones inside the blocks)"
tiny.train()  # what the training loop does at the start of every epoch
with no_helper:
    bn_freeze(tiny)
before = tiny.bn1.running_mean.clone()
with torch.no_grad():
    tiny(next(iter(grading.tiny_loader()))[0] + 1.0)
assert torch.equal(tiny.bn1.running_mean, before), \
    "bn1 is frozen, but its running statistics drifted in a training-mode forward pass: after net.train(), " \
    "bn_freeze must put the BatchNorm layers of frozen groups back in eval mode"
assert tiny.training and tiny.fc.training, "bn_freeze changes only BatchNorm layers (do not call net.eval())"
### BEGIN HIDDEN TESTS
bns = lambda net, prefix="": sorted(n for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                                    and n.startswith(prefix))
evals = lambda net: sorted(n for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                           and not m.training)
assert evals(tiny) == bns(tiny), \
    f"after bn_freeze every BatchNorm of the frozen groups is in eval mode, nested ones too (downsample included); " \
    f"still training: {sorted(set(bns(tiny)) - set(evals(tiny)))}"
# unfreezing puts a group's BatchNorm back in training mode; bn_freeze leaves trainable BatchNorm alone
unfreeze_group(groups["layer4"])
assert models.trainable_groups(tiny) == ["layer4", "head"], "unfreeze_group sets requires_grad=True"
assert all(m.training for m in tiny.layer4.modules() if isinstance(m, nn.BatchNorm2d)), \
    "unfreeze_group puts the group's BatchNorm layers back in training mode"
tiny.train()
names = grading.trainable_names(tiny)
with no_helper:
    bn_freeze(tiny)
assert evals(tiny) == sorted(set(bns(tiny)) - set(bns(tiny, "layer4"))), \
    "bn_freeze puts in eval mode only the BatchNorm layers whose parameters are all frozen (layer4 is trainable)"
assert grading.trainable_names(tiny) == names, "bn_freeze must not change requires_grad"
state = copy.deepcopy(tiny.state_dict())
freeze_group(groups["layer2"])
assert all(torch.equal(v, state[k]) for k, v in tiny.state_dict().items()), "freeze_group must not change weights"
# another architecture: a BatchNorm1d in an MLP
mlp = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
freeze_group([mlp[0], mlp[1]])
assert not mlp[1].training and mlp[4].training, "freeze_group: BatchNorm1d is a BatchNorm too (and only the group's)"
assert not mlp[0].weight.requires_grad and not mlp[1].weight.requires_grad and mlp[3].weight.requires_grad
mlp.train()
with no_helper:
    bn_freeze(mlp)
assert not mlp[1].training and mlp[4].training and mlp.training, \
    "bn_freeze: the frozen BatchNorm1d in eval mode, the trainable one in training mode"
unfreeze_group([mlp[0], mlp[1]])
assert mlp[1].training and mlp[1].weight.requires_grad, "unfreeze_group reverses freeze_group"
### END HIDDEN TESTS

# %% [markdown]
# The drift, measured. The body of the chapter's network is frozen; we pass the training images through it once in
# training mode, as a training epoch does (forward passes only: no weight changes), with and without `bn_freeze`,
# and count the frozen BatchNorm layers whose running mean moved, then compare the network's outputs on the
# validation images (eval mode) before and after. (If your `bn_freeze` raises, the course's version stands in.)

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
keep_frozen_bn = grading.or_reference(bn_freeze, training.freeze_frozen_batchnorm)


def drift(use_bn_freeze):
    """Frozen body, one forward pass over the training set in training mode: (BatchNorm layers whose running
    mean changed, mean absolute change of the validation logits)."""
    probe = copy.deepcopy(net)
    models.freeze(probe)  # the body frozen, the head trainable
    logits_before = training.predict(probe, valid_iter)[0]
    stats = {n: b.clone() for n, b in probe.named_buffers() if n.endswith("running_mean")}
    probe.train()
    if use_bn_freeze:
        keep_frozen_bn(probe)
    with torch.no_grad():
        for X, _ in train_iter:
            probe(X.to(profile.device))
    moved = sum(not torch.equal(b, stats[n]) for n, b in probe.named_buffers() if n in stats)
    change = (training.predict(probe, valid_iter)[0] - logits_before).abs().mean().item()
    return moved, len(stats), change


for use in (False, True):
    moved, total, change = drift(use)
    print(f"{'with' if use else 'without'} bn_freeze: {moved} of {total} frozen BatchNorm layers drifted; "
          f"validation probabilities changed by {change:.4f} on average")

# %% [markdown]
# ## 3. Discriminative learning rates
#
# Lower layers hold generic features (edges, textures) that need little change; upper layers hold task-specific
# features that need more. **Discriminative learning rates** (ULMFiT) give each group its own rate, the largest at the
# head and the smallest at the input, spaced geometrically: each group gets the rate of the group above divided by
# the same factor. As in chapter 1, every group goes into the optimizer up front, frozen ones included.
#
# What matters is the **spread**: the ratio between the head's rate and the first group's. The factor per group
# follows from the spread and from how many groups the network is cut into, `factor = spread ** (1 / (n - 1))`:
#
# - fastai's default for CNNs, `slice(lr/100, lr)`, is a spread of 100. fastai cuts a ResNet into **three** groups
#   (two halves of the body, then the head), so that is `lr/100, lr/10, lr`: a factor of 10 per group. Over this
#   chapter's six groups the same spread is a factor of `100 ** (1/5)`, about 2.5.
# - ULMFiT divides by **2.6** per group. Howard and Ruder tuned that value for their text model, an AWD-LSTM language
#   model cut into four groups (a spread of 2.6³, about 18); it is one tuned setting, not a rule for CNNs.
# - Chapter 1 gave `layer4` the head's rate divided by 10, over two groups: a spread of 10.
#
# > **Common mistake:** carrying a factor per group over to a different number of groups. Dividing by 10 per group
# > is fastai's spread of 100 over three groups; over six groups it is a spread of 100,000, and the stem trains at
# > `lr / 100000`: frozen in all but name. Choose the spread, then derive the factor from the number of groups.
#
# ### Exercise 3 (3 points; checklist item "discriminative learning rates"): `discriminative_param_groups`
#
# Write `discriminative_param_groups(groups, max_lr, spread=100.0)`. `groups` is a dict of layer groups, input to
# output, as `get_layer_groups` returns it (any number of groups, at least two). Return a list of optimizer parameter
# groups, in the same order, one per layer group (all of them, frozen or not), each
# `{"params": <list of all the group's parameters>, "lr": <its rate>, "name": <group name>}`: the last group (the
# head) gets `max_lr`, the first gets `max_lr / spread`, and the rates in between are spaced geometrically (the same
# ratio from each group to the next). A `spread` below 1 would give the input a larger rate than the head: raise a
# `ValueError`. Write the progression yourself: the tests switch off `models.param_groups`,
# `models.discriminative_mult` and `models.geometric_param_groups`.

# %% nbgrader={"grade": false, "grade_id": "discriminative_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def discriminative_param_groups(groups, max_lr, spread=100.0):
    ### BEGIN SOLUTION
    if spread < 1:
        raise ValueError(f"spread must be >= 1 (the head's rate over the first group's), got {spread}")
    n = len(groups)
    return [{"params": [p for m in modules for p in m.parameters()],
             "lr": max_lr / spread ** ((n - 1 - i) / (n - 1)), "name": name}
            for i, (name, modules) in enumerate(groups.items())]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "discriminative_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
def no_helpers():
    """The course's versions of this exercise, switched off while your function runs."""
    return grading.blocked([models.param_groups, models.discriminative_mult, models.geometric_param_groups],
                           "write the rates yourself: the tests switch off models.param_groups, "
                           "models.discriminative_mult and models.geometric_param_groups (by any name)")

tiny = grading.tiny_net()
with no_helpers():
    pg = discriminative_param_groups(models.layer_groups(tiny), 0.01, spread=100)
lrs = {g["name"]: g["lr"] for g in pg}
assert [g["name"] for g in pg] == list(models.LAYER_GROUPS), f"one group per layer group, in order: {list(lrs)}"
assert math.isclose(lrs["head"], 0.01) and math.isclose(lrs["stem"], 0.01 / 100), \
    f"the head gets max_lr and the first group max_lr / spread (the spread is the ratio of the two ends, " \
    f"not a factor per group): {lrs}"
steps = [lrs[upper] / lrs[lower] for lower, upper in zip(models.LAYER_GROUPS, models.LAYER_GROUPS[1:])]
assert all(math.isclose(r, 100 ** (1 / 5)) for r in steps), \
    f"geometric spacing: the same ratio from each group to the next (100 ** (1/5) for six groups), got {steps}"
### BEGIN HIDDEN TESTS
# fastai's split of a ResNet into three groups: slice(lr/100, lr) is lr/100, lr/10, lr
three = {"body_a": [tiny.conv1, tiny.bn1, tiny.layer1, tiny.layer2], "body_b": [tiny.layer3, tiny.layer4],
         "head": [tiny.fc]}
with no_helpers():
    pg3 = discriminative_param_groups(three, 1.0, spread=100)
assert [g["name"] for g in pg3] == ["body_a", "body_b", "head"], "the names are the keys of the groups dict"
assert all(math.isclose(g["lr"], r) for g, r in zip(pg3, (0.01, 0.1, 1.0))), \
    f"three groups with a spread of 100 get max_lr / 100, / 10, / 1: derive the factor from the number of groups; " \
    f"got {[g['lr'] for g in pg3]}"
with no_helpers():
    default = discriminative_param_groups(three, 1.0)
    flat = discriminative_param_groups(three, 0.3, spread=1)
assert math.isclose(default[0]["lr"], 0.01), "the default spread is 100"
assert all(math.isclose(g["lr"], 0.3) for g in flat), "a spread of 1: every group at max_lr"
try:
    with no_helpers():
        discriminative_param_groups(three, 1.0, spread=0.5)
except ValueError:
    pass
else:
    raise AssertionError("a spread below 1 gives the input a larger rate than the head: raise ValueError")
# every parameter of every group exactly once, frozen ones included, each in its own group
tiny = grading.tiny_net()
models.freeze(tiny)  # all but the head
with no_helpers():
    pg = discriminative_param_groups(models.layer_groups(tiny), 0.05)
assert all(isinstance(g["params"], list) for g in pg), "params: a list of the group's parameters"
ids = [id(p) for g in pg for p in g["params"]]
assert len(ids) == len(set(ids)) == len(list(tiny.parameters())), \
    "register every group, frozen ones included (a frozen group must be trainable later; see chapter 1)"
for g in pg:
    assert {id(p) for p in g["params"]} == {id(p) for p in models.group_parameters(tiny, g["name"])}, \
        f"group {g['name']} holds the wrong parameters"
### END HIDDEN TESTS

# %% [markdown]
# The rates of the six groups for a spread of 100 (fastai's), for ULMFiT's 2.6 per group, and for the mistaken
# 10 per group (`spread = 10 ** 5`), with a head rate of 1e-3. (Your function, or the course's if yours raises.)

# %%
rates = grading.or_reference(discriminative_param_groups, models.geometric_param_groups)
groups = models.layer_groups(net)
table = {label: {g["name"]: g["lr"] for g in rates(groups, 1e-3, spread)}
         for label, spread in (("spread 100", 100.0), ("/2.6 each", 2.6 ** 5), ("/10 each", 10.0 ** 5))}
print(f"{'group':>6}" + "".join(f"  {label:>10}" for label in table))
for name in reversed(models.LAYER_GROUPS):
    print(f"{name:>6}" + "".join(f"  {lrs[name]:10.2e}" for lrs in table.values()))

# %%
# course check: the table's corners
assert math.isclose(table["spread 100"]["stem"], 1e-5) and math.isclose(table["/10 each"]["layer4"], 1e-4)
assert math.isclose(table["/2.6 each"]["layer4"], 1e-3 / 2.6)


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
# every epoch (`epoch` = 0, 1, 2, ...), before `net.train()` (and `train` then keeps frozen BatchNorm layers in eval
# mode, as your `bn_freeze` does). An unfreezer is such a callback. Since it receives the optimizer, it can also
# catch chapter 1's bug: unfreezing a group the optimizer does not know.
#
# ### Exercise 4 (4 points: 2 for the schedule, 1 for the optimizer check, 1 in training; checklist item "gradual unfreezing"): `GradualUnfreezer`
#
# Write the class `GradualUnfreezer(every=1)`. Its method `on_epoch_start(epoch, net, optimizer)` makes exactly the
# top `1 + epoch // every` groups of `models.layer_groups(net)` trainable (at least the head, at most all six) and
# freezes all the others. With `every=2`: epochs 0-1 the head only, epochs 2-3 `layer4` and the head, epochs 4-5
# `layer3` to the head, ...
# If a group to be made trainable has parameters that the optimizer does not know (in any of its `param_groups`),
# raise a `ValueError` that names the group, **before** changing anything. `grading.optimizer_param_ids(optimizer)`
# gives the set of `id`s of the optimizer's parameters. `models.freeze` / `models.unfreeze` are yours to use; the
# course's own unfreezer, `models.GradualUnfreezer`, is not (the tests switch it off).

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


# %% nbgrader={"grade": true, "grade_id": "unfreezer_schedule_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Exercise 4, property 1 (2 points): which groups are trainable at each epoch
assert models.GradualUnfreezer not in GradualUnfreezer.__mro__, \
    "write the unfreezer yourself: do not subclass models.GradualUnfreezer"
no_reference = mock.patch.object(models, "GradualUnfreezer", side_effect=AssertionError(
    "write the unfreezer yourself: the tests switch off models.GradualUnfreezer"))
tiny = grading.tiny_net()  # every group trainable, as a fresh network is
opt = torch.optim.SGD(models.param_groups(tiny, 0.01), lr=0.01)  # all groups registered
with no_reference:  # built inside the block too: a reference unfreezer kept in __init__ is refused
    unfreezer = GradualUnfreezer(every=1)
    unfreezer.on_epoch_start(0, tiny, opt)
    assert models.trainable_groups(tiny) == ["head"], \
        f"epoch 0 trains the head alone (progressive unfreezing, not freezing): got {models.trainable_groups(tiny)}"
    unfreezer.on_epoch_start(1, tiny, opt)
    assert models.trainable_groups(tiny) == ["layer4", "head"], \
        f"epoch 1 adds layer4, the group below the head: got {models.trainable_groups(tiny)}"
### BEGIN HIDDEN TESTS
expected = [list(models.LAYER_GROUPS[max(0, 5 - k):]) for k in range(8)]  # head first, toward the input
tiny = grading.tiny_net()
opt = torch.optim.SGD(models.param_groups(tiny, 0.01), lr=0.01)
with no_reference:  # built inside the block too: a reference unfreezer kept in __init__ is refused
    unfreezer = GradualUnfreezer()
    for epoch in range(8):
        unfreezer.on_epoch_start(epoch, tiny, opt)
        assert models.trainable_groups(tiny) == expected[epoch], \
            f"epoch {epoch}: expected {expected[epoch]} (one more group per epoch from the head, all six at most), " \
            f"got {models.trainable_groups(tiny)}"
        assert models.count_parameters(tiny, trainable_only=True) == \
            sum(models.group_sizes(tiny)[g] for g in expected[epoch]), f"epoch {epoch}: freeze the other groups"
# every=2 and every=3, on another network, starting from a fully trainable one
for every in (2, 3):
    other = models.MiniResNet(3, widths=(4, 4, 8, 8))
    opt = torch.optim.SGD(other.parameters(), lr=0.01)
    stages = []
    with no_reference:
        unfreezer = GradualUnfreezer(every=every)
        for epoch in range(7):
            unfreezer.on_epoch_start(epoch, other, opt)
            stages.append(models.trainable_groups(other))
    assert stages == [expected[epoch // every] for epoch in range(7)], \
        f"every={every}: one more group every {every} epochs, got {stages}"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "unfreezer_optimizer_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# Exercise 4, property 2 (1 point): a group the optimizer does not know is reported, before anything changes
tiny = grading.tiny_net()
head_only = torch.optim.SGD(tiny.fc.parameters(), lr=0.01)  # chapter 1's bug
with no_reference:  # built inside the block too: a reference unfreezer kept in __init__ is refused
    unfreezer = GradualUnfreezer()
    unfreezer.on_epoch_start(0, tiny, head_only)  # fine: the optimizer knows the head
    try:
        unfreezer.on_epoch_start(1, tiny, head_only)
    except ValueError:
        pass
    else:
        raise AssertionError("layer4 is to be unfrozen but the optimizer does not know it: raise ValueError")
### BEGIN HIDDEN TESTS
# an optimizer that knows layer4's convolutions but not its BatchNorm: every parameter of the group counts
tiny = grading.tiny_net()
partial = torch.optim.SGD([p for n, p in tiny.named_parameters() if not n.startswith("layer4.0.bn")], lr=0.01)
with no_reference:  # built inside the block too: a reference unfreezer kept in __init__ is refused
    unfreezer = GradualUnfreezer()
    unfreezer.on_epoch_start(0, tiny, partial)
    try:
        unfreezer.on_epoch_start(1, tiny, partial)
    except ValueError as err:
        message = str(err)
    else:
        raise AssertionError("the optimizer misses layer4's BatchNorm parameters: check every parameter of the "
                             "group, and raise ValueError")
assert "layer4" in message, f"the ValueError names the group the optimizer does not know, got {message!r}"
assert models.trainable_groups(tiny) == ["head"], \
    f"raise before changing anything: after the ValueError the trainable groups are {models.trainable_groups(tiny)}"
# one unnamed group holding every parameter: the optimizer knows them all
tiny = grading.tiny_net()
plain = torch.optim.SGD(tiny.parameters(), lr=0.01)
with no_reference:  # built inside the block too: a reference unfreezer kept in __init__ is refused
    unfreezer = GradualUnfreezer()
    try:
        for epoch in range(7):
            unfreezer.on_epoch_start(epoch, tiny, plain)
    except ValueError as err:
        raise AssertionError(f"SGD(net.parameters()) knows every parameter (one group without a name), but "
                             f"epoch {epoch} raised: {err}") from None
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "unfreezer_training_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# Exercise 4, property 3 (1 point): with training.train, each group trains only once it is unfrozen
def moved_groups(net, start):
    return [g for g in models.LAYER_GROUPS
            if not all(torch.equal(a, b) for a, b in zip(models.group_parameters(net, g),
                                                         models.group_parameters(start, g)))]


tiny = grading.tiny_net()
start = copy.deepcopy(tiny)
opt = torch.optim.SGD(models.param_groups(tiny, 0.05), momentum=0.9)
with no_reference:
    training.train(tiny, grading.tiny_loader(), None, opt, 2, callbacks=[GradualUnfreezer()], progress=False)
assert moved_groups(tiny, start) == ["layer4", "head"], \
    f"two epochs: the head, then layer4 and the head; the groups changed by training: {moved_groups(tiny, start)}"
### BEGIN HIDDEN TESTS
other = models.MiniResNet(3, widths=(4, 4, 8, 8))
start = copy.deepcopy(other)
opt = torch.optim.SGD(models.param_groups(other, 0.05), momentum=0.9)
with no_reference:
    training.train(other, grading.tiny_loader(num_classes=3), None, opt, 4, callbacks=[GradualUnfreezer(every=2)],
                   progress=False)
assert moved_groups(other, start) == ["layer4", "head"], \
    f"every=2, four epochs: layer4 and the head train, nothing below; changed: {moved_groups(other, start)}"
frozen_bn = {k: v for k, v in start.state_dict().items() if "running" in k and not k.startswith("layer4")}
assert all(torch.equal(other.state_dict()[k], v) for k, v in frozen_bn.items()), \
    "the groups never unfrozen keep their BatchNorm statistics"
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
# the ratios between groups (the spread) stay as chosen. `LambdaLR` does this, and so does `SequentialLR([LinearLR,
# CosineAnnealingLR])` with the default `eta_min=0`.
#
# > **Common mistake:** `CosineAnnealingLR(..., eta_min=1e-6)` with discriminative rates: one absolute floor for
# > every group, so the ratios are lost at the end of training, and the groups whose rate starts below 1e-6
# > (`layer1` and the stem with the "/10 each" rates above) get their rates *raised*. Keep `eta_min=0` or use `LambdaLR`.
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
# Use `torch.optim.lr_scheduler.LambdaLR` (or `LinearLR` + `CosineAnnealingLR` in a `SequentialLR`). Write it
# yourself: the tests switch off the course's version, `training.warmup_cosine`.

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
ref = training.lr_trace(lambda opt: training.warmup_cosine(opt, 5, 20), steps=21, lr=1.0)  # before switching it off
no_helper = grading.blocked([training.warmup_cosine],  # by any name, aliases included
                           "write the scheduler yourself: the tests switch off training.warmup_cosine")
with no_helper:
    trace = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 5, 20), steps=21, lr=1.0)
assert math.isclose(trace[0], 0.1, abs_tol=1e-6), f"warmup starts at start_factor * lr, got {trace[0]}"
assert math.isclose(trace[5], 1.0, abs_tol=1e-6), f"full learning rate after warmup, got {trace[5]}"
assert trace[20] < 1e-6, f"the cosine ends at 0, got {trace[20]}"
### BEGIN HIDDEN TESTS
assert all(a < b for a, b in zip(trace[:5], trace[1:6])), "the warmup must increase"
assert all(a > b for a, b in zip(trace[5:20], trace[6:21])), "the cosine must decrease"
assert math.isclose(trace[3], 0.1 + 0.9 * 3 / 5, abs_tol=1e-6), f"linear warmup: step 3 of 5 is 0.1 + 0.9 * 3/5, got {trace[3]}"
assert math.isclose(trace[5 + 15 // 2], 0.5 * (1 + math.cos(math.pi * 7 / 15)), abs_tol=1e-6), \
    f"cosine decay: step 12 is 0.5 * (1 + cos(pi * 7/15)), got {trace[12]}"
assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(trace, ref)), \
    f"the factors of the spec at every step: expected {[round(r, 4) for r in ref]}, got {[round(t, 4) for t in trace]}"
with no_helper:
    t2 = training.lr_trace(lambda opt: warmup_cosine_scheduler(opt, 10, 40, start_factor=0.2), steps=41, lr=0.5)
assert math.isclose(t2[0], 0.1, abs_tol=1e-6) and math.isclose(t2[10], 0.5, abs_tol=1e-6) and t2[40] < 1e-6, \
    f"use the arguments (start_factor=0.2, 10 warmup steps of 40, lr 0.5): got {t2[0]}, {t2[10]}, {t2[40]}"
assert max(t2) <= 0.5 + 1e-9, "the rate never goes above the group's own rate"
# every group keeps its own rate (discriminative ratios are preserved)
w = [nn.Parameter(torch.zeros(1)) for _ in range(3)]
opt = torch.optim.SGD([{"params": [w[0]], "lr": 1.0}, {"params": [w[1]], "lr": 1 / 2.6},
                       {"params": [w[2]], "lr": 1 / 2.6 ** 5}], lr=1.0)
with no_helper:
    sched = warmup_cosine_scheduler(opt, 3, 12)
for s in range(12):
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] <= 1.0 + 1e-9 and lrs[0] > 0, f"step {s}: the head's rate stays in (0, 1], got {lrs[0]}"
    assert math.isclose(lrs[1], lrs[0] / 2.6, rel_tol=1e-6) and math.isclose(lrs[2], lrs[0] / 2.6 ** 5, rel_tol=1e-6), \
        f"step {s}: every group keeps its own rate times the same factor (the ratios stay), got {lrs}"
    opt.step()
    sched.step()
### END HIDDEN TESTS

# %% [markdown]
# A schedule of 3 warmup epochs, 20 in all: the factor that multiplies every group's rate.

# %%
schedule = grading.or_reference(warmup_cosine_scheduler, training.warmup_cosine)  # the course's if yours raises
factors = training.lr_trace(lambda opt: schedule(opt, 3, 20), steps=20, lr=1.0)
print("factors:", [round(f, 4) for f in factors])
plots.plot_lr(factors, xlabel="step");

# %%
# course check: one warmup, then down to zero
assert factors[0] == min(factors[:4]) and max(factors) == factors[3] == 1.0

# %% [markdown]
# ## 6. Putting it together: gradual unfreezing on the mini hotdog data
#
# The pretrained model with a new head, discriminative learning rates (a spread of 100) for all six groups
# registered up front, one warmup + cosine schedule stepped every batch, and your unfreezer: one more group per epoch
# from the head down. Eight epochs: the stem is unfrozen at the sixth and trains for the last three, so every group
# trains after it is unfrozen. A second callback, `training.StageRecorder`, records which optimizer groups are
# trainable at each epoch. The validation split (held out from the training folder: half of it in the fast profile,
# a fifth in the full profile) is measured after every epoch; the
# model kept is the last epoch's, fixed in advance by the schedule (no choice is made on these numbers). Section 7
# chooses a strategy on the validation split and measures the chosen model on the test set, once.
#
# The cell uses your functions from exercises 3-5; one that raises is replaced by the course's version (with a note).

# %%
epochs, base_lr, spread = profile.epochs(8), (0.05 if profile.fast else 0.01), 100.0
warmup, steps = len(train_iter) // 2, epochs * len(train_iter)
param_groups = grading.or_reference(discriminative_param_groups, models.geometric_param_groups)
schedule = grading.or_reference(warmup_cosine_scheduler, training.warmup_cosine)
unfreezer = GradualUnfreezer(every=1)
unfreezer.on_epoch_start = grading.or_reference(unfreezer.on_epoch_start,
                                                models.GradualUnfreezer(every=1).on_epoch_start)

helpers.seed_everything(0)
gradual = models.finetune_net(profile, num_classes=2).to(profile.device)
pretrained = copy.deepcopy(gradual)
optimizer = torch.optim.SGD(param_groups(models.layer_groups(gradual), base_lr, spread), momentum=0.9)
scheduler = schedule(optimizer, warmup, steps)
recorder = training.StageRecorder()  # records the trainable groups of each epoch
history = training.train(gradual, train_iter, valid_iter, optimizer, epochs, scheduler=scheduler,
                         scheduler_interval="batch", callbacks=[unfreezer, recorder])
print(history)
for epoch, stage in enumerate(recorder.stages):
    print(f"epoch {epoch}: {stage}")
plots.plot_history(history);

# %% [markdown]
# The schedule this run followed, batch by batch, for the head, `layer4` and the stem (log scale: the curves are
# parallel, the discriminative ratios are kept). The dotted lines mark the epochs where one more group is unfrozen:
# the run warms up **once**, over its first half epoch; each newly unfrozen group joins at the current, decaying
# rate.

# %%
trace = training.lr_trace(lambda opt: training.warmup_cosine(opt, warmup, steps), steps=steps, lr=1.0)
ax = plots.plot_lr({g: [lr * f for f in trace] for g, lr in
                    (("head", base_lr), ("layer4", base_lr / spread ** 0.2), ("stem", base_lr / spread))},
                   xlabel="batch", log=True)
for epoch, stage in list(enumerate(recorder.stages))[1:]:
    if len(stage) > len(recorder.stages[epoch - 1]):
        ax.axvline(epoch * len(train_iter), color="gray", linestyle=":")
        ax.annotate(f"+{stage[0]}", (epoch * len(train_iter), ax.get_ylim()[0]), fontsize=8, rotation=90,
                    xytext=(2, 2), textcoords="offset points")

# %%
# course check: one warmup, then down only; each epoch trained the expected groups, and every group changed;
# the rates recorded at the start of each epoch keep the discriminative ratios
assert max(trace) == trace[warmup] == 1.0 and trace.index(max(trace)) == warmup
assert all(a >= b for a, b in zip(trace[warmup:], trace[warmup + 1:]))
expected = [list(models.LAYER_GROUPS[max(0, 5 - k):]) for k in range(epochs)]
assert recorder.stages == expected, recorder.stages
moved = [g for g in models.LAYER_GROUPS
         if not all(torch.equal(a, b) for a, b in zip(models.group_parameters(gradual, g),
                                                      models.group_parameters(pretrained, g)))]
assert moved == expected[-1], moved
names = [g["name"] for g in optimizer.param_groups]
for row in history.rows:
    lrs = dict(zip(names, row["lrs"]))
    assert math.isclose(lrs["layer4"], lrs["head"] / spread ** 0.2) and math.isclose(lrs["stem"], lrs["head"] / spread)
assert warmup == 0 or math.isclose(history.rows[0]["lrs"][names.index("head")], base_lr * 0.1), \
    "the warmup starts at 10 % of the rate"  # (a smoke run with one batch per epoch has no warmup)

# %%
# course check: the mini world's figure (meaningless in a smoke run of the full profile)
if profile.checks:
    assert history.final["valid_acc"] > 0.8, history.final

# %% [markdown]
# ## 7. Does gradual unfreezing help? Three strategies, same budget
#
# Gradual unfreezing has a cost: the lower groups train for fewer epochs. Is it worth it here? Three strategies,
# each with the same budget of epochs (eight, as in section 6) from the same pretrained model, the same SGD with
# momentum and the same spread of rates (100, from the head to the stem):
#
# - **gradual**: section 6's recipe (one warmup + cosine, one more group per epoch: every group is unfrozen by the
#   sixth epoch and trains for at least three);
# - **all at once**: the same rates and schedule, every group trainable from the first batch;
# - **fine_tune** (fastai's): one epoch on the head alone at `lr`, then every group for the other seven, with rates
#   spread geometrically from `lr/2/100` (stem) to `lr/2` (head) and a new warmup + cosine (`training.fine_tune`).
#   fastai's `fine_tune(epochs, base_lr)` trains the head, halves `base_lr`, then calls
#   `fit_one_cycle(epochs, slice(base_lr/100, base_lr))`: the spread is 100 as in the other two arms, the top rate
#   half of theirs. (fastai also keeps BatchNorm layers trainable in frozen groups and uses Adam and a one-cycle
#   schedule: not reproduced here.)
#
# One run says little: a different seed changes the head's initialisation, the order of the batches and the random
# crops. Each strategy runs with the same seeds (`profile.seeds(5)`; a single seed when autograding), so the runs
# are **paired**: seed `s` gives every strategy the same head and the same batches, and the difference between two
# strategies can be measured seed by seed. These runs use the course's reference functions (not your answers), so
# that the comparison does not depend on them.

# %%
def run(strategy, seed):
    """One run of `strategy` from the pretrained model, `epochs` epochs in all; returns (History, model)."""
    helpers.seed_everything(seed)
    net = models.finetune_net(profile, num_classes=2).to(profile.device)
    groups = models.geometric_param_groups(models.layer_groups(net), base_lr, spread)
    if strategy == "fine_tune":
        return training.fine_tune(net, train_iter, valid_iter, groups, base_lr, epochs, freeze_epochs=1,
                                  lr_div=spread, progress=False), net
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    scheduler = training.warmup_cosine(optimizer, warmup, steps)
    callbacks = [models.GradualUnfreezer(every=1)] if strategy == "gradual" else []
    return training.train(net, train_iter, valid_iter, optimizer, epochs, scheduler=scheduler,
                          scheduler_interval="batch", callbacks=callbacks, progress=False), net


strategies = ("gradual", "all at once", "fine_tune")
seeds = profile.seeds(5)
runs, kept = {s: [] for s in strategies}, {}
for seed in seeds:
    for s in strategies:
        history_s, model_s = run(s, seed)
        runs[s].append(history_s)
        kept.setdefault(s, model_s)  # each strategy's model of the first seed, for the test at the end

# %% [markdown]
# The final validation accuracy and loss of each strategy (mean ± standard deviation across seeds), then the
# **paired differences**: for each seed, a strategy's accuracy minus the accuracy of "all at once" with the same seed.
# The standard error of a mean difference is its standard deviation divided by the square root of the number of
# seeds; a mean difference more than about two standard errors from zero is unlikely to be seed noise.

# %%
acc = {s: [h.final["valid_acc"] for h in hs] for s, hs in runs.items()}
print(f"{'strategy':>12}  {'final valid acc':>16}  {'final valid loss':>16}  per seed (acc)")
for s, hs in runs.items():
    (m, sd), (ml, sdl) = plots.mean_std(acc[s]), plots.mean_std([h.final["valid_loss"] for h in hs])
    print(f"{s:>12}  {m:8.3f} ± {sd:.3f}  {ml:8.3f} ± {sdl:.3f}  {[round(a, 3) for a in acc[s]]}")
print(f"({len(valid_iter.dataset)} validation images: one image is {1 / len(valid_iter.dataset):.3f} of accuracy; "
      f"{len(seeds)} paired seeds)")
for s in ("gradual", "fine_tune"):
    diffs = [a - b for a, b in zip(acc[s], acc["all at once"])]
    m, sd = plots.mean_std(diffs)
    se = sd / len(diffs) ** 0.5
    print(f"{s} - all at once: {m:+.3f} ± {sd:.3f} (standard error {se:.3f}); per seed {[round(d, 3) for d in diffs]}")
plots.plot_mean_spread({s: [h["valid_acc"] for h in hs] for s, hs in runs.items()});

# %%
# course check: every strategy learns the mini task (no claim on which is best: see the question below)
if profile.checks:
    assert all(plots.mean_std(a)[0] > 0.75 for a in acc.values()), acc

# %% [markdown]
# **The chosen model, on the test set.** The strategy with the best mean validation accuracy is chosen; its model
# of the first seed is measured on the test set, once. (The other strategies' test accuracies are not looked at:
# choosing among them on the test set would make the test figure optimistic.)

# %%
chosen = max(strategies, key=lambda s: plots.mean_std(acc[s])[0])
test_loss, test_acc = training.evaluate(kept[chosen], test_iter)
print(f"chosen on validation: {chosen}; test accuracy {test_acc:.3f} "
      f"(its validation accuracy {acc[chosen][0]:.3f}, seed {seeds[0]})")

# %% [markdown] nbgrader={"grade": false, "grade_id": "comparison_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 6 (3 points, written; checklist item "gradual unfreezing", does it help?)
#
# Look at the plot, the table and the paired differences above. (a) Does one strategy beat the others on the mini
# hotdog data? Use the paired differences, their standard errors and the size of the validation set to say whether
# the differences you see are real. (b) Why might the mini world not show the benefit ULMFiT reports for gradual
# unfreezing? Name what would have to be different (data, model, learning rate) for the head-first phase to matter.
# (c) What would you run to decide? (3-8 sentences.)

# %% [markdown] nbgrader={"grade": true, "grade_id": "comparison_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
# **Rubric (3 points; grade against the student's own table and paired differences, not the numbers below).**
#
# - (a) 1 point: reads the paired differences of their own run: for each of the two comparisons, says whether the
#   mean difference is more than about two standard errors from zero (a real difference) or not (seed noise), and
#   puts its size in images of the validation set (the printed resolution). 1/2 point for comparing the means and
#   their spreads without using the pairing, 0 for naming a winner from the means alone.
# - (b) 1 point: the mechanism (a random head's large, noisy early gradients can wreck pretrained features; gradual
#   unfreezing keeps them away from the body until the head is sensible) and why it is weak here: the warmup starts
#   at 10 % of the rate, the lower groups' rates are up to 100 times smaller, and the source features suit the
#   target. Names at least one condition under which it would matter (a higher rate or no warmup, a target far
#   from the source, a bigger model on fewer images).
# - (c) 1 point: an experiment that can decide: more paired seeds (enough that the standard error is well below the
#   difference that matters), a larger validation set or cross-validation, each strategy at its own learning rate
#   tuned on validation; then the test set once, for the strategy chosen.
#
# **Model answer** (the figures to quote are those of your run's table):
# (a) Read the two paired differences: a mean difference within about two standard errors of zero is seed noise,
# whatever the means suggest; with 200 validation images one image is 0.005 of accuracy, so the validation set itself
# is no longer the limit, the number of seeds is. In the run made while writing the chapter (5 seeds): gradual minus
# all at once -0.013 ± 0.021 (standard error 0.009: within two, no difference shown); fine_tune minus all at once
# -0.026 ± 0.025 (standard error 0.011: just over two, a weak hint that fine_tune's halved top rate and second
# warmup cost accuracy in eight epochs; more seeds would have to confirm it). (b) Gradual unfreezing protects the pretrained features from the
# large, noisy gradients of a random head. Here those gradients do little harm: the warmup starts at 10 % of the
# rate, the stem's rate is 100 times smaller than the head's, and the first steps are short. It would matter with a
# higher rate or no warmup, a target farther from the source, or a bigger model on fewer images. (c) More paired
# seeds, each strategy at its own learning rate chosen on validation, then the test set once for the chosen one.

# %% [markdown]
# ## Full profile
#
# `COURSE_PROFILE=full make lab` runs the same chapter on the real ResNet-18 (`weights=ResNet18_Weights.IMAGENET1K_V1`)
# and the d2l hotdog data (224 x 224 images; a GPU is strongly advised). The groups are much larger, and just as
# top-heavy: `layer4` holds 75 % of the parameters.

# %%
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2)  # the full profile's architecture
full_sizes = {name: sum(p.numel() for m in layers for p in m.parameters())
              for name, layers in layer_groups(full_net).items()}
for name, size in full_sizes.items():
    print(f"{name:>6}: {size:>10,} parameters")

# %%
# course check: torchvision's ResNet-18 with a 2-class head
assert full_sizes == models.group_sizes(full_net) == {"stem": 9_536, "layer1": 147_968, "layer2": 525_568,
                                                      "layer3": 2_099_712, "layer4": 8_393_728, "head": 1_026}, full_sizes

# %% [markdown]
# For reference: ULMFiT (text classification) unfreezes one group per epoch from the top with rates divided by 2.6
# per group and a slanted triangular schedule (a short warmup, then a long linear decay); fastai's `fine_tune`
# trains the head alone for one epoch, then unfreezes everything with rates spread geometrically from
# `base_lr/2/100` (stem) to `base_lr/2` (head), keeps BatchNorm layers trainable, and uses a one-cycle schedule. On
# the hotdog data, d2l's fine-tuned ResNet-18 reaches 0.940 test accuracy (0.850 from scratch); gradual unfreezing
# matters most when the target data set is small and the new head would otherwise disturb the pretrained features.
#
# Points: exercise 1: 3, exercise 2: 2, exercise 3: 3, exercise 4: 4, exercise 5: 3, exercise 6 (written): 3;
# 18 in all.
