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
# NBVAL_CHECK_OUTPUT
hotdog_entry = download.DATA_HUB["hotdog"]
print("url:   ", hotdog_entry.url)
print("sha1:  ", hotdog_entry.sha1)
print("layout:", ", ".join(hotdog_entry.layout))

# %% [markdown]
# `ImageFolder` numbers the classes in **alphabetical order of the folder names**: `hotdog` is class 0, `not-hotdog`
# class 1 (exercise 1 needs this).

# %%
# NBVAL_CHECK_OUTPUT
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
# wins by luck. `data.hotdog_loaders(profile)` holds out a seeded, stratified 20 % of the training folder as a
# **validation set**. Every choice below is made on it; the **test set** reports each final model once.
#
# > **Common mistake.** Passing the test set to the training loop and choosing the rate from its curves (d2l's
# > `train_ch13`): the reported accuracy is then optimistic. Choose on a validation set, report the test set once.

# %%
# NBVAL_CHECK_OUTPUT
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
# > **Common mistake.** `resnet18(pretrained=True)` (d2l) is deprecated since torchvision 0.13 and does not say which
# > weights you get. Write `resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)`.

# %%
# NBVAL_CHECK_OUTPUT
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
# NBVAL_CHECK_OUTPUT
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

# %%
# NBVAL_CHECK_OUTPUT
finetune_net = models.finetune_net(profile, num_classes=2, source=pretrained_net).to(profile.device)
scratch_net = models.scratch_net(profile, num_classes=2).to(profile.device)
print(finetune_net.fc)
print(f"parameters: {models.count_parameters(finetune_net):,} (both nets)")

# %%
assert models.count_parameters(scratch_net) == models.count_parameters(finetune_net)
assert finetune_net.fc.out_features == 2 and pretrained_net.fc.out_features == len(categories)

# %% [markdown]
# ### Exercise 1 (seed exercise 4, 3 points): a head initialised from the "hotdog" class
#
# The source model's `fc` already holds a weight row and a bias that score "hotdog". Write `hotdog_head(source_net,
# categories)`, which returns a **new** `nn.Linear(source_net.fc.in_features, 2)` that starts from them:
#
# * find `"hotdog"` **by name** in `categories` (the source classes in the order of `fc`'s outputs);
# * row 0 of the weight and entry 0 of the bias are the source's "hotdog" row and bias (row 0: `hotdog` is class 0);
# * row 1 (`not-hotdog`) and bias 1 are the **mean** of the rows and of the biases of **all the other** classes;
# * the new layer shares no memory with `source_net`, and `source_net` is not modified.

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


# %% nbgrader={"grade": true, "grade_id": "hotdog_head_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
head = hotdog_head(pretrained_net, categories)
assert isinstance(head, nn.Linear) and head.out_features == 2, head
assert head.in_features == pretrained_net.fc.in_features
h = categories.index("hotdog")
assert torch.allclose(head.weight[0].cpu(), pretrained_net.fc.weight[h].cpu()), "row 0 must be the 'hotdog' row"
### BEGIN HIDDEN TESTS
def _check(src, cats):
    src_state = copy.deepcopy(src.state_dict())
    head = hotdog_head(src, cats)
    i = list(cats).index("hotdog")
    others = [k for k in range(len(cats)) if k != i]
    W, b = src.fc.weight.detach().cpu(), src.fc.bias.detach().cpu()
    assert isinstance(head, nn.Linear) and tuple(head.weight.shape) == (2, W.shape[1]), head
    hw, hb = head.weight.detach().cpu(), head.bias.detach().cpu()
    assert torch.allclose(hw[0], W[i]), f"row 0 must be the weights of class 'hotdog' (index {i})"
    assert torch.allclose(hb[0], b[i]), "bias 0 must be the bias of class 'hotdog'"
    assert torch.allclose(hw[1], W[others].mean(0), atol=1e-6), \
        "row 1 (not-hotdog) must be the mean of the other classes' rows"
    assert torch.allclose(hb[1], b[others].mean(), atol=1e-6), \
        "bias 1 (not-hotdog) must be the mean of the other classes' biases"
    assert head.weight.requires_grad and head.bias.requires_grad, "the new head must be trainable"
    assert head.weight.data_ptr() != src.fc.weight.data_ptr() and head is not src.fc, "make a new layer"
    with torch.no_grad():
        head.weight.add_(1.0)
        head.bias.add_(1.0)
    assert all(torch.equal(v, src_state[k]) for k, v in src.state_dict().items()), \
        "the source model must not change (no shared memory, no modification)"
    return head

