# %% [markdown]
# # Chapter 1: Fine-tuning basics
#
# A network pretrained on a large data set (ImageNet) already knows how to turn pixels into useful
# features. **Fine-tuning** reuses those features for a new task with a small data set, in two moves:
#
# 1. **Freeze the network**: keep most pretrained weights fixed and train only a new output layer (the *head*);
#    the valuable features are preserved while the randomly initialised head learns.
# 2. **Unfreeze and train again**: unfreeze layers *from the last ones toward the first ones* and keep training
#    them with a **smaller learning rate**, so the model adapts progressively to the new task.
#
# Training the head first, then unfreezing more and more layers from the top, is **layer-wise fine-tuning**:
#
# 1. load the pretrained model;
# 2. replace the last layer to match the new number of classes;
# 3. freeze the other layers;
# 4. train the new layer (with the highest learning rate);
# 5. unfreeze more layers, from the top (`layer4`) down, with smaller learning rates;
# 6. optionally fine-tune the whole network once it performs well.
#
# In this chapter you do steps 1 to 5 on a ResNet-18, choose the learning rate with a **learning-rate finder** and
# everything else on a **validation set**, and meet the classic bugs of this recipe: the deprecated
# `pretrained=True`, an optimizer that never trains the layers you unfreeze, and BatchNorm statistics that change
# although the layer is "frozen". Chapter 3 turns step 5 into a full schedule (discriminative learning rates,
# gradual unfreezing, warmup).
#
# **Profiles.** In the `fast` profile (default, CPU, seconds) the "pretrained model" is a mini ResNet trained on a
# generated food data set, and the target task is a generated mini hotdog data set. It has exactly the module names of
# torchvision's ResNet-18 (`conv1`, `bn1`, `layer1` .. `layer4`, `fc`), so every line below runs unchanged in the
# `full` profile on the real ImageNet ResNet-18 and the real hotdog data.

# %%
import copy
import itertools

import torch
import torchvision
from torch import nn
from torchvision.models import ResNet18_Weights
from tqdm.auto import tqdm

import helpers
from helpers import data, grading, models, plots, training

profile = helpers.setup()

# %% [markdown]
# ## 1. Load the pretrained model
#
# Since torchvision 0.13, pretrained weights are chosen with a **weights enum**:
#
# ```python
# from torchvision.models import resnet18, ResNet18_Weights
#
# net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
# preprocess = ResNet18_Weights.IMAGENET1K_V1.transforms() # the matching preprocessing
# ```
#
# > **Common mistake.** `resnet18(pretrained=True)` is deprecated: torchvision 0.29 still accepts it with a warning,
# > and it does not say *which* weights you get. Write `resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)`.
#
# The enum also documents the weights: where they come from, their accuracy and their size. Reading the metadata
# downloads nothing:

# %%
weights = ResNet18_Weights.IMAGENET1K_V1
print("file:      ", weights.url.rsplit("/", 1)[-1])
print("top-1 acc: ", weights.meta["_metrics"]["ImageNet-1K"]["acc@1"])
print("parameters:", f"{weights.meta['num_params']:,}")
print("classes:   ", len(weights.meta["categories"]))

# %% [markdown]
# `helpers.models.source_model(profile)` returns the pretrained source model of the active profile: in the `full`
# profile it is exactly `resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)` (with a verified download); in the
# `fast` profile it is the mini ResNet, whose top-level modules have the same names:

# %%
source = models.source_model(profile)  # kept on the CPU, untouched: the reference for the checks below
resnet18 = torchvision.models.resnet18(weights=None)  # the architecture only, to compare names
print([name for name, _ in source.named_children()])
print("source classes:", source.fc.out_features)

# %% [markdown]
# ## 2. Replace the head
#
# The source model predicts the source classes (1,000 ImageNet classes, or 10 mini food classes). The new task
# has 2 classes (hotdog, not hotdog), so the last fully connected layer `fc` is replaced by a new, randomly
# initialised `nn.Linear(net.fc.in_features, 2)`. `helpers.models.finetune_net` copies the source model (the source
# stays intact) and does exactly that. The chapter moves the model to the profile's device once, here:

# %%
net = models.finetune_net(profile, num_classes=2, source=source).to(profile.device)
print(net.fc)
print("parameters per layer group:", models.group_sizes(net))
print("total:", f"{models.count_parameters(net):,}")

# %%
# course check (not part of the lesson): the facts printed in sections 1 and 2
assert (weights.meta["num_params"], weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]) == (11_689_512, 69.758)
assert [n for n, _ in source.named_children()] == [n for n, _ in resnet18.named_children()]
assert net.fc.out_features == 2 and net.fc.in_features == source.fc.in_features
assert sum(models.group_sizes(net).values()) == models.count_parameters(net)


