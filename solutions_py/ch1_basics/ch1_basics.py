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
# NBVAL_CHECK_OUTPUT
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
# NBVAL_CHECK_OUTPUT
source = models.source_model(profile)  # kept on the CPU, untouched: the reference for the checks below
resnet18 = torchvision.models.resnet18(weights=None)  # the architecture only, to compare names
print([name for name, _ in source.named_children()])
assert [n for n, _ in source.named_children()] == [n for n, _ in resnet18.named_children()]
print("source classes:", source.fc.out_features)

# %% [markdown]
# ## 2. Replace the head
#
# The source model predicts the source classes (1,000 ImageNet classes, or 10 mini food classes). The new task
# has 2 classes (hotdog, not hotdog), so the last fully connected layer `fc` is replaced by a new, randomly
# initialised `nn.Linear(net.fc.in_features, 2)`. `helpers.models.finetune_net` copies the source model (the source
# stays intact) and does exactly that. The chapter moves the model to the profile's device once, here:

# %%
# NBVAL_CHECK_OUTPUT
net = models.finetune_net(profile, num_classes=2, source=source).to(profile.device)
print(net.fc)
print("parameters per layer group:", models.group_sizes(net))
print("total:", f"{models.count_parameters(net):,}")


# %% [markdown]
# ## 3. Freeze everything but the head
#
# Freezing a parameter means `requires_grad=False`: autograd computes no gradient for it, so no optimizer can
# change it.
#
# ### Exercise 1 (no seed exercise: recipe step 3; 2 points): `freeze_all_but_head`
#
# Write `freeze_all_but_head(net)`: it freezes **every** parameter of `net` (the stem `conv1`/`bn1` included)
# except those of the head `net.fc`, which must be trainable afterwards **even if they were frozen before**.
# Modify `net` in place (do not create or replace any module: the head keeps its weights) and return `net`.

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
tiny = grading.tiny_net()
assert freeze_all_but_head(tiny) is tiny, "return the same net"
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}, grading.trainable_names(tiny)
assert models.count_parameters(tiny, trainable_only=True) == 16 * 2 + 2
### BEGIN HIDDEN TESTS
# the stem (conv1, bn1) and every BatchNorm are frozen too
tiny = grading.tiny_net()
freeze_all_but_head(tiny)
assert not any(p.requires_grad for n, p in tiny.named_parameters() if not n.startswith("fc.")), \
    "every parameter outside fc must be frozen (stem conv1/bn1 included)"
# a head that was frozen before must become trainable
tiny = grading.tiny_net()
for p in tiny.parameters():
    p.requires_grad_(False)
freeze_all_but_head(tiny)
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}, "the head must be trainable afterwards"
# in place: the head keeps its object and its weights
tiny = grading.tiny_net()
fc, w = tiny.fc, tiny.fc.weight.detach().clone()
freeze_all_but_head(tiny)
assert tiny.fc is fc and torch.equal(tiny.fc.weight, w), "do not replace or re-initialise the head"
# calling it twice changes nothing; it works on the chapter's network
freeze_all_but_head(tiny)
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}
big = freeze_all_but_head(copy.deepcopy(net))
assert models.trainable_groups(big) == ["head"]
assert models.count_parameters(big, trainable_only=True) == big.fc.in_features * 2 + 2
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
# ### Exercise 2 (no seed exercise: recipe steps 4-5 and the optimizer bug; 3 points): `finetune_param_groups`
#
# Write `finetune_param_groups(net, lr)`: return a list of two optimizer parameter groups,
# `{"params": <list of all layer4 parameters>, "lr": lr / 10, "name": "layer4"}` and
# `{"params": <list of all fc parameters>, "lr": lr, "name": "head"}`.
# Include `layer4`'s parameters **even when `layer4` is frozen** (it will be unfrozen later with the same optimizer).