# the chapter's source model and categories
_check(pretrained_net, categories)
# torchvision's ImageNet order: 'hotdog' is output 934 (not 713)
_check(grading.tiny_net(num_classes=1000, seed=1), imagenet_categories)
# the index must be looked up by name: the same classes, another order
_rotated = list(categories[3:]) + list(categories[:3])
assert _rotated.index("hotdog") != categories.index("hotdog")
_check(grading.tiny_net(num_classes=len(_rotated), seed=2), _rotated)
_imagenet_rev = list(reversed(imagenet_categories))
_check(grading.tiny_net(num_classes=1000, seed=3), _imagenet_rev)
# a tuple of names works as well
_check(grading.tiny_net(num_classes=len(categories), seed=4), tuple(categories))
# on the chapter's data, the new head already recognises hotdogs before any training
if profile.fast:
    _zero_shot = copy.deepcopy(pretrained_net)
    _zero_shot.fc = hotdog_head(pretrained_net, categories)
    assert training.evaluate(_zero_shot.to(profile.device), valid_iter)[1] > 0.65, \
        "the initialised head should beat chance clearly"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2 (new, 3 points): measure a model in eval mode
#
# Write `predict(net, data_iter)`, which returns `(probs, labels)`: softmax probabilities `(N, num_classes)` and
# true labels `(N,)`, in the order of `data_iter`, on the CPU (move each batch to the device of `net`'s parameters).
# It must run the net in **eval mode**, compute **no gradients** (`torch.inference_mode()`), and leave the net in
# the mode it found it in.
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


# %% nbgrader={"grade": true, "grade_id": "predict_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny, loader = grading.tiny_net(), grading.tiny_loader(n=20)
probs, labels = predict(tiny, loader)
assert probs.shape == (20, 2) and labels.shape == (20,), (probs.shape, labels.shape)
assert torch.allclose(probs.sum(1), torch.ones(20)), "each row must be probabilities (softmax) summing to 1"
assert tiny.training, "the net was in train mode: leave it in train mode"
### BEGIN HIDDEN TESTS
tiny = grading.tiny_net(seed=5)
_bn = {k: v.clone() for k, v in tiny.state_dict().items() if "running" in k or "num_batches" in k}
_seen = []
for _m in tiny.modules():
    if isinstance(_m, nn.BatchNorm2d):
        _m.register_forward_hook(lambda m, i, o: _seen.append((m.training, torch.is_grad_enabled())))
tiny.train()
_p, _y = predict(tiny, grading.tiny_loader(n=20, batch_size=8))
assert _seen, "predict must run the net on the batches"
assert not any(t for t, _ in _seen), "BatchNorm ran in train mode: call net.eval() before the forward passes"
assert not any(g for _, g in _seen), "gradients were tracked: wrap the forward passes in torch.inference_mode()"
assert all(torch.equal(tiny.state_dict()[k], v) for k, v in _bn.items()), \
    "the BatchNorm running statistics changed: the test batches leaked into them (use eval mode)"
assert tiny.training and all(m.training for m in tiny.modules()), \
    "the net was in train mode before predict: restore it (net.train(was_training))"
assert not _p.requires_grad, "return plain tensors, without autograd history"
assert torch.equal(_y, torch.cat([y for _, y in grading.tiny_loader(n=20, batch_size=8)])), \
    "labels must be the true labels, in the order of data_iter"
with torch.no_grad():
    tiny.eval()
    _ref = torch.cat([torch.softmax(tiny(X), 1) for X, _ in grading.tiny_loader(n=20, batch_size=8)])
assert torch.allclose(_p, _ref, atol=1e-5), "probs must be the softmax of the net's outputs in eval mode"
# a prediction must not depend on the other images of its batch
_p1, _ = predict(tiny, grading.tiny_loader(n=20, batch_size=1))
assert torch.allclose(_p1, _p, atol=1e-5), "predictions change with the batch size: use eval mode"
# a net in eval mode stays in eval mode
tiny.eval()
predict(tiny, grading.tiny_loader(n=8))
assert not tiny.training, "the net was in eval mode before predict: leave it in eval mode"
# the chapter's model and data agree with the course's helper
_net = copy.deepcopy(finetune_net).train()
_p, _y = predict(_net, valid_iter)
_ref_p, _ref_y = training.predict(_net, valid_iter)
assert torch.allclose(_p, _ref_p, atol=1e-4) and torch.equal(_y, _ref_y), "wrong predictions on the valid set"
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