# %% [markdown]
# ## 3. Freeze everything but the head
#
# Freezing a parameter means `requires_grad=False`: autograd computes no gradient for it, so no optimizer can
# change it. The recipe of the fine-tuning overview (*Fine-Tuning*, the source of this chapter) freezes every
# parameter, then makes the head's trainable again:
#
# ```python
# for param in model.parameters():
#     param.requires_grad = False
# for param in model.fc.parameters():
#     param.requires_grad = True
# ```
#
# > **Common mistake.** Freezing by listing the blocks you think of, `layer1` .. `layer4`, and forgetting the
# > **stem** (`conv1` and its BatchNorm `bn1`): the first convolution, the most generic features of all, keeps
# > training at the head's learning rate. Freeze *every* parameter, then re-enable the head's (as above), and check
# > the result with the names of the trainable parameters: `[n for n, p in net.named_parameters() if p.requires_grad]`.
#
# ### Exercise 1 (recipe step 3; 2 points): `freeze_all_but_head`
#
# Write `freeze_all_but_head(net)` with `requires_grad` (the point of the exercise: the course's shortcuts
# `models.freeze`, `models.unfreeze` and `models.set_trainable` are not allowed here, and the tests block them). It
# freezes **every** parameter of `net` (the stem `conv1`/`bn1` included) except those of the head `net.fc`, which
# must be trainable afterwards **even if they were frozen before**. `net.fc` is any module (a `Linear` here; a small
# `Sequential` in other networks). Modify `net` in place (do not create, replace or re-initialise any module or
# weight: the head keeps its weights) and return `net`. It must work on any network with a `fc` attribute, of any
# size.

# %% nbgrader={"grade": false, "grade_id": "freeze_head_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_all_but_head(net):
    ### BEGIN SOLUTION
    for p in net.parameters():
        p.requires_grad_(False)
    for p in net.fc.parameters():
        p.requires_grad_(True)
    ### END SOLUTION
    return net


# %% nbgrader={"grade": true, "grade_id": "freeze_head_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
from unittest import mock

blocked = mock.MagicMock(side_effect=AssertionError(
    "write the freezing yourself with requires_grad: models.freeze, models.unfreeze and models.set_trainable "
    "are not allowed in this exercise"))
no_freeze_helpers = mock.patch.multiple(models, freeze=blocked, unfreeze=blocked, set_trainable=blocked)

tiny = grading.tiny_net()
with no_freeze_helpers:
    returned = freeze_all_but_head(tiny)
assert returned is tiny, "return the same net (modified in place), not a copy or None"
trainable = grading.trainable_names(tiny)
stem = sorted(n for n in trainable if n.startswith(("conv1.", "bn1.")))
assert not stem, f"the stem is still trainable ({stem}): freeze every parameter, conv1 and bn1 included"
assert trainable == {"fc.weight", "fc.bias"}, f"only the head's parameters must be trainable, got {sorted(trainable)}"
### BEGIN HIDDEN TESTS
def check_frozen(net, what):
    with no_freeze_helpers:
        out = freeze_all_but_head(net)
    assert out is net, f"{what}: return the same net (modified in place)"
    head = {"fc." + n for n, _ in net.fc.named_parameters()}
    got = grading.trainable_names(net)
    bns = {n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d) and any(p.requires_grad for p in m.parameters())}
    assert not bns, f"{what}: BatchNorm layers still trainable: {sorted(bns)} (freeze every parameter, BatchNorm included)"
    assert got == head, f"{what}: the trainable parameters must be exactly the head's {sorted(head)}, got {sorted(got)}"

# a head frozen before must be trainable afterwards; a backbone partly trainable before ends frozen
tiny = grading.tiny_net()
for n, p in tiny.named_parameters():
    p.requires_grad_(n.startswith(("layer4.", "conv1.")))
check_frozen(tiny, "a net whose head was frozen and whose layer4/conv1 were trainable before")
# in place: the head keeps its object and its weights, no parameter is replaced or changed
tiny = grading.tiny_net(num_classes=3, seed=1)
fc, params = tiny.fc, dict(tiny.named_parameters())
values = {n: p.detach().clone() for n, p in params.items()}
check_frozen(tiny, "the tiny net")
assert tiny.fc is fc, "do not replace the head: keep the same net.fc module (it keeps its weights)"
assert all(q is params[n] for n, q in tiny.named_parameters()), "do not create or replace any parameter"
assert all(torch.equal(q, values[n]) for n, q in tiny.named_parameters()), "do not change or re-initialise any weight"
# calling it twice changes nothing
check_frozen(tiny, "a second call on the same net")
# another architecture and size: a wider mini ResNet, torchvision's ResNet-18, a Sequential head
check_frozen(models.MiniResNet(5, widths=(2, 4, 6, 8)), "a mini ResNet of other widths")
r18 = torchvision.models.resnet18(weights=None, num_classes=3)
check_frozen(r18, "torchvision's resnet18")
assert models.trainable_groups(r18) == ["head"] and models.count_parameters(r18, trainable_only=True) == 512 * 3 + 3
seq = grading.tiny_net()
seq.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
for p in seq.fc.parameters():
    p.requires_grad_(False)