# %% nbgrader={"grade": false, "grade_id": "param_groups_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def finetune_param_groups(net, lr):
    ### BEGIN SOLUTION
    return [{"params": list(net.layer4.parameters()), "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "param_groups_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
groups = finetune_param_groups(tiny, 0.01)
by_name = {g["name"]: g for g in groups}
assert set(by_name) == {"layer4", "head"}, list(by_name)
assert abs(by_name["head"]["lr"] - 0.01) < 1e-12 and abs(by_name["layer4"]["lr"] - 0.001) < 1e-12
assert {id(p) for p in by_name["head"]["params"]} == {id(p) for p in tiny.fc.parameters()}
### BEGIN HIDDEN TESTS
assert {id(p) for p in by_name["layer4"]["params"]} == {id(p) for p in tiny.layer4.parameters()}
assert isinstance(by_name["layer4"]["params"], list) and isinstance(by_name["head"]["params"], list), \
    "give lists of parameters (a generator can be consumed only once)"
# layer4 is a pretrained layer: it gets the *smaller* rate
assert by_name["layer4"]["lr"] < by_name["head"]["lr"]
assert sorted(g["lr"] for g in finetune_param_groups(tiny, 0.3)) == [0.3 / 10, 0.3], "use the lr argument"
# the classic bug: layer4 must be registered although it is frozen when the optimizer is built
tiny = grading.tiny_net()
for n, p in tiny.named_parameters():
    p.requires_grad_(n.startswith("fc."))
opt = torch.optim.SGD(finetune_param_groups(tiny, 0.05), momentum=0.9)
layer4_ids = {id(p) for p in tiny.layer4.parameters()}
assert layer4_ids <= grading.optimizer_param_ids(opt), "layer4 is missing from the optimizer while it is frozen"
before = copy.deepcopy(tiny.state_dict())
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert torch.equal(tiny.layer4[0].conv1.weight, before["layer4.0.conv1.weight"]), "frozen layer4 must not move"
assert not torch.equal(tiny.fc.weight, before["fc.weight"])
for p in tiny.layer4.parameters():
    p.requires_grad_(True)
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
assert not torch.equal(tiny.layer4[0].conv1.weight, before["layer4.0.conv1.weight"]), \
    "after unfreezing, the same optimizer must train layer4"
assert torch.equal(tiny.layer3[0].conv1.weight, before["layer3.0.conv1.weight"])
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
# NBVAL_CHECK_OUTPUT
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile, batch_size=8 if profile.fast else 32)
print("images: train", len(train_iter.dataset), "| valid", len(valid_iter.dataset), "| test", len(test_iter.dataset))
print("training steps per epoch:", len(train_iter))

# %% [markdown]
# ## 6. Choose the learning rate with a learning-rate finder
#
# The learning rate is the most important setting of the optimizer. A **learning-rate finder** (Leslie Smith's
# range test, fastai's `lr_find`) trains a *copy* of the model for at most one epoch while the rate grows
# geometrically from tiny to huge, one step per batch, and records the training loss. Too small a rate: the loss
# barely moves. Too large: it blows up (the finder stops there). In between it falls fastest.
# `helpers.training.lr_find(net, train_iter, optimizer, start_lr, end_lr)` returns the rates and the smoothed losses
# and leaves `net` and the optimizer passed in as they were. It sweeps the head's rate; `layer4`'s group keeps its ratio
# (`lr / 10`), frozen for now.
#
# Stage 1 trains the head on frozen features, so the finder runs in that setting:

# %%
freeze_all_but_head(net)
probe = torch.optim.SGD(finetune_param_groups(net, 1.0), momentum=0.9)  # its rates only fix the ratio head/layer4
lrs, losses = training.lr_find(net, train_iter, probe, start_lr=1e-4, end_lr=10)
lowest = lrs[min(range(len(losses)), key=losses.__getitem__)]
lr = float(f"{lowest / 10:.1g}")  # one order of magnitude below the minimum, rounded
print(f"{len(lrs)} steps; loss lowest at lr={lowest:.2g}; chosen lr={lr:g}")
plots.plot_lr_find(lrs, losses, suggestion=lr);

# %% [markdown]
# **Which rate?** Not the one at the minimum of the curve: there the loss is about to blow up, the rate is already
# almost too large. The rule of thumb (fastbook) is **one order of magnitude below the minimum**, where the curve
# still falls steeply: the loss decreases fast and safely. The finder gives an order of magnitude, not a precise
# value, hence the rounding: its curve of 24 noisy steps moves with the seed (over seeds 0-5 the chosen rate ranged
# from 0.01 to 0.2, and each trained the head to the same validation accuracy within one image). The finder sees
# only the training loss; whether the model generalises is judged on the validation set, in the next sections.
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
optimizer = torch.optim.SGD(finetune_param_groups(net, lr), momentum=0.9)  # head at lr, layer4 at lr / 10
print("trainable groups:", models.trainable_groups(net))
print("trainable parameters:", models.count_parameters(net, trainable_only=True))
assert models.trainable_groups(net) == ["head"]
assert models.count_parameters(net, trainable_only=True) == net.fc.in_features * 2 + 2

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
if profile.fast:  # the mini world's lesson; in the full profile the numbers depend on the data and the GPU
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
if profile.fast:
    assert test_acc >= 0.8, test_acc

# %% [markdown]
# On the mini data set the frozen features are already good. Over seeds 0-5 (mean ± standard deviation), stage 1
# reaches 0.92 ± 0.01 validation accuracy and stage 2 0.90 ± 0.02 (48 validation images: one image is 0.02), so
# unfreezing `layer4` does not help here: the validation set kept stage 1 for five seeds of six, and the final
# model's test accuracy was 0.93 ± 0.02. The further the target task is from the source task, the
# more adapting the top layers usually helps (chapter 2 compares a frozen feature extractor with full fine-tuning
# on the real hotdog data).
#
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
# > **Common mistake.** Adding the unfrozen group with `optimizer.add_param_group(...)` after a scheduler was built:
# > `LambdaLR` and `OneCycleLR` do not know the new group and break. Register every group before building the
# > scheduler, or rebuild both.
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
# > **Common mistake.** Freezing a backbone with `requires_grad=False` and training it in `net.train()` mode: its
# > BatchNorm statistics still drift. Put the frozen BatchNorm layers in eval mode after each `net.train()` (as
# > `helpers.training.train` does), or keep them trainable on purpose.
#
# ## 10. Written question

# %% [markdown] nbgrader={"grade": false, "grade_id": "lr_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Exercise 3 (no seed exercise: recipe steps 4-5 and its validation tip; written, 3 points).** In this chapter the
# new head was trained first with the backbone frozen, then `layer4` was unfrozen with a learning rate ten times
# smaller than the head's; the best epochs and the final stage were chosen on the validation set. (a) Why not unfreeze
# the whole network from the first epoch, with the head's learning rate everywhere? (b) Why is `layer4` unfrozen
# before `layer1`, and why does it get a smaller learning rate than the head? (c) Suppose you had chosen the learning
# rate, the best epochs and the final stage by looking at test accuracies instead. Why would the test accuracy you
# report then be too optimistic, and why more so with a test set of a few hundred images?

# %% [markdown] nbgrader={"grade": true, "grade_id": "lr_question", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# (a) The new head starts random: its first gradients are large and noisy, and they flow back into the pretrained
# layers; with a high learning rate everywhere they would destroy the pretrained features before the head has
# learned to use them (and a small target data set would be overfitted quickly). Training the head first on frozen
# features gives it sensible weights, so later gradients into the backbone are small and meaningful.
# (b) Early layers compute generic features (edges, colours, textures) that transfer to almost any image task;
# the last block computes the most source-specific features, which need to adapt most, so it is unfrozen first.
# Pretrained weights are already good: a smaller learning rate adapts them gently instead of overwriting them,
# while the head, trained from scratch, needs the largest rate.
# (c) Each measured accuracy is the true accuracy plus noise (on 200 images one standard error is about 2 points).
# Picking the best of several candidates by test accuracy picks, in part, the one whose noise happened to be
# favourable, so the winner's test accuracy overestimates how it does on new images: the test set has been used to
# fit the choices and is no longer held out. The fewer the test images, the larger the noise, and the larger this
# optimism. Choosing on a validation set and evaluating the test set once keeps the reported number unbiased.
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
# NBVAL_CHECK_OUTPUT
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2)  # the full profile's architecture
print({g: f"{n:,}" for g, n in models.group_sizes(full_net).items()})
frozen_full = freeze_all_but_head(full_net)
print("head only:    ", f"{models.count_parameters(frozen_full, trainable_only=True):>10,}")
models.unfreeze(frozen_full, "layer4")
print("layer4 + head:", f"{models.count_parameters(frozen_full, trainable_only=True):>10,}")

# %% [markdown]
# `layer4` holds 8.4 M of the 11.2 M parameters: unfreezing it is a big step, which is one more reason to give it a
# small learning rate. For reference, d2l's fine-tuned ResNet-18 (all layers trained, head at 10x the rate) reaches
# 0.940 test accuracy on the hotdog data set after 5 epochs, against 0.850 for the same network trained from scratch
# (chapter 2).
#
# **Exercises and points** (the seed text of this chapter has no exercise section; each exercise grades a step of
# its recipe):
#
# | exercise | grade id | what | grading | points |
# | --- | --- | --- | --- | --- |
# | 1 | `freeze_head_tests` | freeze all but the head (recipe step 3) | auto | 2 |
# | 2 | `param_groups_tests` | per-group rates, all groups registered (steps 4-5, the optimizer bug) | auto | 3 |
# | 3 | `lr_question` | why this recipe, why a validation set (steps 4-5, the validation tip) | written | 3 |
# | | | | total | 8 |
