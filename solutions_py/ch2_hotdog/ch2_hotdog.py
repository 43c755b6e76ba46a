# %% [markdown]
# # Chapter 2: Hotdog fine-tuning
#
# With a few thousand labelled photos, a network sized for ImageNet (1.28 million training images) overfits.
# **Transfer learning** reuses what a network learned on a large *source* data set for a small *target* data set:
# features learned on ImageNet (edges, textures, shapes, object parts) help on almost any photos. **Fine-tuning**,
# its most common form (the figure below):
#
# 1. pretrain a **source model** on the source data (ImageNet);
# 2. the **target model** copies every layer of the source model, with its parameters, **except the output layer**;
# 3. a new output layer, one output per target class, is **initialised at random**;
# 4. training on the target data learns the output layer from scratch and *fine-tunes* the copied layers.
#
# We follow d2l's hotdog example: an ImageNet ResNet-18 learns to recognise hotdogs, against the same network trained
# from scratch. The `fast` profile (default, CPU, seconds) uses a mini ResNet pretrained on ten generated food
# classes and a generated mini hotdog data set; the `full` profile runs the same code on the real ones.

# %%
import copy

import torch
from torch import nn
from torchvision.models import ResNet18_Weights

import helpers
from helpers import data, download, grading, models, plots, training

profile = helpers.setup()
plots.finetune_diagram();

# %% [markdown]
# ## 1. The hotdog data set
#
# 1,400 photos of hotdogs and 1,400 of other food (1,000 of each for training), in
# `hotdog/{train,test}/{hotdog,not-hotdog}`. Like d2l's `DATA_HUB`, `helpers.download` maps a name to an address
# and a SHA-1, and downloads, checks and unzips the archive once:

# %%
hotdog_entry = download.DATA_HUB["hotdog"]
print("url:   ", hotdog_entry.url)
print("sha1:  ", hotdog_entry.sha1)
print("layout:", ", ".join(hotdog_entry.layout))

# %%
# course check: the address and checksum of d2l's archive
assert hotdog_entry.sha1 == "fba480ffa8aa7e0febbb511d181409f899b9baa5", hotdog_entry

# %% [markdown]
# `ImageFolder` numbers the classes in **alphabetical order of the folder names**: `hotdog` is class 0, `not-hotdog`
# class 1 (exercise 1 needs this).

# %%
data_dir = data.hotdog_dir(profile)
train_imgs = data.image_folder(data_dir / "train")
test_imgs = data.image_folder(data_dir / "test")
print("classes:", train_imgs.class_to_idx)
print("images: train", len(train_imgs), "| test", len(test_imgs))

# %%
assert train_imgs.classes == test_imgs.classes == ["hotdog", "not-hotdog"]

# %% [markdown]
# The first 8 positive examples and the last 8 negative ones vary in size and aspect ratio:

# %%
hotdogs = [train_imgs[i][0] for i in range(8)]
not_hotdogs = [train_imgs[-i - 1][0] for i in range(8)]
print("sizes:", sorted({img.size for img in hotdogs + not_hotdogs})[:6], "...")
plots.show_images(hotdogs + not_hotdogs, 2, 8, scale=1.4);

# %% [markdown]
# ## 2. Data augmentation
#
# Training takes a random crop of random aspect ratio scaled to $224 \times 224$ and a random flip; testing resizes
# to 256 and takes the central $224 \times 224$ crop (32 and 36 pixels in `fast`). Both **normalise** with
# ImageNet's channel statistics, those the pretrained model saw.

# %%
train_augs = data.train_transform(profile)
test_augs = data.test_transform(profile)
print(train_augs)
print(test_augs)

# %%
views = [data.denormalize(train_augs(hotdogs[0])) for _ in range(6)] + [data.denormalize(test_augs(hotdogs[0]))]
plots.show_images(views, 1, 7, titles=["train"] * 6 + ["test"], scale=1.4);

# %% [markdown]
# ## 3. Training, validation and test sets
#
# A set we choose on (learning rates, epochs, models) stops being an honest measure: with enough tries, one choice
# wins by luck. `data.hotdog_loaders(profile)` holds out a seeded, stratified share of the training folder as a
# **validation set** (`profile.valid_frac`: 20 % of the real data, half of the small `fast` set, so that one image
# is half a point). Every choice below, and the look at the errors, is made on it; the **test set** is read once,
# at the end (section 8), for the chosen models. d2l's `train_ch13` passes the test set to the training loop:
# chapter 1's "Common mistake" box says why not.

# %%
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
print("images: train", len(train_iter.dataset), "| valid", len(valid_iter.dataset), "| test", len(test_iter.dataset))
X, y = next(iter(train_iter))
print("batch:", tuple(X.shape))

# %% [markdown]
# ## 4. The source model
#
# `models.source_model(profile)` returns torchvision's ImageNet ResNet-18 (`full`) or the mini ResNet (`fast`), both
# with ResNet-18's module names: `conv1`, `bn1`, `layer1` .. `layer4`, pooling, and the output layer `fc`.
#
# d2l writes `resnet18(pretrained=True)`; write `resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)` (see chapter 1).

# %%
pretrained_net = models.source_model(profile).to(profile.device)
categories = models.source_categories(profile)
print(pretrained_net.fc)
print(len(categories), "source classes, e.g.", categories[:4])