try:
    check_frozen(seq, "a net whose head net.fc is a Sequential (frozen before)")
except AttributeError as err:
    raise AssertionError(f"net.fc may be any module, here a Sequential: use net.fc.parameters() ({err})") from None
assert not blocked.called, "write the freezing yourself: the course's freeze helpers were called"
### END HIDDEN TESTS

# %% [markdown]
# ## 4. Per-group learning rates, and the optimizer that never trains `layer4`
#
# > **Common mistake.** Building the optimizer from the *currently trainable* parameters,
# > `SGD(net.fc.parameters(), ...)` or `[p for p in net.parameters() if p.requires_grad]`, then unfreezing `layer4`
# > and training on with the same optimizer. **`layer4` is never trained**: it now gets gradients, but the optimizer
# > does not know its parameters, so it never updates them, and nothing warns you. Fix: register every group up
# > front, or rebuild the optimizer at each stage (below).
#
# Two correct ways:
#
# * **register every group up front** (as fastai does): one optimizer group per layer group, frozen ones
#   included, each with its own learning rate. A frozen parameter has no gradient, and PyTorch's optimizers skip
#   parameters whose `.grad` is `None`, so it is not changed until you unfreeze it. The optimizer state and any
#   learning-rate scheduler carry on across stages. `helpers.models.param_groups(net, lr, lr_mult)` does this
#   for all six groups of the course;
# * or **rebuild the optimizer (and its scheduler)** after every unfreezing, from the new set of trainable
#   parameters (momentum/Adam state is lost at each stage).
#
# Per-group learning rates are given as a list of dicts, `{"params": [...], "lr": ...}`: the pretrained `layer4`
# gets a **smaller** learning rate than the new head, so its good weights change gently.
#
# ### Exercise 2 (recipe steps 4-5 and the optimizer bug; 3 points): `finetune_param_groups`
#
# Write `finetune_param_groups(net, lr)`: return a list of two optimizer parameter groups,
# `{"params": <list of all layer4 parameters>, "lr": lr / 10, "name": "layer4"}` and
# `{"params": <list of all fc parameters>, "lr": lr, "name": "head"}`.
# Include `layer4`'s parameters **even when `layer4` is frozen** (it will be unfrozen later with the same optimizer),
# and only those two layers' parameters. Do not change which parameters are trainable (the optimizer is built during
# stage 1, while `layer4` is frozen). Build the groups from `net.layer4` and `net.fc` yourself: `models.param_groups`
# does it for all six groups and is not allowed here (the tests block it).