# %%
num_epochs = profile.epochs(5)
lr_finetune, lr_scratch = (0.01, 0.1) if profile.fast else (0.001, 0.01)


def train_fine_tuning(net, learning_rate, head_mult=10, num_epochs=num_epochs, seed=0, desc="train"):
    # one optimizer group per layer group; the head's learning rate is multiplied by head_mult
    helpers.seed_everything(seed)  # every run sees the same shuffles and random crops
    groups = models.param_groups(net, learning_rate, {"head": head_mult}, weight_decay=1e-3)
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    return training.train(net, train_iter, valid_iter, optimizer, num_epochs, desc=desc)


def late_acc(history, epochs=3):
    # mean validation accuracy of the last epochs: steadier than the last epoch alone
    accs = history["valid_acc"][-epochs:]
    return sum(accs) / len(accs)


finetune_hist = train_fine_tuning(finetune_net, lr_finetune, desc="fine-tuned")
scratch_hist = train_fine_tuning(scratch_net, lr_scratch, head_mult=1, desc="from scratch")
finetune_acc, scratch_acc = late_acc(finetune_hist), late_acc(scratch_hist)
print(f"valid acc (last 3 epochs): fine-tuned {finetune_acc:.3f} | from scratch {scratch_acc:.3f}")
plots.plot_history({"fine-tuned": finetune_hist, "from scratch": scratch_hist});

# %% [markdown]
# The validation set is small (48 images in `fast`), so we compare the mean of the last three epochs. Over seeds
# 0-2 (`seed=` of `train_fine_tuning`: shuffles, crops, initialisations) we measured fine-tuned 0.84-0.90, from
# scratch 0.52-0.65: a gap of 0.19-0.38, whatever the seed.

# %%
if profile.fast:
    assert finetune_acc > scratch_acc + 0.08, (finetune_acc, scratch_acc)
    assert finetune_hist.final["train_loss"] < scratch_hist.final["train_loss"]

# %% [markdown]
# The fine-tuned model is better after the same number of epochs because it starts from features learned on a large
# source data set. These two are our final models: their **test** accuracy, measured once, with d2l's results on the
# real data for comparison (fine-tuned 0.940, from scratch 0.850):

# %%
finetune_probs, finetune_labels = training.predict(finetune_net, test_iter)
scratch_probs, scratch_labels = training.predict(scratch_net, test_iter)
for name, p, y in [("fine-tuned", finetune_probs, finetune_labels), ("from scratch", scratch_probs, scratch_labels)]:
    print(f"{name:13s} test acc {(p.argmax(1) == y).float().mean().item():.3f}")

# %% [markdown]
# ### Error analysis
#
# An accuracy hides *which* images fail. A confusion matrix counts the errors per class (rows: actual class,
# columns: predicted), and the images with the highest loss $-\log p(\text{actual class})$ show what the models get
# confidently wrong: titles read "predicted/actual" and "loss/probability of the actual class".

# %%
classes = train_imgs.classes
plots.confusion_matrix(finetune_labels, finetune_probs.argmax(1), classes, title="fine-tuned");
plots.confusion_matrix(scratch_labels, scratch_probs.argmax(1), classes, title="from scratch");

# %%
plots.show_worst(test_iter.dataset, finetune_probs, finetune_labels, k=8, classes=classes,
                 transform=data.denormalize);
plots.show_worst(test_iter.dataset, scratch_probs, scratch_labels, k=8, classes=classes,
                 transform=data.denormalize);

# %% [markdown]
# Look for a pattern: errors in one class, or in one kind of image (small hotdogs, odd colours)? Patterns point to
# the data (more such examples) rather than to more epochs. And what does measuring in train mode do? Your
# `predict` against a forward pass in train mode, on a copy:

# %%
leaky_net = copy.deepcopy(finetune_net).train()
with torch.no_grad():
    leaky_acc = sum((leaky_net(X.to(profile.device)).argmax(1).cpu() == y).sum().item()
                    for X, y in valid_iter) / len(valid_iter.dataset)
eval_probs, eval_labels = predict(finetune_net, valid_iter)
drift = (leaky_net.bn1.running_mean - finetune_net.bn1.running_mean).abs().max().item()
print(f"valid acc: eval mode {(eval_probs.argmax(1) == eval_labels).float().mean().item():.3f} | "
      f"train mode {leaky_acc:.3f}; bn1 running mean moved by up to {drift:.3f}")