# %% [markdown]
# The weights enum carries ImageNet's class names in the order of `fc`'s outputs. One of them is "hotdog":
#
# > **Common mistake.** d2l's MXNet tab reads output 713 for "hotdog". MXNet and torchvision share the ILSVRC-2012
# > order, where 713 is a photocopier and "hotdog" is 934. Look a class up by name, never by a copied index.

# %%
imagenet_categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
print("ImageNet output 713:", imagenet_categories[713])
print("ImageNet output 934:", imagenet_categories[934])
print("'hotdog' in this profile's source classes: output", categories.index("hotdog"))

# %%
assert imagenet_categories.index("hotdog") == 934
if not profile.fast:  # the real ResNet-18's head: 1,000 ImageNet classes, hotdog at 934
    assert pretrained_net.fc.out_features == 1000 and categories.index("hotdog") == 934

# %% [markdown]
# ## 5. The target model
#
# `models.finetune_net` does what d2l writes below (the source model stays intact); `models.scratch_net` is the same
# architecture with **every** parameter random:
#
# ```python
# finetune_net = copy.deepcopy(pretrained_net)
# finetune_net.fc = nn.Linear(finetune_net.fc.in_features, 2)
# nn.init.xavier_uniform_(finetune_net.fc.weight)
# ```
#
# The two nets below show the construction; section 6 builds fresh ones for every training run.

# %%
finetune_net = models.finetune_net(profile, num_classes=2, source=pretrained_net).to(profile.device)
scratch_net = models.scratch_net(profile, num_classes=2).to(profile.device)
print(finetune_net.fc)
print(f"parameters: {models.count_parameters(finetune_net):,} (both nets)")

# %%
assert models.count_parameters(scratch_net) == models.count_parameters(finetune_net)
assert finetune_net.fc.out_features == 2 and pretrained_net.fc.out_features == len(categories)

# %% [markdown]
# ### Exercise 1 (3 points): a head initialised from the "hotdog" class
#
# Exercise 4 of the d2l chapter *Fine-Tuning*: the source model's `fc` already holds a weight row and a bias that
# score "hotdog". Write `hotdog_head(source_net, categories)`, which returns a **new**
# `nn.Linear(source_net.fc.in_features, 2)` that starts from them:
#
# * find `"hotdog"` **by name** in `categories` (the source classes in the order of `fc`'s outputs);
# * row 0 of the weight and entry 0 of the bias are the source's "hotdog" row and bias (row 0: `hotdog` is class 0);
# * row 1 (`not-hotdog`) and bias 1 are the **mean** of the rows and of the biases of **all the other** classes;
# * the new layer shares no memory with `source_net`, and `source_net` is not modified.
#
# The tests also try your function on a network with torchvision's 1,000 ImageNet classes, where a copied index
# (713) points at the wrong class.

# %% nbgrader={"grade": false, "grade_id": "hotdog_head_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def hotdog_head(source_net, categories):
    ### BEGIN SOLUTION
    i = list(categories).index("hotdog")
    W, b = source_net.fc.weight.detach(), source_net.fc.bias.detach()
    others = [k for k in range(W.shape[0]) if k != i]
    head = nn.Linear(W.shape[1], 2)
    with torch.no_grad():
        head.weight.copy_(torch.stack([W[i], W[others].mean(0)]))
        head.bias.copy_(torch.stack([b[i], b[others].mean()]))
    ### END SOLUTION
    return head


# %% nbgrader={"grade": true, "grade_id": "hotdog_head_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# 2 points: the rows and biases of the new head
def _head(net, cats):
    try:
        return hotdog_head(net, cats)
    except IndexError as err:
        raise AssertionError(f"hotdog_head raised IndexError ({err}) with {len(cats)} classes: "
                             "look 'hotdog' up by name in categories, never copy an index") from None


head = _head(pretrained_net, categories)
assert isinstance(head, nn.Linear) and (head.in_features, head.out_features) == (pretrained_net.fc.in_features, 2), \
    f"return nn.Linear(source_net.fc.in_features, 2), got {head}"
h = categories.index("hotdog")
assert torch.allclose(head.weight[0].detach().cpu(), pretrained_net.fc.weight[h].detach().cpu()), \
    "row 0 must be the source's 'hotdog' row"
assert torch.allclose(head.bias[0].detach().cpu(), pretrained_net.fc.bias[h].detach().cpu()), \
    "bias 0 must be the source's 'hotdog' bias"
# a network with torchvision's ImageNet classes: 'hotdog' is output 934 there (a copied 713 is a photocopier)
_imagenet_net = grading.tiny_net(num_classes=1000, seed=1)
assert torch.allclose(_head(_imagenet_net, imagenet_categories).weight[0].detach(), _imagenet_net.fc.weight[934]), \
    "with ImageNet's classes, row 0 must be output 934 ('hotdog'): look the class up by name in categories"