# %% nbgrader={"grade": false, "grade_id": "param_groups_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def finetune_param_groups(net, lr):
    ### BEGIN SOLUTION
    return [{"params": list(net.layer4.parameters()), "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "param_groups_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
no_param_groups = grading.blocked(  # every name of these helpers, aliases included
    [models.param_groups, models.geometric_param_groups],
    "build the two groups from net.layer4 and net.fc yourself: models.param_groups is not allowed in this exercise "
    "(nor models.geometric_param_groups)")

def groups_by_name(net, lr):
    with no_param_groups:
        groups = finetune_param_groups(net, lr)
    by_name = {g["name"]: g for g in groups}
    assert "layer4" in by_name, (f"no group named 'layer4' (got {list(by_name)}): register layer4 although it is "
                                 "frozen now, or the optimizer never trains it after unfreezing")
    assert set(by_name) == {"layer4", "head"} and len(groups) == 2, \
        f"exactly two groups, named 'layer4' and 'head', got {[g['name'] for g in groups]}"
    return by_name

def check_params(net, by_name, what="the tiny net"):
    for name, module in (("layer4", net.layer4), ("head", net.fc)):
        got, want = {id(p) for p in by_name[name]["params"]}, {id(p) for p in module.parameters()}
        assert not want - got, (f"{what}: the '{name}' group misses {len(want - got)} of its {len(want)} parameters; "
                                "register all of them, frozen ones included (register every group up front)")
        assert not got - want, f"{what}: the '{name}' group holds {len(got - want)} parameters of other layers"

tiny = grading.tiny_net()
for n, p in tiny.named_parameters():
    p.requires_grad_(n.startswith("fc."))  # stage 1: layer4 frozen when the optimizer is built
by_name = groups_by_name(tiny, 0.01)
check_params(tiny, by_name)
assert abs(by_name["head"]["lr"] - 0.01) < 1e-12, f"the head's rate is lr = 0.01, got {by_name['head']['lr']}"
assert abs(by_name["layer4"]["lr"] - 0.001) < 1e-12, f"layer4's rate is lr / 10 = 0.001, got {by_name['layer4']['lr']}"
### BEGIN HIDDEN TESTS
assert all(isinstance(g["params"], (list, tuple)) for g in by_name.values()), \
    "give lists of parameters (a generator is consumed once: the second reader sees an empty group)"
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}, \
    "do not change which parameters are trainable: layer4 stays frozen until stage 2 unfreezes it"
# the lr argument, and the smaller rate for the pretrained layer
by_name = groups_by_name(tiny, 0.3)
assert abs(by_name["head"]["lr"] - 0.3) < 1e-12 and abs(by_name["layer4"]["lr"] - 0.03) < 1e-12, \
    "use the lr argument: head at lr, layer4 at lr / 10"
# the same groups whatever is frozen: everything trainable, or everything frozen (head included)
for trainable in (True, False):
    tiny = grading.tiny_net()
    for p in tiny.parameters():
        p.requires_grad_(trainable)
    check_params(tiny, groups_by_name(tiny, 0.1), f"a net with requires_grad={trainable} everywhere")
# another architecture and size: torchvision's ResNet-18 (two blocks in layer4), a mini ResNet of other widths
for other in (torchvision.models.resnet18(weights=None, num_classes=3), models.MiniResNet(5, widths=(2, 4, 6, 8))):
    check_params(other, groups_by_name(other, 0.02), type(other).__name__)
# end to end: built in stage 1, the same optimizer trains layer4 once it is unfrozen, and nothing below it
tiny = grading.tiny_net()
for n, p in tiny.named_parameters():
    p.requires_grad_(n.startswith("fc."))
with no_param_groups:
    opt = torch.optim.SGD(finetune_param_groups(tiny, 0.05), momentum=0.9)
before = copy.deepcopy(tiny.state_dict())
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert torch.equal(tiny.layer4[0].conv1.weight, before["layer4.0.conv1.weight"]), "frozen layer4 must not move"
assert not torch.equal(tiny.fc.weight, before["fc.weight"]), "stage 1 must train the head"
for p in tiny.layer4.parameters():
    p.requires_grad_(True)
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert not torch.equal(tiny.layer4[0].conv1.weight, before["layer4.0.conv1.weight"]), \
    "after unfreezing, the same optimizer must train layer4"
assert torch.equal(tiny.layer3[0].conv1.weight, before["layer3.0.conv1.weight"]), "layer3 stays frozen: it must not move"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Training, validation and test data
#
# From here on you **choose** things: a learning rate, how many epochs to keep, whether stage 2 is worth it. Every
# choice made by looking at a data set's accuracy fits that data set a little, noise included: pick the best of ten
# learning rates by test accuracy and the winner's test accuracy is partly luck, an optimistic estimate of how the
# model does on new images. So the training folder is split once (seeded, stratified, 20 %) into a **training set**,
# which the model learns from, and a **validation set**, on which every choice is made. The **test set** is kept
# aside and evaluated **once**, on the final model, to report it. This is the first lesson of fastbook, and it holds
# for every chapter of this course.
#
# > **Common mistake.** Passing the test set to the training loop and reading the best epoch or learning rate off its
# > curves: the reported test accuracy is then optimistic. Choose on the validation set, report the test set once.
#
# The batches are small (8 images in the `fast` profile, 32 in `full`), so that one epoch gives the learning-rate
# finder of the next section enough steps (24 and 50).

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile, batch_size=8 if profile.fast else 32)
print("images: train", len(train_iter.dataset), "| valid", len(valid_iter.dataset), "| test", len(test_iter.dataset))
print("training steps per epoch:", len(train_iter))
print(f"one validation image is {1 / len(valid_iter.dataset):.3f} of validation accuracy")

# %% [markdown]
# ## 6. Choose the learning rate with a learning-rate finder
#
# The learning rate is the most important setting of the optimizer. A **learning-rate finder** (Leslie Smith's
# range test, fastai's `lr_find`) trains a *copy* of the model for at most one epoch while the rate grows
# geometrically from tiny to huge, one step per batch, and records the training loss. Too small a rate: the loss
# barely moves. Too large: it blows up (the finder stops there). In between it falls fastest.
# `helpers.training.lr_find(net, train_iter, optimizer, start_lr, end_lr)` returns the rates and the smoothed losses
# and leaves `net` and the optimizer passed in as they were. One epoch of our small training set gives only a few
# dozen noisy steps, so we run the test three times (other shuffles) and average the curves (`repeats=3`): the
# minimum of a single curve can land anywhere. It sweeps the head's rate; `layer4`'s group keeps its ratio
# (`lr / 10`), frozen for now.
#
# Stage 1 trains the head on frozen features, so the finder runs in that setting. From here on the lesson uses your
# two functions; should one of them raise (an unfinished exercise), the course's reference version takes over, with a
# one-line note, so that the experiments still run (your exercise is graded on your own function):