# %% [markdown]
# ## 7. Tuning on the validation set
#
# ### Exercise 3 (seed exercise 1, 2 points): a larger learning rate for `finetune_net`
#
# Larger base rates (the head still gets 10x), validation accuracy against the rate. Edit the list to try others.

# %%
lr_results = {lr_finetune: finetune_acc}
for lr in [lr_finetune * 5, lr_finetune * 20]:
    net = models.finetune_net(profile, 2, source=pretrained_net).to(profile.device)
    lr_results[lr] = late_acc(train_fine_tuning(net, lr, desc=f"lr={lr:g}"))
plots.plot_sweep({"fine-tuned": lr_results, "from scratch": {lr_scratch: scratch_acc}}, chance=0.5);

# %%
if profile.fast and lr_finetune * 20 in lr_results:  # the lesson: a far too large rate loses the advantage
    assert lr_results[lr_finetune * 20] < lr_results[lr_finetune] - 0.1, lr_results

# %% [markdown] nbgrader={"grade": false, "grade_id": "lr_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 3 (2 points).** How does the validation accuracy of the fine-tuned model change as its learning rate
# grows? Explain why, and say what this means for choosing the learning rate of a pretrained network.

# %% [markdown] nbgrader={"grade": true, "grade_id": "lr_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Accuracy falls as the rate grows; at the largest rate the fine-tuned net is no better (here worse) than the net
# trained from scratch, sometimes close to chance. The pretrained weights are already a good solution and should
# move only a little. Large steps (the head's rate is 10x larger still, and momentum amplifies every step) throw them
# far from the pretrained point: the random head's large early gradients flow back into the backbone and destroy the
# features before the head has learned to use them. A pretrained network needs a small base rate (about 10x smaller
# than from scratch) with a larger one only for the new layer; when in doubt, decrease it.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 4 (seed exercise 2, 3 points): tune both networks
#
# Tune both networks (rate, epochs, weight decay, head multiplier) on the validation accuracy. One attempt each
# below: the scratch net twice the epochs at half the rate, the fine-tuned net half the rate. Try others; then
# report the test accuracy of your two final models once.

# %%
tuned_scratch_net = models.scratch_net(profile, 2).to(profile.device)
tuned_scratch = train_fine_tuning(tuned_scratch_net, lr_scratch / 2, head_mult=1,
                                  num_epochs=profile.epochs(2 * 5), desc="scratch, tuned")
tuned_finetune_net = models.finetune_net(profile, 2, source=pretrained_net).to(profile.device)
tuned_finetune = train_fine_tuning(tuned_finetune_net, lr_finetune / 2, desc="fine-tuned, tuned")
print(f"valid acc (last 3 epochs): scratch, {len(tuned_scratch)} epochs at {lr_scratch / 2:g}: "
      f"{late_acc(tuned_scratch):.3f} | fine-tuned at {lr_finetune / 2:g}: {late_acc(tuned_finetune):.3f}")
plots.plot_history({"scratch, tuned": tuned_scratch, "fine-tuned, tuned": tuned_finetune});