### BEGIN HIDDEN TESTS
def _check_rows(src, cats):
    head = _head(src, cats)
    i = list(cats).index("hotdog")
    others = [k for k in range(len(cats)) if k != i]
    W, b = src.fc.weight.detach().cpu(), src.fc.bias.detach().cpu()
    assert isinstance(head, nn.Linear) and tuple(head.weight.shape) == (2, W.shape[1]), head
    hw, hb = head.weight.detach().cpu(), head.bias.detach().cpu()
    assert torch.allclose(hw[0], W[i]), f"row 0 must be the weights of class 'hotdog' (index {i})"
    assert torch.allclose(hb[0], b[i]), "bias 0 must be the bias of class 'hotdog'"
    assert torch.allclose(hw[1], W[others].mean(0), atol=1e-6), \
        "row 1 (not-hotdog) must be the mean of the rows of all the other classes"
    assert torch.allclose(hb[1], b[others].mean(), atol=1e-6), \
        "bias 1 (not-hotdog) must be the mean of the biases of all the other classes"

# the chapter's source model and categories
_check_rows(pretrained_net, categories)
# torchvision's ImageNet order: 'hotdog' is output 934 (not 713)
_check_rows(grading.tiny_net(num_classes=1000, seed=1), imagenet_categories)
# the index must be looked up by name: the same classes, another order
_rotated = list(categories[3:]) + list(categories[:3])
assert _rotated.index("hotdog") != categories.index("hotdog")
_check_rows(grading.tiny_net(num_classes=len(_rotated), seed=2), _rotated)
_check_rows(grading.tiny_net(num_classes=1000, seed=3), list(reversed(imagenet_categories)))
# a tuple of names works as well
_check_rows(grading.tiny_net(num_classes=len(categories), seed=4), tuple(categories))
# on the chapter's data, the new head already recognises hotdogs before any training
if profile.fast:
    _zero_shot = copy.deepcopy(pretrained_net)
    _zero_shot.fc = hotdog_head(pretrained_net, categories)
    assert training.evaluate(_zero_shot.to(profile.device), valid_iter)[1] > 0.6, \
        "the initialised head should beat chance clearly: check which row is 'hotdog' and which 'not-hotdog'"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "hotdog_head_copy_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# 1 point: a new, trainable layer; the source model unchanged
_imagenet_net = grading.tiny_net(num_classes=1000, seed=1)
head = hotdog_head(_imagenet_net, imagenet_categories)
assert head is not _imagenet_net.fc, "return a new nn.Linear, not the source model's fc"
### BEGIN HIDDEN TESTS
def _check_copy(src, cats):
    src_state = copy.deepcopy(src.state_dict())
    head = hotdog_head(src, cats)
    assert head is not src.fc, "return a new nn.Linear, not the source model's fc"
    assert head.weight.requires_grad and head.bias.requires_grad, "the new head must be trainable (requires_grad)"
    assert head.weight.data_ptr() != src.fc.weight.data_ptr() and head.bias.data_ptr() != src.fc.bias.data_ptr(), \
        "the new head shares memory with the source model's fc: copy the values into a new layer"
    with torch.no_grad():
        head.weight.add_(1.0)
        head.bias.add_(1.0)
    assert all(torch.equal(v, src_state[k]) for k, v in src.state_dict().items()), \
        "the source model changed: the head must share no memory with it, and source_net must not be modified"

# networks with 1,000 classes, so that this point does not depend on finding the right index
_check_copy(_imagenet_net, imagenet_categories)
_check_copy(grading.tiny_net(num_classes=1000, seed=3), list(reversed(imagenet_categories)))
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (3 points): measure a model in eval mode
#
# Write `predict(net, data_iter)`, which returns `(probs, labels)`: softmax probabilities `(N, num_classes)` and
# true labels `(N,)`, in the order of `data_iter`, on the CPU (move each batch to the device of `net`'s parameters).
# It must run the net in **eval mode**, compute **no gradients** (`torch.inference_mode()`), and leave the net in
# the mode it found it in. `training.predict` is the course's version of this function: write your own (the tests
# run yours with `training.predict` switched off).
#
# > **Common mistake.** Measuring in train mode. Each BatchNorm then normalises with the statistics of the *current
# > batch* (a prediction depends on the other images in it) and overwrites its running statistics with test data.
# > Call `net.eval()` first, and restore the mode afterwards: a training loop that calls you expects train mode
# > back.

# %% nbgrader={"grade": false, "grade_id": "predict_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def predict(net, data_iter):
    ### BEGIN SOLUTION
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    probs, labels = [], []
    with torch.inference_mode():
        for X, y in data_iter:
            probs.append(torch.softmax(net(X.to(device)), dim=1).cpu())
            labels.append(y.cpu())
    net.train(was_training)
    ### END SOLUTION
    return torch.cat(probs), torch.cat(labels)


# %% nbgrader={"grade": true, "grade_id": "predict_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# 2 points: probabilities and labels, computed in eval mode without gradients
_no_helper = grading.blocked([training.predict],  # by any name, aliases included
                             "write predict yourself: training.predict is switched off")
tiny, loader = grading.tiny_net(), grading.tiny_loader(n=20)
stats = {k: v.clone() for k, v in tiny.state_dict().items() if "running" in k}
tiny.train()
with _no_helper:
    probs, labels = predict(tiny, loader)
assert probs.shape == (20, 2) and labels.shape == (20,), \
    f"probs must be (N, num_classes) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}"
assert torch.allclose(probs.sum(1), torch.ones(20)), "each row must be probabilities (softmax) summing to 1"
assert all(torch.equal(tiny.state_dict()[k], v) for k, v in stats.items()), \
    "the BatchNorm running statistics changed: the net ran in train mode; call net.eval() before the forward passes"