# %%
def reference_groups(net, lr):
    """The course's version of Exercise 2: helpers.models.param_groups, layer4 at lr / 10, head at lr."""
    return [g for g in models.param_groups(net, lr, {"layer4": 0.1}) if g["name"] in ("layer4", "head")]

freeze_head = grading.or_reference(freeze_all_but_head, models.freeze)  # models.freeze: all but the head
head_groups = grading.or_reference(finetune_param_groups, reference_groups)

# %%
freeze_head(net)
probe = torch.optim.SGD(head_groups(net, 1.0), momentum=0.9)  # its rates only fix the ratio head/layer4
lrs, losses = training.lr_find(net, train_iter, probe, start_lr=1e-4, end_lr=10, repeats=3)  # 3 curves, averaged
skip = 5 if len(losses) > 10 else 0  # the first points average only a few batches: too noisy (fastai's plot skips them too)
lowest = lrs[min(range(skip, len(losses)), key=losses.__getitem__)]
lr = float(f"{lowest / 10:.1g}")  # one order of magnitude below the minimum, rounded
print(f"{len(lrs)} steps; loss lowest at lr={lowest:.2g}; chosen lr={lr:g}")
plots.plot_lr_find(lrs, losses, suggestion=lr);

# %% [markdown]
# **Which rate?** Not the one at the minimum of the curve: there the loss is about to blow up, the rate is already
# almost too large. The rule of thumb (fastbook) is **one order of magnitude below the minimum**, where the curve
# still falls steeply: the loss decreases fast and safely. The finder gives an order of magnitude, not a precise
# value, hence the rounding: its curve of a few dozen noisy steps moves with the seed (run it with another seed and
# the chosen rate can change by a factor of a few). The finder sees only the training loss; whether the model
# generalises is judged on the validation set, in the next sections.
#
# > **Common mistake.** Picking the rate at the minimum of the finder's curve (or where the loss diverges): it is
# > too large, training is unstable. Take about a tenth of it.
#
# ## 7. Stage 1: train the head
#
# The backbone is frozen, `layer4` is already registered in the optimizer (at `lr / 10`) but frozen, and the
# new head trains at `lr`. `helpers.training.train` is the course's training loop; it returns a per-epoch history.
# With `restore_best=True` it keeps the epoch with the best **validation** accuracy (early stopping, chosen on the
# validation set).

# %%
optimizer = torch.optim.SGD(head_groups(net, lr), momentum=0.9)  # head at lr, layer4 at lr / 10
print("trainable groups:", models.trainable_groups(net))
print("trainable parameters:", models.count_parameters(net, trainable_only=True))

stage1 = training.train(net, train_iter, valid_iter, optimizer, profile.epochs(3), desc="head only",
                        restore_best=True)
print(stage1, "| best epoch", stage1.best_epoch)
after_stage1 = copy.deepcopy(net)  # kept for the experiments below

# %% [markdown]
# The head learned the new task from the frozen pretrained features. Checked: the backbone did not move at all,
# neither its weights **nor its BatchNorm running statistics** (more on those in section 9):

# %%
def backbone_state(m):
    return {k: v.cpu() for k, v in m.state_dict().items() if not k.startswith("fc.")}

unchanged = all(torch.equal(v, backbone_state(source)[k]) for k, v in backbone_state(net).items())
print("backbone identical to the pretrained model:", unchanged)
assert unchanged

# %%
# course check (not part of the lesson): stage 1 trained the head only, and learned the mini task
assert models.trainable_groups(net) == ["head"]
if profile.checks:  # the mini world's figures; in the full profile they depend on the data and the GPU
    assert stage1.best_valid_acc >= 0.8, stage1

# %% [markdown]
# ## 8. Stage 2: unfreeze `layer4` with a smaller learning rate
#
# Now unfreeze the top block of the backbone and keep training **with the same optimizer**: `layer4` was registered
# at `lr / 10` from the start, so it is trained now. The layers below (`stem` .. `layer3`) stay frozen.

# %%
models.unfreeze(net, "layer4")
print({g["name"]: g["lr"] for g in optimizer.param_groups})
print("trainable groups:", models.trainable_groups(net))
print("trainable parameters:", models.count_parameters(net, trainable_only=True))
assert models.trainable_groups(net) == ["layer4", "head"]
sizes = models.group_sizes(net)
assert models.count_parameters(net, trainable_only=True) == sizes["layer4"] + sizes["head"]

stage2 = training.train(net, train_iter, valid_iter, optimizer, profile.epochs(3), desc="layer4 + head",
                        restore_best=True)
print(stage2, "| best epoch", stage2.best_epoch)
plots.plot_history({"stage 1: head": stage1, "stage 2: layer4 + head": stage2});

# %%
moved = {g: not all(torch.equal(a, b) for a, b in zip(models.group_parameters(net, g),
                                                       models.group_parameters(after_stage1, g)))
         for g in models.LAYER_GROUPS}