# %%
for name, net in [("scratch, tuned", tuned_scratch_net), ("fine-tuned, tuned", tuned_finetune_net)]:
    print(f"{name:18s} test acc {training.evaluate(net, test_iter)[1]:.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "tuning_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 4 (3 points).** After tuning, is the accuracy of the two networks still different? Which network is
# more sensitive to its hyperparameters, and which would you expect to close the gap with more data or more epochs?
# Support your answer with the validation numbers you obtained, and say why the test accuracy is read only at the
# end.

# %% [markdown] nbgrader={"grade": true, "grade_id": "tuning_question", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Tuning narrows the gap but does not close it: with twice the epochs the scratch net improves, yet stays below the
# fine-tuned net, which is already good with its first settings. The scratch net is the more sensitive one: it must
# learn every feature from a few hundred images, so learning rate, epochs and regularisation matter a lot and it
# overfits easily; the fine-tuned net only learns its head and nudges its features. With much more target data and
# epochs the scratch net can approach the fine-tuned one (the initialisation matters less when the target data is
# large), but with little data and a limited budget the pretrained features keep their advantage. A fair comparison
# tunes both with the same budget, on the validation set, and repeats over seeds: differences of a point or two on
# 48 validation images are noise. The test set is read once at the end, because every look used to choose would make
# it a second validation set and its accuracy optimistic.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 5 (seed exercise 3, 2 points): a frozen feature extractor
#
# Keep the layers before the output layer **equal to the source model's**: only the head learns.
# `models.freeze(net)` freezes every group but the head (chapter 1), and `training.train` keeps the BatchNorm
# statistics of frozen layers fixed.
#
# > **Common mistake.** d2l's hint `for param in finetune_net.parameters(): param.requires_grad = False` freezes the
# > new head too: then nothing can be trained.

# %%
frozen_net = models.finetune_net(profile, 2, source=pretrained_net).to(profile.device)
models.freeze(frozen_net)
print(f"trainable parameters: {models.count_parameters(frozen_net, trainable_only=True):,} "
      f"of {models.count_parameters(frozen_net):,}")
frozen_hist = train_fine_tuning(frozen_net, lr_finetune, desc="frozen features")
speed = {name: h.final["examples_per_sec"] for name, h in
         [("fine-tuned", finetune_hist), ("frozen", frozen_hist), ("from scratch", scratch_hist)]}
print(f"valid acc (last 3 epochs): fine-tuned {finetune_acc:.3f} | frozen features {late_acc(frozen_hist):.3f} "
      f"| from scratch {scratch_acc:.3f}")
print("examples/s:", {k: round(v) for k, v in speed.items()})

# %%
unchanged = all(torch.equal(v, pretrained_net.state_dict()[k])
                for k, v in frozen_net.state_dict().items() if not k.startswith("fc."))
assert unchanged, "the features must stay those of the source model"
if profile.fast:
    assert late_acc(frozen_hist) > scratch_acc + 0.08

# %% [markdown] nbgrader={"grade": false, "grade_id": "frozen_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 5 (2 points).** How does the accuracy of the frozen feature extractor compare with full fine-tuning
# and with training from scratch, and what does an epoch cost in each case? When would you choose a frozen feature
# extractor, and when full fine-tuning? Support your answer with the numbers you obtained.

# %% [markdown] nbgrader={"grade": true, "grade_id": "frozen_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Frozen features beat training from scratch by far and are on par with full fine-tuning on this task (the
# difference is within the noise of a 48-image validation set); an epoch is faster, since no gradient flows through
# the backbone and no optimizer state is kept for it. The source features already separate the target classes.
# Choose a frozen extractor with very little target data (fine-tuning every layer would overfit), a small compute
# budget, or target images that resemble the source images; fine-tune every layer (with small rates) when there is
# enough target data and the target images differ from the source (another domain, other statistics), so that the
# features themselves must adapt.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 1 (continued): start from the hotdog class
#
# Your `hotdog_head` recognises hotdogs **before any training**; then two epochs, against a Xavier head:

# %%
hotdog_net = copy.deepcopy(pretrained_net)
hotdog_net.fc = hotdog_head(pretrained_net, categories)
hotdog_net = hotdog_net.to(profile.device)
xavier_net = models.finetune_net(profile, 2, source=pretrained_net).to(profile.device)
zero_shot_acc = training.evaluate(hotdog_net, valid_iter)[1]
print(f"valid acc before training: hotdog head {zero_shot_acc:.3f} | Xavier head "
      f"{training.evaluate(xavier_net, valid_iter)[1]:.3f}")
hotdog_hist = train_fine_tuning(hotdog_net, lr_finetune, num_epochs=profile.epochs(2), desc="hotdog head")
xavier_hist = train_fine_tuning(xavier_net, lr_finetune, num_epochs=profile.epochs(2), desc="Xavier head")
print(f"valid acc after {len(hotdog_hist)} epochs: hotdog head {hotdog_hist.final['valid_acc']:.3f} | "
      f"Xavier head {xavier_hist.final['valid_acc']:.3f}")

# %%
if profile.fast:
    assert zero_shot_acc > 0.65

# %% [markdown]
# A usable model with no training (useful with very few target images, and a check that the right class was
# found); after two epochs a random head has caught up. In `full`, the "not-hotdog" row (a mean of 999 rows) is
# crude: food often scores "hotdog" above an average class, so expect a weaker start.
#
# ## Summary
#
# * Fine-tuning copies every layer but the output layer, adds a random one, and trains all: small rates for the
#   copied layers, a larger one for the new head.
# * Choose on a validation set, report the test set once, and look at the errors, not only the accuracy.
# * Measure in eval mode, without gradients, and restore the mode afterwards.
#
# | exercise | seed exercise | grading | points |
# | --- | --- | --- | --- |
# | 1 `hotdog_head` | 4 | autograded | 3 |
# | 2 `predict` in eval mode | new | autograded | 3 |
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