### BEGIN HIDDEN TESTS
tiny = grading.tiny_net(seed=5)
_bn = {k: v.clone() for k, v in tiny.state_dict().items() if "running" in k or "num_batches" in k}
_seen = []
for _m in tiny.modules():
    if isinstance(_m, nn.BatchNorm2d):
        _m.register_forward_hook(lambda m, i, o: _seen.append((m.training, torch.is_grad_enabled())))
tiny.train()
with _no_helper:
    _p, _y = predict(tiny, grading.tiny_loader(n=20, batch_size=8))
assert _seen, "predict must run the net on the batches"
assert not any(t for t, _ in _seen), "a BatchNorm layer ran in train mode: call net.eval() (it sets every submodule)"
assert not any(g for _, g in _seen), "gradients were tracked: wrap the forward passes in torch.inference_mode()"
assert all(torch.equal(tiny.state_dict()[k], v) for k, v in _bn.items()), \
    "the BatchNorm running statistics changed: the batches leaked into them (use eval mode)"
assert not _p.requires_grad, "return plain tensors, without autograd history"
assert torch.equal(_y, torch.cat([y for _, y in grading.tiny_loader(n=20, batch_size=8)])), \
    "labels must be the true labels, in the order of data_iter"
with torch.no_grad():
    tiny.eval()
    _ref = torch.cat([torch.softmax(tiny(X), 1) for X, _ in grading.tiny_loader(n=20, batch_size=8)])
assert torch.allclose(_p, _ref, atol=1e-5), "probs must be the softmax of the net's outputs in eval mode"
# a prediction must not depend on the other images of its batch
with _no_helper:
    _p1, _ = predict(tiny, grading.tiny_loader(n=20, batch_size=1))
assert torch.allclose(_p1, _p, atol=1e-5), "predictions change with the batch size: use eval mode"
# three classes, other sizes
_net3 = grading.tiny_net(num_classes=3, seed=6)
with _no_helper:
    _p3, _y3 = predict(_net3, grading.tiny_loader(n=10, num_classes=3, size=24, batch_size=4))
assert _p3.shape == (10, 3) and _y3.shape == (10,), "probs must have one column per class"
assert torch.allclose(_p3.sum(1), torch.ones(10), atol=1e-5), "each row must sum to 1 (softmax over the classes)"
assert torch.equal(_y3, torch.cat([y for _, y in grading.tiny_loader(n=10, num_classes=3, size=24, batch_size=4)])), \
    "labels must be the true labels of data_iter, in its order (not the predicted classes)"
# the chapter's model and data agree with the course's helper
_net = copy.deepcopy(finetune_net).train()
with _no_helper:
    _p, _y = predict(_net, valid_iter)
_ref_p, _ref_y = training.predict(_net, valid_iter)
assert torch.allclose(_p, _ref_p, atol=1e-4) and torch.equal(_y, _ref_y), "wrong predictions on the valid set"
assert _p.device.type == "cpu" and _y.device.type == "cpu", "return the tensors on the CPU"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "predict_mode_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
# 1 point: the net is left in the mode predict found it in
tiny = grading.tiny_net().train()
with _no_helper:
    predict(tiny, grading.tiny_loader(n=8))
assert tiny.training, "the net was in train mode before predict: leave it in train mode (net.train(was_training))"
### BEGIN HIDDEN TESTS
assert all(m.training for m in tiny.modules()), \
    "every submodule was in train mode before predict: restore the mode of the whole net"
tiny.eval()
with _no_helper:
    predict(tiny, grading.tiny_loader(n=8))
assert not tiny.training and not any(m.training for m in tiny.modules()), \
    "the net was in eval mode before predict: leave it in eval mode (restore the mode you found, not train())"
### END HIDDEN TESTS

# %% [markdown]
# ## 6. Fine-tuning versus training from scratch
#
# `training.train` plays d2l's `train_ch13`. SGD (momentum 0.9, weight decay $10^{-3}$) gets one group per layer
# group (`models.param_groups(net, lr, {"head": 10})`): the copied layers a **small** rate $\eta$, the random head
# $10\eta$. The scratch net gets a larger rate for every layer. d2l writes:
#
# ```python
# params_1x = [p for name, p in net.named_parameters() if name not in ["fc.weight", "fc.bias"]]
# optimizer = torch.optim.SGD([{"params": params_1x},
#                              {"params": net.fc.parameters(), "lr": learning_rate * 10}],
#                             lr=learning_rate, weight_decay=0.001)
# ```
#
# The head gets 10x in both, but the optimizers differ: d2l has **no momentum**, and it **sums** the loss over a
# batch of 128, which scales the data gradient by 128 but not the weight decay. Its rate `5e-5` is a step of about
# $6.4 \times 10^{-3}$ on a mean loss, its weight decay about 128 times weaker than ours, and our momentum makes
# steps about 10 times larger than the rate. Rates do not carry over between the two without these conversions.
#
# **Repeats and paired seeds.** One run proves little: another seed gives another head initialisation, other
# batches and other crops, and the accuracy moves by a few points. So every configuration below is trained once
# per seed of `profile.seeds(3)`, with the **same seeds** for every configuration. `train_fine_tuning` seeds first
# and builds the net afterwards, so the seed fixes everything random in a run: the initialisation of the new head
# (of every layer, from scratch), the shuffles and the random crops. Two configurations trained with the same seed
# differ only in what we changed, and every configuration gets the same budget: `num_epochs` epochs.