print("groups changed by stage 2:", [g for g, m in moved.items() if m])
assert [g for g, m in moved.items() if m] == ["layer4", "head"]

# %% [markdown]
# Stage 2 trained exactly `layer4` and the head. Did it help? **The validation set decides** which model is final,
# and the test set is evaluated once, on that model only. On ties the simpler model (stage 1) wins:

# %%
final = net if stage2.best_valid_acc > stage1.best_valid_acc else after_stage1
print(f"validation accuracy: stage 1 {stage1.best_valid_acc:.3f}, stage 2 {stage2.best_valid_acc:.3f}"
      f" -> final model: stage {1 if final is after_stage1 else 2}")
test_loss, test_acc = training.evaluate(final, test_iter)  # the test set, once
print(f"test accuracy of the final model: {test_acc:.3f}")

# %%
# course check (not part of the lesson)
if profile.checks:
    assert test_acc >= 0.8, test_acc

# %% [markdown]
# ### Did stage 2 help? One run cannot say
#
# The comparison above is one run: a different seed (another head initialisation, other batches, other random
# crops) gives other accuracies, and on a validation set of a few hundred images a difference of an image or two
# is noise. To know whether unfreezing `layer4` helps **on this task**, repeat the experiment with several seeds and
# make it fair:
#
# * **the same budget**: both arms train 3 epochs on the head, then 3 more epochs, either of the head alone or of
#   `layer4` and the head, with the same optimizer settings; they differ only in whether `layer4` is unfrozen;
# * **paired seeds**: for each seed both arms start from the same stage-1 model and see the same batches in the same
#   order, so the *difference* between the arms, seed by seed, is free of most of the luck.
#
# The result is the mean ± standard deviation over seeds, and the mean paired difference with its own spread. All
# of it is measured on the **validation** set: choosing the recipe is a choice too.

# %%
def stage2_experiment(seed, head_epochs=3, more_epochs=3):
    """Validation accuracy after each epoch, {arm: [acc, ...]}, of both arms for one seed."""
    helpers.seed_everything(seed)
    model = models.finetune_net(profile, num_classes=2, source=source).to(profile.device)
    freeze_head(model)
    opt = torch.optim.SGD(head_groups(model, lr), momentum=0.9)
    shared = training.train(model, train_iter, valid_iter, opt, profile.epochs(head_epochs), progress=False)
    curves = {}
    for arm in ("head only", "layer4 + head"):
        arm_model, arm_opt = copy.deepcopy((model, opt))  # the same stage-1 model and optimizer state
        if arm == "layer4 + head":
            models.unfreeze(arm_model, "layer4")
        helpers.seed_everything(1000 + seed)  # the same batches and crops for both arms
        more = training.train(arm_model, train_iter, valid_iter, arm_opt, profile.epochs(more_epochs), progress=False)
        curves[arm] = shared["valid_acc"] + more["valid_acc"]
    return curves

seeds = profile.seeds(4)
runs = {"head only": [], "layer4 + head": []}
for seed in tqdm(seeds, desc="seeds"):
    for arm, curve in stage2_experiment(seed).items():
        runs[arm].append(curve)
final_acc = {arm: [curve[-1] for curve in curves] for arm, curves in runs.items()}
diff = [b - a for a, b in zip(final_acc["head only"], final_acc["layer4 + head"])]
for arm, accs in final_acc.items():
    print(f"{arm:14s} validation accuracy after 6 epochs: {plots.mean_std(accs)[0]:.3f} ± {plots.mean_std(accs)[1]:.3f}"
          f"  (seeds: {', '.join(f'{a:.3f}' for a in accs)})")
print(f"paired difference (layer4 + head) - (head only): {plots.mean_std(diff)[0]:+.3f} ± {plots.mean_std(diff)[1]:.3f};"
      f" layer4 + head better for {sum(d > 0 for d in diff)} of {len(diff)} seeds, worse for {sum(d < 0 for d in diff)}")
plots.plot_mean_spread(runs);

# %% [markdown]
# **How to read it.** The bars are the means over the seeds with one standard deviation as error bars; the curves
# show each epoch's mean with a band of ± one standard deviation (the first 3 epochs, stage 1, are the same model for
# both arms). The number that decides is the **paired difference**: the same seed's two arms share the head's
# initialisation and the batches, so their difference removes most of the luck they have in common. Unfreezing
# `layer4` helps on this task when the mean difference is clearly larger than its standard deviation and (almost)
# every seed goes the same way; when it is not, the honest answer is "no difference measurable here", not "stage 1
# is better".
#
# In the fast profile we measured no difference (in our run: -0.012 ± 0.041, two seeds each way). Why: 200 training
# images for the 230,000 parameters of `layer4`. Unfreezing adds capacity that fits the training set as fast as it
# helps validation, and three epochs at `lr / 10` move `layer4` little. Unfreezing pays off with more data or a
# larger gap between the source task and yours (the full profile's 1,600 training images; chapter 3 goes further).
# ### The optimizer bug, reproduced
#
# The same stage 2, but with the optimizer built from the trainable parameters of stage 1 (the head only). `layer4`
# is unfrozen, receives gradients... and does not change. A few batches are enough to see it:

# %%
few_batches = list(itertools.islice(train_iter, 3))  # for the two demonstrations below
buggy = copy.deepcopy(after_stage1)
buggy_opt = torch.optim.SGD([p for p in buggy.parameters() if p.requires_grad], lr=lr, momentum=0.9)  # head only
models.unfreeze(buggy, "layer4")
training.train(buggy, few_batches, None, buggy_opt, 1, progress=False)
layer4_moved = not torch.equal(buggy.layer4[0].conv1.weight, after_stage1.layer4[0].conv1.weight)
print("layer4 has gradients:", buggy.layer4[0].conv1.weight.grad is not None, "| layer4 changed:", layer4_moved)
assert buggy.layer4[0].conv1.weight.grad is not None and not layer4_moved

# %% [markdown]
# The fix, if you do not register all groups up front: build a **new** optimizer at each stage from the groups that
# are now trainable (and a new scheduler with it), for example
# `torch.optim.SGD(finetune_param_groups(net, lr), momentum=0.9)` after `models.unfreeze(net, "layer4")`.
#
# (Adding the unfrozen group later with `optimizer.add_param_group(...)` has its own trap once a learning-rate
# scheduler exists: see chapter 5.)
#
# ## 9. BatchNorm in frozen layers
#
# `requires_grad=False` freezes **parameters**. A BatchNorm layer also has **buffers**, `running_mean` and
# `running_var`, which are not learned by gradient descent: in training mode (`net.train()`) every forward pass
# normalises with the batch statistics and updates the running averages. A "frozen" backbone run in training mode
# therefore still changes: its weights stay put, its BatchNorm statistics drift toward the new data set, and the
# features the head was trained on shift under it.
#
# `helpers.training.train` avoids this by default (`freeze_bn_stats=True`): after `net.train()` it puts every
# BatchNorm whose parameters are all frozen back in eval mode (`helpers.training.freeze_frozen_batchnorm`). Here is
# what happens without it:

# %%
drift = copy.deepcopy(after_stage1)  # backbone frozen, head trainable
drift_opt = torch.optim.SGD(drift.fc.parameters(), lr=lr, momentum=0.9)
training.train(drift, few_batches, None, drift_opt, 1, freeze_bn_stats=False, progress=False)
same_weights = all(torch.equal(a, b) for a, b in zip(models.group_parameters(drift, "layer1"),
                                                      models.group_parameters(after_stage1, "layer1")))
same_stats = torch.equal(drift.layer1[0].bn1.running_mean, after_stage1.layer1[0].bn1.running_mean)
print("frozen layer1: same weights:", same_weights, "| same BatchNorm running mean:", same_stats)
assert same_weights and not same_stats

# %% [markdown]
# Which is right? With a small target data set and a frozen backbone, keep the pretrained statistics (BatchNorm in
# eval mode, as here). fastai chooses the other consistent option: BatchNorm layers stay *trainable* (weights and
# statistics) even in frozen groups. What is inconsistent is freezing the affine weights while letting the statistics
# drift without noticing.
#
# Chapter 3 makes this a checklist item of its own: keeping the frozen groups' BatchNorm layers in eval mode.
#
# ## 10. Written question

# %% [markdown] nbgrader={"grade": false, "grade_id": "lr_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Exercise 3 (recipe steps 4-5 and its validation tip; written, 3 points).** In this chapter the new head was
# trained first with the backbone frozen, then `layer4` was unfrozen with a learning rate ten times smaller than the
# head's; the best epochs, the final stage and the recipe were chosen on the validation set.
# (a) Why not unfreeze the whole network from the first epoch, with the head's learning rate everywhere?
# (b) Why is `layer4` unfrozen before `layer1`, and why does it get a smaller learning rate than the head? Then look
# at **your** output of section 8 ("Did stage 2 help?"): quote the two arms' mean ± standard deviation and the paired
# difference, and say what they let you conclude about unfreezing `layer4` on this task, and why.
# (c) Suppose you had chosen the learning rate, the best epochs and the final stage by looking at test accuracies
# instead. Why would the test accuracy you report then be too optimistic, and why more so with a small test set? Use
# what section 5 printed (how much one validation image weighs) in your answer.