# %%
num_epochs = profile.epochs(5)
lr_finetune, lr_scratch = (0.01, 0.1) if profile.fast else (0.001, 0.01)
seeds = profile.seeds(3)


def fine_tuned():
    return models.finetune_net(profile, 2, source=pretrained_net)


def from_scratch():
    return models.scratch_net(profile, 2)


def train_fine_tuning(make_net, learning_rate, head_mult=10, num_epochs=num_epochs, seed=0, desc="train"):
    # seed, then build the net: the seed fixes its random initialisation, the shuffles and the random crops
    helpers.seed_everything(seed)
    net = make_net().to(profile.device)
    # one optimizer group per layer group; the head's learning rate is multiplied by head_mult
    groups = models.param_groups(net, learning_rate, {"head": head_mult}, weight_decay=1e-3)
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    return net, training.train(net, train_iter, valid_iter, optimizer, num_epochs, desc=desc)


def late_acc(history, epochs=3):
    # mean validation accuracy of the last epochs: steadier than the last epoch alone
    accs = history["valid_acc"][-epochs:]
    return sum(accs) / len(accs)


runs, valid_accs = {}, {}  # configuration -> [(net, history) per seed], [validation accuracy per seed]


def run(name, make_net, learning_rate, head_mult=10, num_epochs=num_epochs):
    # one configuration, trained once per seed (the same seeds for every configuration)
    runs[name] = [train_fine_tuning(make_net, learning_rate, head_mult, num_epochs, seed=s, desc=f"{name} (seed {s})")
                  for s in seeds]
    valid_accs[name] = [late_acc(history) for _, history in runs[name]]
    return valid_accs[name]


def mean_pm(values):
    mean, std = plots.mean_std(values)
    return f"{mean:.3f} ± {std:.3f}"


run("fine-tuned", fine_tuned, lr_finetune)
run("from scratch", from_scratch, lr_scratch, head_mult=1)
for name in ["fine-tuned", "from scratch"]:
    print(f"{name:13s} valid acc (last 3 epochs), mean ± std over seeds {list(seeds)}: "
          f"{mean_pm(valid_accs[name])}  (each seed: {[round(a, 3) for a in valid_accs[name]]})")
gaps = [a - b for a, b in zip(valid_accs["fine-tuned"], valid_accs["from scratch"])]
print("gap with the same seed (fine-tuned - from scratch):", [round(g, 3) for g in gaps])
plots.plot_mean_spread({name: [h["valid_acc"] for _, h in runs[name]] for name in ["fine-tuned", "from scratch"]});

# %%
# course check (fast profile): the gap is larger than the spread over seeds
if profile.checks:
    assert min(gaps) > 0.08 and plots.mean_std(gaps)[0] > 2 * plots.mean_std(valid_accs["from scratch"])[1], valid_accs
    assert all(h.final["train_loss"] < s.final["train_loss"]
               for (_, h), (_, s) in zip(runs["fine-tuned"], runs["from scratch"]))

# %% [markdown]
# Read the printed numbers: is the fine-tuned net ahead with **every** seed, and is the mean gap larger than the
# spread between seeds? Then it is not luck. (The validation set is balanced, so 0.5 is chance: in five epochs on a
# couple of hundred images, how far above chance does the scratch net get?) The fine-tuned net is better after the
# same number of epochs because it starts from features learned on a large source data set; the scratch net must
# learn them from the target images alone. Each accuracy is the mean of the last three epochs, which is steadier
# than the last epoch alone.
#
# ### Error analysis
#
# An accuracy hides *which* images fail. A confusion matrix counts the errors per class (rows: actual class,
# columns: predicted), and the images with the highest loss $-\log p(\text{actual class})$ show what a model gets
# confidently wrong: titles read "predicted/actual" and "loss/probability of the actual class". Like every choice,
# this look at the errors is made on the **validation** set (what we learn from it guides the next change); the
# models of seed 0, measured with your `predict`:

# %%
predict_ = grading.or_reference(predict, training.predict)  # the course's version if yours raises
finetune_net, scratch_net = runs["fine-tuned"][0][0], runs["from scratch"][0][0]  # the seed-0 runs
finetune_probs, finetune_labels = predict_(finetune_net, valid_iter)
scratch_probs, scratch_labels = predict_(scratch_net, valid_iter)
classes = train_imgs.classes
plots.confusion_matrix(finetune_labels, finetune_probs.argmax(1), classes, title="fine-tuned (validation)");
plots.confusion_matrix(scratch_labels, scratch_probs.argmax(1), classes, title="from scratch (validation)");

# %%
plots.show_worst(valid_iter.dataset, finetune_probs, finetune_labels, k=8, classes=classes,
                 transform=data.denormalize);
plots.show_worst(valid_iter.dataset, scratch_probs, scratch_labels, k=8, classes=classes,
                 transform=data.denormalize);

# %% [markdown]
# Look for a pattern: errors in one class, or in one kind of image (small hotdogs, odd colours, a kind of food
# the source model never saw)? Patterns point to the data (more such examples) rather than to more epochs. And
# what does measuring in train mode do? Your `predict` against a forward pass in train mode, on a copy:

# %%
leaky_net = copy.deepcopy(finetune_net).train()
with torch.no_grad():
    leaky_acc = sum((leaky_net(X.to(profile.device)).argmax(1).cpu() == y).sum().item()
                    for X, y in valid_iter) / len(valid_iter.dataset)
eval_probs, eval_labels = predict_(finetune_net, valid_iter)
drift = (leaky_net.bn1.running_mean - finetune_net.bn1.running_mean).abs().max().item()
print(f"valid acc: eval mode {(eval_probs.argmax(1) == eval_labels).float().mean().item():.3f} | "
      f"train mode {leaky_acc:.3f}; bn1 running mean moved by up to {drift:.3f}")

# %% [markdown]
# ## 7. Tuning on the validation set
#
# ### Exercise 3 (2 points): a larger learning rate for the fine-tuned net
#
# Exercise 1 of the d2l chapter *Fine-Tuning*: keep increasing the learning rate of `finetune_net`. Larger base
# rates (the head still gets 10x), the same seeds and epochs; validation accuracy against the rate, with one
# standard deviation over the seeds as error bar. Add rates to the list to try others.

# %%
lr_sweep = {lr_finetune: valid_accs["fine-tuned"]}
for mult in [5, 20]:
    lr_sweep[lr_finetune * mult] = run(f"fine-tuned, lr x{mult}", fine_tuned, lr_finetune * mult)
for lr, accs in lr_sweep.items():
    print(f"fine-tuned, base rate {lr:<6g} valid acc {mean_pm(accs)}")
print(f"from scratch, base rate {lr_scratch:g}: valid acc {mean_pm(valid_accs['from scratch'])}")
plots.plot_sweep({"fine-tuned": lr_sweep, "from scratch": {lr_scratch: valid_accs["from scratch"]}}, chance=0.5);

# %%
# course check (fast profile): a far too large rate loses the advantage of the pretrained features
if profile.checks:
    assert max(valid_accs["fine-tuned, lr x20"]) < min(valid_accs["fine-tuned"]) - 0.05, lr_sweep

# %% [markdown] nbgrader={"grade": false, "grade_id": "lr_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 3 (2 points).** How does the validation accuracy of the fine-tuned model change as its learning rate
# grows? Quote your sweep's means and spreads, explain why, and say what this means for choosing the learning rate
# of a pretrained network.

# %% [markdown] nbgrader={"grade": true, "grade_id": "lr_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (2 points).** 1 point: reads the student's own sweep: quotes the mean ± spread at each rate and states
# the trend they show, comparing it with the spread between seeds (a change smaller than the spread is noise, not a
# trend; a spread that grows at one rate is worth a remark: some seeds survive that rate, others do not). 1 point:
# the explanation: the pretrained weights are already a good solution and should move little; large steps (the head
# gets 10x more, momentum amplifies every step) throw them far away, and the random head's large early gradients
# flow into the backbone and destroy the features before the head can use them. Conclusion: a small base rate for
# the pretrained layers (about 10x smaller than from scratch), a larger one for the new head only, chosen on the
# validation set. Numbers that are not the student's own output (e.g. copied from this answer) earn no point for
# the first part.
#
# **Model answer.** In the author's run (fast profile, seeds 0-2) the validation accuracy falls from 0.837 ± 0.021
# at the base rate 0.01 to 0.592 ± 0.119 at 0.05 and 0.484 ± 0.009 at 0.2: at 20x the fine-tuned net is at chance,
# below the scratch net (0.528 ± 0.013), and each drop is far larger than the spread at 0.01. At 5x the spread is
# large: the rate is at the edge where some seeds keep their features and others lose them. The pretrained weights
# are already a good solution and should move only a little. Large steps (the head's rate is 10x larger still, and
# momentum amplifies every step) throw them far from the pretrained point: the random head's large early gradients
# flow back into the backbone and destroy the features before the head has learned to use them. A pretrained
# network needs a small base rate (about 10x smaller than from scratch) with a larger one only for the new layer;
# when in doubt, decrease it.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 4 (3 points): tune both networks
#
# Exercise 2 of the d2l chapter *Fine-Tuning*: tune both networks (rate, weight decay, head multiplier) on the
# validation accuracy, with the same seeds for every attempt. Three attempts below: the fine-tuned net at half
# its rate, the scratch net at half and at twice its rate. Add your own to the dict: a name that starts with
# "from scratch" is a scratch-net configuration, any other a pretrained one (section 8 picks the best of each).
# To try more epochs, give them to both networks (`run(..., num_epochs=10)`): the same budget for each.
# The chart compares every configuration tried so far.

# %%
attempts = {  # name: (network, base rate, head multiplier)
    "fine-tuned, lr /2": (fine_tuned, lr_finetune / 2, 10),
    "from scratch, lr /2": (from_scratch, lr_scratch / 2, 1),
    "from scratch, lr x2": (from_scratch, lr_scratch * 2, 1),
}
for name, (make_net, lr, head_mult) in attempts.items():
    run(name, make_net, lr, head_mult)
for name, accs in valid_accs.items():
    print(f"{name:20s} valid acc {mean_pm(accs)}")
plots.plot_seed_bars(valid_accs, ylabel="validation accuracy (last 3 epochs)");