# %% [markdown] nbgrader={"grade": true, "grade_id": "lr_question", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (3 points; grade against the student's own output, which varies with the machine and the data).**
# - (a) 1 point: the new head starts random, so its first gradients are large and noisy and flow back into the
#   pretrained layers; at the head's high rate they wreck the pretrained features before the head has learned to use
#   them (0.5). Training the head first on frozen features gives it sensible weights, so the later gradients into
#   the backbone are small and meaningful; a small data set is also overfitted fast by the whole network (0.5).
# - (b) 1 point: early layers compute generic features (edges, colours, textures) that transfer to almost any task,
#   the last block the most source-specific ones, which need to adapt most; its weights are already good, so a
#   smaller rate adapts them gently while the head, trained from scratch, needs the largest rate (0.5). The numbers
#   quoted are those the student's section 8 printed, and the conclusion follows from them (0.5): a difference
#   counts as real only when the mean paired difference is clearly larger than its spread and (almost) every seed
#   goes the same way; otherwise the right answer is "no difference measurable on this task", with a reason (for
#   example, frozen features already close to what the target task needs, or a difference smaller than a few
#   validation images). No credit for this half for claiming an effect the printed spread does not support.
# - (c) 1 point: each measured accuracy is the true accuracy plus noise, and picking the best of several candidates
#   by test accuracy picks in part the luckiest one, so its test accuracy overestimates how it does on new images:
#   the test set has been used to choose and is no longer held out (0.5). The noise shrinks with the number of
#   images (one image weighs 1/n; the standard error of an accuracy p is about sqrt(p(1-p)/n)); the student uses
#   the weight of one validation image printed in section 5 (0.5).
#
# **Model answer** (numbers: "in your run", from the printed output).
# (a) The new head starts random: its first gradients are large and noisy, and they flow back into the pretrained
# layers; with a high learning rate everywhere they would destroy the pretrained features before the head has
# learned to use them (and a small target data set would be overfitted quickly). Training the head first on frozen
# features gives it sensible weights, so later gradients into the backbone are small and meaningful.
# (b) Early layers compute generic features (edges, colours, textures) that transfer to almost any image task;
# the last block computes the most source-specific features, which need to adapt most, so it is unfrozen first.
# Pretrained weights are already good: a smaller learning rate adapts them gently instead of overwriting them,
# while the head, trained from scratch, needs the largest rate. In my run, section 8 printed the two arms' validation
# accuracies (mean ± standard deviation over the seeds) and their paired difference; the conclusion is the one the
# spread allows (see the rubric above for how to grade it against the student's own numbers).
# (c) Each measured accuracy is the true accuracy plus noise. Picking the best of several candidates by test accuracy
# picks, in part, the one whose noise happened to be favourable, so the winner's test accuracy overestimates how it
# does on new images: the test set has been used to fit the choices and is no longer held out. The fewer the
# images, the larger the noise (one image weighs 1/n of the accuracy, as section 5 printed for the validation set),
# and the larger this optimism. Choosing on a validation set and evaluating the test set once keeps the reported
# number unbiased.
# ### END SOLUTION
#

# %% [markdown]
# ## Full profile
#
# Run this chapter with the real data and weights: `COURSE_PROFILE=full make lab` (downloads the d2l hotdog
# data set and `resnet18-f37072fd.pth`, about 45 MB, once; a GPU is strongly advised). Then `source_model` is
# `resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)` (top-1 69.758 % on ImageNet, 11,689,512 parameters), and
# images are 224 x 224. The parameter counts of the layer groups become:

# %%
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2)  # the full profile's architecture
print({g: f"{n:,}" for g, n in models.group_sizes(full_net).items()})
freeze_head(full_net)
print("head only:    ", f"{models.count_parameters(full_net, trainable_only=True):>10,}")
models.unfreeze(full_net, "layer4")
print("layer4 + head:", f"{models.count_parameters(full_net, trainable_only=True):>10,}")

# %%
# course check (not part of the lesson): ResNet-18 with a 2-class head
assert models.group_sizes(full_net)["layer4"] == 8_393_728 and models.count_parameters(full_net) == 11_177_538

# %% [markdown]
# `layer4` holds 8.4 M of the 11.2 M parameters: unfreezing it is a big step, which is one more reason to give it a
# small learning rate. For reference, d2l's fine-tuned ResNet-18 (all layers trained, head at 10x the rate) reaches
# 0.940 test accuracy on the hotdog data set after 5 epochs, against 0.850 for the same network trained from scratch
# (chapter 2).
#
# **Exercises and points** (the fine-tuning overview this chapter follows has no exercise section; each exercise
# grades a step of its recipe):
#
# | exercise | grade id | what | grading | points |
# | --- | --- | --- | --- | --- |
# | 1 | `freeze_head_tests` | freeze all but the head (recipe step 3) | auto | 2 |
# | 2 | `param_groups_tests` | per-group rates, all groups registered (steps 4-5, the optimizer bug) | auto | 3 |
# | 3 | `lr_question` | why this recipe, why a validation set (steps 4-5, the validation tip) | written | 3 |
# | | | | total | 8 |