# %% [markdown] nbgrader={"grade": false, "grade_id": "tuning_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 4 (3 points).** After tuning, is the accuracy of the two networks still different, beyond the spread
# between seeds? Which network is more sensitive to its hyperparameters, and which would you expect to close the gap
# with more data or more epochs? Support your answer with the validation numbers you obtained, and say why the test
# accuracy is read only at the end (section 8).

# %% [markdown] nbgrader={"grade": true, "grade_id": "tuning_question", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (3 points).** 1 point: compares the best pretrained and the best scratch configuration *of the
# student's own table* (means and spreads) and says whether the gap is larger than the spread between seeds.
# 1 point: sensitivity, read from how far each network's accuracy moves across the student's own attempts, with a
# reason: the fine-tuned net can lose its features at large rates (a wide range across rates), the scratch net
# must learn every feature from the target images, so rate, epochs and regularisation decide whether it learns at
# all; either network may be "more sensitive" if the student's table shows it, and saying that the scratch net is
# limited by data and epochs rather than by its rate is a good reading of a flat, near-chance row. Which closes
# the gap: the scratch net, with much more data or epochs (the initialisation matters less when the target data is
# large). 1 point: the test set: every look used to choose makes it a second validation set and its accuracy
# optimistic, so it is read once, at the end, for the chosen models only. Claims the student's numbers contradict
# (e.g. "tuning closed the gap" when the table shows otherwise) lose their point.
#
# **Model answer.** In the author's run (fast profile, seeds 0-2) tuning does not close the gap: the best
# pretrained configuration (fine-tuned at half the rate, 0.858 ± 0.009) is about 0.33 above the best scratch one
# (0.528 ± 0.013), more than ten times the spread between seeds. The three scratch configurations (0.509-0.528)
# all stay close to chance: in five epochs on a couple of hundred images no rate tried makes the scratch net learn,
# so its limit is data and epochs, not the rate. The fine-tuned net is the one whose accuracy moves most with the
# rate (0.48 to 0.86): too large a rate destroys its features, but at a small rate it is good at once. With much
# more target data and epochs the scratch net can approach the fine-tuned one (the initialisation matters less
# when the target data is large); with little data and a limited budget the pretrained features keep their
# advantage. The test set is read once at the end, because every look used to choose would make it a second
# validation set and its accuracy optimistic.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 5 (2 points): a frozen feature extractor
#
# Exercise 3 of the d2l chapter *Fine-Tuning*: keep the layers before the output layer **equal to the source
# model's**: only the head learns. `models.freeze(net)` freezes every group but the head (chapter 1), and
# `training.train` keeps the BatchNorm statistics of frozen layers fixed. Same seeds, same rate, same epochs as
# the fine-tuned net.
#
# > **Common mistake.** d2l's hint `for param in finetune_net.parameters(): param.requires_grad = False` freezes the
# > new head too: then nothing can be trained.

# %%
def frozen_features():
    net = fine_tuned()
    models.freeze(net)
    return net


print(f"trainable parameters: {models.count_parameters(frozen_features(), trainable_only=True):,} "
      f"of {models.count_parameters(frozen_features()):,}")
run("frozen features", frozen_features, lr_finetune)
frozen_net = runs["frozen features"][0][0]
unchanged = all(torch.equal(v, pretrained_net.state_dict()[k])
                for k, v in frozen_net.state_dict().items() if not k.startswith("fc."))
print("after training, the features are still the source model's:", unchanged)
compared = ["fine-tuned", "frozen features", "from scratch"]
for name in compared:
    speed = plots.mean_std([h.final["examples_per_sec"] for _, h in runs[name]])[0]
    print(f"{name:16s} valid acc {mean_pm(valid_accs[name])} | {speed:,.0f} examples/s")
frozen_gaps = [a - b for a, b in zip(valid_accs["fine-tuned"], valid_accs["frozen features"])]
print("gap with the same seed (fine-tuned - frozen features):", [round(g, 3) for g in frozen_gaps])
plots.plot_seed_bars({name: valid_accs[name] for name in compared}, ylabel="validation accuracy (last 3 epochs)");

# %%
# course check: only the head trained, and the features kept the source model's advantage
assert unchanged, "the features must stay those of the source model"
if profile.checks:
    assert min(valid_accs["frozen features"]) > max(valid_accs["from scratch"]), valid_accs

# %% [markdown] nbgrader={"grade": false, "grade_id": "frozen_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 5 (2 points).** How does the accuracy of the frozen feature extractor compare with full fine-tuning
# and with training from scratch (beyond the spread between seeds?), and what does an epoch cost in each case? When
# would you choose a frozen feature extractor, and when full fine-tuning? Support your answer with the numbers you
# obtained.

# %% [markdown] nbgrader={"grade": true, "grade_id": "frozen_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# **Rubric (2 points).** 1 point: the student's own three means ± spreads, the same-seed gaps and examples/s,
# read correctly: which differences exceed the spread between seeds and which do not (a gap that changes sign
# from seed to seed, or is smaller than the spread, is "no measurable difference", not a win), and that a frozen
# epoch is cheaper (no backward pass through the backbone, no optimizer state for it). 1 point: when to choose
# which: a frozen extractor with very little target data, a small compute budget or target images close to the
# source images; full fine-tuning (small rates) with more data or a domain shift (here: foods the source never
# saw), where the features themselves must adapt; the answer links this to what the student's own run shows.
#
# **Model answer.** In the author's run (fast profile, seeds 0-2): fine-tuned 0.837 ± 0.021, frozen features
# 0.792 ± 0.033, from scratch 0.528 ± 0.013. Frozen features are far above training from scratch; full fine-tuning
# is ahead of them with every seed (same-seed gaps 0.053, 0.015, 0.067), a small but consistent advantage: the
# target set holds foods the source model never saw, and only fine-tuning lets the features adapt to them. A
# frozen epoch processed about twice as many examples per second (130 against 59 in that run, on a shared
# machine): no gradient flows through the backbone and no optimizer state is kept for it. Choose a frozen
# extractor with very little target data (fine-tuning every layer would overfit), a small compute budget, or
# target images that resemble the source images; fine-tune every layer (with small rates) when there is enough
# target data and the target differs from the source, so that the features themselves must adapt.
# ### END SOLUTION
#

# %% [markdown]
# ## 8. The test set, once
#
# The choices are made: for each network, the configuration with the best mean validation accuracy. Only now, and
# only for these two, we read the test set: one accuracy per seed (the models trained above), mean and spread.
# d2l reports 0.940 (fine-tuned) and 0.850 (from scratch) on the real data, one run each.

# %%
def best(names):
    return max(names, key=lambda name: plots.mean_std(valid_accs[name])[0])


chosen = [best([n for n in valid_accs if not n.startswith("from scratch")]),
          best([n for n in valid_accs if n.startswith("from scratch")])]
test_accs = {name: [training.evaluate(net, test_iter)[1] for net, _ in runs[name]] for name in chosen}
for name, accs in test_accs.items():
    print(f"chosen: {name:20s} valid acc {mean_pm(valid_accs[name])} | test acc {mean_pm(accs)}")
plots.plot_seed_bars(test_accs);

# %% [markdown]
# ### Exercise 1 (continued): start from the hotdog class
#
# Your `hotdog_head` recognises hotdogs **before any training**; then two epochs, against a Xavier head, with the
# same seeds (on the validation set: this is an experiment, not a final model):

# %%
def hotdog_init():
    net = copy.deepcopy(pretrained_net)
    net.fc = hotdog_head(pretrained_net, categories)
    return net


def untrained(make_net, seed):
    helpers.seed_everything(seed)
    return make_net().to(profile.device)


zero_shot_acc = training.evaluate(untrained(hotdog_init, 0), valid_iter)[1]
xavier_accs = [training.evaluate(untrained(fine_tuned, s), valid_iter)[1] for s in seeds]
print(f"valid acc before training: hotdog head {zero_shot_acc:.3f} | Xavier head {mean_pm(xavier_accs)}")
two_epochs = {name: [train_fine_tuning(make_net, lr_finetune, num_epochs=profile.epochs(2), seed=s,
                                       desc=f"{name} (seed {s})")[1].final["valid_acc"] for s in seeds]
              for name, make_net in [("hotdog head", hotdog_init), ("Xavier head", fine_tuned)]}
print("valid acc after 2 epochs:", " | ".join(f"{name} {mean_pm(accs)}" for name, accs in two_epochs.items()))

# %%
# course check (fast profile): the initialised head beats chance before any training
if profile.fast:
    assert zero_shot_acc > 0.6, zero_shot_acc

# %% [markdown]
# Before any training the initialised head is a usable model (useful with very few target images, and a check
# that the right class was found). Whether it is still ahead after two epochs is a measurement, not a given:
# compare the two means with their spreads. A head copied from the source inherits the source's view of the
# classes, including its mistakes on foods it never saw. In `full`, the "not-hotdog" row (a mean of 999 rows) is crude: food often scores "hotdog"
# above an average class, so expect a weaker start.
#
# ## Summary
#
# * Fine-tuning copies every layer but the output layer, adds a random one, and trains all: small rates for the
#   copied layers, a larger one for the new head.
# * Compare configurations over several seeds, the same seeds and the same budget for each, and read the
#   difference against the spread between seeds.
# * Choose on a validation set, look at the errors there, and report the test set once, for the chosen models.
# * Measure in eval mode, without gradients, and restore the mode afterwards.
#
# | exercise | d2l exercise | grading | points |
# | --- | --- | --- | --- |
# | 1 `hotdog_head` | 4 | autograded | 3 |
# | 2 `predict` in eval mode | (new) | autograded | 3 |
# | 3 larger learning rates | 1 | written | 2 |
# | 4 tune both networks | 2 | written | 3 |
# | 5 frozen feature extractor | 3 | written | 2 |
#
# ## Full profile
#
# `COURSE_PROFILE=full make lab` on a GPU machine downloads `hotdog.zip` and torchvision's `resnet18-f37072fd.pth`
# (45 MB, into `$TORCH_HOME/hub/checkpoints`); `hotdog_head` then finds "hotdog" at output 934. Images are
# $224 \times 224$, batches of 128, base rates 0.001 (fine-tuned) and 0.01 (scratch). d2l reports:
#
# | model | train loss | train acc | test acc |
# | --- | --- | --- | --- |
# | fine-tuned (`finetune_net`) | 0.242 | 0.909 | 0.940 |
# | from scratch (`scratch_net`) | 0.352 | 0.846 | 0.850 |
#
# On a GPU, `helpers.fastpath` decodes the JPEGs once and augments whole batches on the device. Autograding always
# uses the `fast` profile.
