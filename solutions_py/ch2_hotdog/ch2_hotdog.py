# %% [markdown]
# # Chapter 2: Hotdog fine-tuning
#
# Between Fashion-MNIST (60,000 images) and ImageNet (about 14 million images; its 1,000-class ILSVRC-2012 subset, on
# which pretrained models are trained, has 1.28 million training images) lie the data sets we usually meet. Say we
# want to recognise 100 kinds of chairs from photos: even with 1,000 photos per chair we have less than a tenth of
# ImageNet, a network sized for ImageNet would overfit it, and collecting and labelling more images costs time and
# money.
#
# **Transfer learning** moves the knowledge learned on a *source* data set to a *target* data set. Most ImageNet
# images have nothing to do with chairs, but a network trained on them extracts general image features (edges,
# textures, shapes, the composition of objects) that also help to recognise chairs.
#
# **Fine-tuning**, the most common transfer-learning technique, has four steps:
#
# 1. pretrain a neural network, the **source model**, on a source data set (e.g. ImageNet);
# 2. create a **target model** that copies every layer of the source model and its parameters **except the output
#    layer**: those parameters hold the knowledge of the source data set, which should help on the target data set,
#    while the output layer is tied to the source labels;
# 3. add an output layer whose number of outputs is the number of target classes, and **initialise it randomly**;
# 4. train the target model on the target data set: the output layer is trained from scratch, the other layers are
#    *fine-tuned* from the source parameters.
#
# Fine-tuning helps most when the target data set is much smaller than the source data set. This chapter follows
# d2l's hotdog example: a ResNet-18 pretrained on ImageNet is fine-tuned to recognise hotdogs, and compared with the
# same network trained from scratch. On the way it corrects two things the source text gets wrong
# (`pretrained=True` and the index of ImageNet's "hotdog" class).
#
# **Profiles.** In the `fast` profile (default, CPU, under a minute) the source model is a mini ResNet pretrained on
# ten generated food classes and the target data set is a generated mini hotdog data set with the same folder
# layout as the real one; in the `full` profile the same code runs on torchvision's ImageNet ResNet-18 and the real
# d2l hotdog data (see the last section).

# %%
import copy

import torch
import torchvision
from torch import nn
from torchvision.models import ResNet18_Weights

import helpers
from helpers import data, download, grading, models, plots, training

profile = helpers.setup()

# %% [markdown]
# ## 1. The hotdog data set
#
# The real data set comes from images found online: 1,400 positive images that contain hotdogs and as many negative
# images of other food; 1,000 images of each class are used for training and the rest for testing. Once unzipped,
# it has two folders `hotdog/train` and `hotdog/test`, each with the sub-folders `hotdog` and `not-hotdog`.
#
# d2l registers the archive in its `DATA_HUB`, a dictionary from a name to an address and a SHA-1 hash, and
# `download_extract` downloads it once, checks its hash and unzips it. `helpers.download` does the same (the hash is
# verified by `pooch`; an archive member that would land outside the cache folder is refused):

# %%
# NBVAL_CHECK_OUTPUT
hotdog_entry = download.DATA_HUB["hotdog"]
print("url:   ", hotdog_entry.url)
print("sha1:  ", hotdog_entry.sha1)
print("layout:", ", ".join(hotdog_entry.layout))

# %% [markdown]
# `helpers.data.hotdog_dir(profile)` returns the folder: in the `full` profile it calls
# `download.download_extract("hotdog")`; in the `fast` profile it generates (once) the mini hotdog data set, with the
# same layout. Two `ImageFolder`s read the training and test images (without transforms for now, so we get PIL
# images). `ImageFolder` numbers the classes in **alphabetical order of the folder names**: `hotdog` is class 0 and
# `not-hotdog` class 1. Remember this for exercise 4.

# %%
# NBVAL_CHECK_OUTPUT
data_dir = data.hotdog_dir(profile)
train_imgs = data.image_folder(data_dir / "train")
test_imgs = data.image_folder(data_dir / "test")
print("classes:", train_imgs.class_to_idx)
print("images: train", len(train_imgs), "| test", len(test_imgs))
assert train_imgs.classes == test_imgs.classes == ["hotdog", "not-hotdog"]

# %% [markdown]
# The first 8 positive examples and the last 8 negative ones. The images **vary in size and aspect ratio**:

# %%
hotdogs = [train_imgs[i][0] for i in range(8)]
not_hotdogs = [train_imgs[-i - 1][0] for i in range(8)]
print("sizes:", sorted({img.size for img in hotdogs + not_hotdogs})[:6], "...")
plots.show_images(hotdogs + not_hotdogs, 2, 8, scale=1.4);

# %% [markdown]
# ## 2. Data augmentation
#
# During training, a region of random size and random aspect ratio is cropped from the image and scaled to a
# $224 \times 224$ input (`RandomResizedCrop`), and the image is flipped horizontally at random. At test time the
# image is resized so that its shorter side is 256 pixels, and the central $224 \times 224$ region is the input
# (`Resize` + `CenterCrop`: no randomness at test time). Each RGB channel is then **normalised** with the mean and
# standard deviation of ImageNet's channels, the statistics the pretrained model was trained with. In the `fast`
# profile the sizes are 32 (crop) and 36 (resize), and the crop keeps at least 35 % of the area.

# %%
train_augs = data.train_transform(profile)
test_augs = data.test_transform(profile)
print(train_augs)
print(test_augs)

# %% [markdown]
# Six random training views of the first hotdog, then its test view (`denormalize` undoes the normalisation so the
# images can be shown):

# %%
views = [data.denormalize(train_augs(hotdogs[0])) for _ in range(6)] + [data.denormalize(test_augs(hotdogs[0]))]
plots.show_images(views, 1, 7, titles=["train"] * 6 + ["test"], scale=1.4);

# %% [markdown]
# `helpers.data.hotdog_loaders(profile)` builds the two data sets with these transforms and returns a shuffled
# training loader and an ordered test loader. The shuffling and the random crops both draw from PyTorch's global
# generator, so `helpers.seed_everything(0)` at the start of a run makes it repeatable:

# %%
train_iter, test_iter = data.hotdog_loaders(profile)
X, y = next(iter(train_iter))
print("batch:", tuple(X.shape), "labels:", y[:8].tolist())

# %% [markdown]
# ## 3. The source model
#
# The source model is a ResNet-18 pretrained on ImageNet. The source text writes
# `torchvision.models.resnet18(pretrained=True)`: that argument is **deprecated since torchvision 0.13** (it still
# works with a warning, and it does not say which weights you get). Choose the weights with the weights enum:
#
# ```python
# from torchvision.models import resnet18, ResNet18_Weights
#
# pretrained_net = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
# ```
#
# `helpers.models.source_model(profile)` returns exactly this network in the `full` profile (with a verified
# download), and the mini ResNet in the `fast` profile. Both have the module names of ResNet-18: feature layers
# `conv1`, `bn1`, `layer1` .. `layer4`, then global average pooling and the output layer `fc`, a fully connected
# layer from the pooled features to the source classes (1,000 ImageNet classes, or 10 mini food classes):

# %%
# NBVAL_CHECK_OUTPUT
pretrained_net = models.source_model(profile)
categories = models.source_categories(profile)
print(pretrained_net.fc)
print(len(categories), "source classes, e.g.", categories[:4])

# %% [markdown]
# The weights enum also carries the ImageNet class names, **in the order of `fc`'s outputs** (reading it downloads
# nothing). ImageNet has a "hotdog" class. The source text's MXNet tab uses output 713, which is a mistake: MXNet and
# torchvision share the standard ILSVRC-2012 class order, and in it output 713 is something else:

# %%
# NBVAL_CHECK_OUTPUT
imagenet_categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
print("ImageNet output 713:", imagenet_categories[713])
print("ImageNet output 934:", imagenet_categories[934])

# %% [markdown]
# ## 4. The target model
#
# The target model `finetune_net` copies the source model and replaces its output layer by a new
# `nn.Linear(in_features, 2)` whose weights are **Xavier-initialised** (`helpers.models.finetune_net`, which calls
# `helpers.models.new_head`; the source model stays intact):
#
# ```python
# finetune_net = copy.deepcopy(pretrained_net)
# finetune_net.fc = nn.Linear(finetune_net.fc.in_features, 2)
# nn.init.xavier_uniform_(finetune_net.fc.weight)
# ```
#
# The layers before the output layer start from the pretrained parameters, which are already good: a **small
# learning rate** is enough to *fine-tune* them. The output layer starts random and must be learned from scratch:
# it gets a **learning rate ten times larger**. For the comparison, `scratch_net` has the same architecture with
# **every** parameter initialised at random.

# %%
# NBVAL_CHECK_OUTPUT
finetune_net = models.finetune_net(profile, num_classes=2, source=pretrained_net)
scratch_net = models.scratch_net(profile, num_classes=2)
print(finetune_net.fc)
print("parameters:", models.count_parameters(finetune_net), "(both nets)")
assert models.count_parameters(scratch_net) == models.count_parameters(finetune_net)
assert finetune_net.fc.out_features == 2 and pretrained_net.fc.out_features == len(categories)


# %% [markdown]
# Two other target models appear in the exercises of the source text. Write them now; they are trained in
# section 6. (The exercises keep the source text's numbers: 3 and 4 are written here, where their models are
# built; 1 and 2 come with the experiments of section 6.)
#
# ### Exercise 3 (2 points): a frozen feature extractor
#
# Instead of fine-tuning the layers before the output layer, keep them **equal to the source model's** and do not
# update them during training: the pretrained network becomes a fixed feature extractor and only the new head
# learns. The source text suggests
#
# ```python
# for param in finetune_net.parameters():
#     param.requires_grad = False
# ```
#
# which freezes the new output layer too: then nothing at all can be trained.
#
# Write `frozen_feature_extractor(net)`: it sets `requires_grad=False` on every parameter of `net` except those of
# the head `net.fc`, which must be trainable afterwards (even if they were frozen before). Modify `net` in place (do
# not replace or re-initialise any module) and return it.

# %% nbgrader={"grade": false, "grade_id": "frozen_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def frozen_feature_extractor(net):
    ### BEGIN SOLUTION
    for p in net.parameters():
        p.requires_grad_(False)
    for p in net.fc.parameters():
        p.requires_grad_(True)
    ### END SOLUTION
    return net


# %% nbgrader={"grade": true, "grade_id": "frozen_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
assert frozen_feature_extractor(tiny) is tiny, "return the same net"
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}, grading.trainable_names(tiny)
### BEGIN HIDDEN TESTS
# every parameter outside the head is frozen: stem, BatchNorm, shortcut convolutions
tiny = grading.tiny_net()
frozen_feature_extractor(tiny)
assert not any(p.requires_grad for n, p in tiny.named_parameters() if not n.startswith("fc.")), \
    "every parameter before the output layer must be frozen"
assert models.count_parameters(tiny, trainable_only=True) == tiny.fc.in_features * 2 + 2
# a head frozen before must become trainable (the source text's snippet freezes it too)
tiny = grading.tiny_net()
for p in tiny.parameters():
    p.requires_grad_(False)
frozen_feature_extractor(tiny)
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}, "the head must be trainable"
# in place: the head keeps its module and its weights, the features keep the source's
tiny = grading.tiny_net()
fc, w, c1 = tiny.fc, tiny.fc.weight.detach().clone(), tiny.conv1.weight.detach().clone()
frozen_feature_extractor(tiny)
assert tiny.fc is fc and torch.equal(tiny.fc.weight, w), "do not replace or re-initialise the head"
assert torch.equal(tiny.conv1.weight, c1), "do not change the pretrained weights"
# idempotent, and on the chapter's network: training changes the head only
frozen_feature_extractor(tiny)
assert grading.trainable_names(tiny) == {"fc.weight", "fc.bias"}
before = copy.deepcopy(tiny.state_dict())
opt = torch.optim.SGD(tiny.parameters(), lr=0.1, momentum=0.9)
training.train(tiny, grading.tiny_loader(), None, opt, 1, progress=False)
changed = {k for k, v in tiny.state_dict().items() if not torch.equal(v, before[k])}
assert changed == {"fc.weight", "fc.bias"}, f"only the head may change, changed: {sorted(changed)}"
big = frozen_feature_extractor(models.finetune_net(profile, 2, source=pretrained_net))
assert models.trainable_groups(big) == ["head"]
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 4 (3 points): a head initialised from the "hotdog" class
#
# ImageNet has a "hotdog" class, so the source model's output layer already holds a weight vector (one row of
# `fc.weight`) and a bias that score "hotdog" from the pretrained features. Instead of a random head, the new
# 2-class head can start from them.
#
# Write `hotdog_head(source_net, categories)`, which returns a **new** `nn.Linear(source_net.fc.in_features, 2)`:
#
# * find the index of the class `"hotdog"` **by name** in `categories` (the source model's class names, in the
#   order of `fc`'s outputs; do not hard-code an index: it is 934 in the standard ILSVRC-2012 order that torchvision and
#   MXNet share (the source text's 713 is another class), and something else in the `fast` profile's mini source
#   model);
# * row 0 of the weight and entry 0 of the bias are the source model's weight row and bias of "hotdog": row 0,
#   because `ImageFolder` made `hotdog` class 0 of our data set;
# * row 1 (`not-hotdog`) and bias 1 are the **mean** of the weight rows and of the biases of **all the other** source
#   classes: "not a hotdog" scores like an average other class;
# * the new layer must not share memory with `source_net` (training it must not change the source model), and
#   `source_net` must not be modified.

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
assert torch.allclose(head.weight[0], pretrained_net.fc.weight[h]), "row 0 must be the 'hotdog' row"
### BEGIN HIDDEN TESTS
def _check(src, cats):
    src_state = copy.deepcopy(src.state_dict())
    head = hotdog_head(src, cats)
    i = list(cats).index("hotdog")
    others = [k for k in range(len(cats)) if k != i]
    W, b = src.fc.weight.detach(), src.fc.bias.detach()
    assert isinstance(head, nn.Linear) and tuple(head.weight.shape) == (2, W.shape[1]), head
    assert torch.allclose(head.weight[0], W[i]), f"row 0 must be the weights of class 'hotdog' (index {i})"
    assert torch.allclose(head.bias[0], b[i]), "bias 0 must be the bias of class 'hotdog'"
    assert torch.allclose(head.weight[1], W[others].mean(0), atol=1e-6), \
        "row 1 (not-hotdog) must be the mean of the other classes' rows"
    assert torch.allclose(head.bias[1], b[others].mean(), atol=1e-6), \
        "bias 1 (not-hotdog) must be the mean of the other classes' biases"
    assert head.weight.requires_grad and head.bias.requires_grad, "the new head must be trainable"
    assert head.weight.data_ptr() != W.data_ptr() and head is not src.fc, "make a new layer"
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
_zero_shot = copy.deepcopy(pretrained_net)
_zero_shot.fc = hotdog_head(pretrained_net, categories)
assert training.evaluate(_zero_shot, test_iter)[1] > 0.65, "the initialised head should beat chance clearly"
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Fine-tuning versus training from scratch
#
# The course's training loop `helpers.training.train` plays the role of d2l's `train_ch13`. The optimizer is SGD
# (momentum 0.9, weight decay $10^{-3}$) with **one parameter group per layer group**, built by
# `helpers.models.param_groups(net, lr, {"head": 10})`: every group at the base rate $\eta$, the new head at
# $10\eta$. The source text's version, with the same effect:
#
# ```python
# params_1x = [p for name, p in net.named_parameters() if name not in ["fc.weight", "fc.bias"]]
# optimizer = torch.optim.SGD([{"params": params_1x},
#                              {"params": net.fc.parameters(), "lr": learning_rate * 10}],
#                             lr=learning_rate, weight_decay=0.001)
# ```
#
# The fine-tuned net gets a **small** base learning rate, the net trained from scratch a larger one, the same for
# all its layers. (d2l's PyTorch code uses `5e-5` and `5e-4` because its `train_ch13` **sums** the loss over a batch
# of 128 images, which multiplies every gradient by 128; our loss is the batch mean, and momentum 0.9 multiplies the
# step by about 10 more.)

# %%
num_epochs = 5
lr_finetune, lr_scratch = (0.01, 0.1) if profile.fast else (0.001, 0.01)


def train_fine_tuning(net, learning_rate, head_mult=10, num_epochs=num_epochs, desc="train"):
    # one optimizer group per layer group; the head's learning rate is multiplied by head_mult
    helpers.seed_everything(0)  # every run sees the same shuffles and random crops
    groups = models.param_groups(net, learning_rate, {"head": head_mult}, weight_decay=1e-3)
    optimizer = torch.optim.SGD(groups, momentum=0.9)
    return training.train(net, train_iter, test_iter, optimizer, num_epochs, desc=desc)


finetune_hist = train_fine_tuning(finetune_net, lr_finetune, desc="fine-tuned")
print("fine-tuned:  ", finetune_hist)

# %% [markdown]
# For comparison, the same network with every parameter initialised at random: the whole model is learned from
# scratch, so it gets a larger learning rate, and no group gets a multiplier.

# %%
scratch_hist = train_fine_tuning(scratch_net, lr_scratch, head_mult=1, desc="from scratch")
print("from scratch:", scratch_hist)
plots.plot_history({"fine-tuned": finetune_hist, "from scratch": scratch_hist});


# %% [markdown]
# The test set has 200 images in the `fast` profile, so one epoch's test accuracy moves by a few points from one
# epoch to the next. The comparison below (and the check of the lesson) uses the mean of the last three epochs.

# %%
def late_acc(history, epochs=3):
    # mean test accuracy of the last epochs: steadier than the last epoch alone
    return sum(history["test_acc"][-epochs:]) / epochs


for name, h in {"fine-tuned": finetune_hist, "from scratch": scratch_hist}.items():
    f = h.final
    print(f"{name:13s} loss {f['train_loss']:.3f}, train acc {f['train_acc']:.3f}, test acc {f['test_acc']:.3f}, "
          f"last 3 epochs {late_acc(h):.3f}")
finetune_acc, scratch_acc = late_acc(finetune_hist), late_acc(scratch_hist)
assert finetune_acc > scratch_acc + 0.08, (finetune_acc, scratch_acc)
assert finetune_hist.final["train_loss"] < scratch_hist.final["train_loss"]

# %% [markdown]
# The fine-tuned model is better after the same number of epochs, because its initial parameters are better: its
# features were learned on a large source data set. With the real data (`full` profile) d2l reports: fine-tuned
# loss 0.242, train acc 0.909, test acc **0.940**; from scratch loss 0.352, train acc 0.846, test acc **0.850**.
#
# **Summary.**
# * Transfer learning moves knowledge learned on a source data set to a target data set; fine-tuning is its most
#   common form.
# * The target model copies every layer of the source model, and its parameters, except the output layer, and
#   fine-tunes them on the target data; its output layer is trained from scratch.
# * Fine-tuned parameters usually get a small learning rate; the new output layer a larger one.
#
# ## 6. Exercises
#
# ### Exercise 1: a larger learning rate for `finetune_net`
#
# Keep raising the learning rate of `finetune_net`. The cell below repeats the fine-tuning with larger base rates
# (the head still gets 10x). Edit the list of rates if you want to try others.

# %%
lr_results = {lr_finetune: finetune_acc}
for lr in [lr_finetune * 5, lr_finetune * 20]:
    net = models.finetune_net(profile, 2, source=pretrained_net)
    lr_results[lr] = late_acc(train_fine_tuning(net, lr, desc=f"lr={lr:g}"))
for lr, acc in lr_results.items():
    print(f"base lr {lr:g} (head {10 * lr:g}): test acc (last 3 epochs) {acc:.3f}")
if profile.fast and lr_finetune * 20 in lr_results:  # the lesson: a far too large rate loses the advantage
    assert lr_results[lr_finetune * 20] < lr_results[lr_finetune] - 0.1, lr_results

# %% [markdown] nbgrader={"grade": false, "grade_id": "lr_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 1 (2 points).** How does the accuracy of the fine-tuned model change as its learning rate grows?
# Explain why, and say what this means for choosing the learning rate of a pretrained network.

# %% [markdown] nbgrader={"grade": true, "grade_id": "lr_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Accuracy falls as the learning rate grows, and at the largest rate the fine-tuned net is no better (here worse)
# than the net trained from scratch, sometimes close to chance. The pretrained weights are already a good solution;
# fine-tuning should move them only a little. Large steps (the head's rate is 10x larger still, and momentum
# amplifies every step) throw the weights far away from the pretrained point: the random head's large early
# gradients flow back into the backbone and destroy the pretrained features before the head has learned to use
# them, so the advantage of pretraining is lost and training can even become unstable. A pretrained network
# therefore needs a small base learning rate (about 10x smaller than from scratch), with a larger one only for the
# new layer; if in doubt, decrease it rather than increase it.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 2: tune both networks
#
# Tune the hyperparameters of `finetune_net` and `scratch_net` further (learning rate, number of epochs, weight
# decay, head multiplier). Is their accuracy still different? Below, one attempt for each: the scratch net gets
# twice as many epochs at half the rate, and the fine-tuned net a smaller rate. Change them and try others.

# %%
tuned_scratch = train_fine_tuning(models.scratch_net(profile, 2), lr_scratch / 2, head_mult=1,
                                  num_epochs=2 * num_epochs, desc="scratch, tuned")
tuned_finetune = train_fine_tuning(models.finetune_net(profile, 2, source=pretrained_net), lr_finetune / 2,
                                   desc="fine-tuned, tuned")
print(f"from scratch, {2 * num_epochs} epochs, lr {lr_scratch / 2:g}: "
      f"test acc (last 3 epochs) {late_acc(tuned_scratch):.3f}")
print(f"fine-tuned,   {num_epochs} epochs, lr {lr_finetune / 2:g}: "
      f"test acc (last 3 epochs) {late_acc(tuned_finetune):.3f}")
plots.plot_history({"scratch, tuned": tuned_scratch, "fine-tuned, tuned": tuned_finetune});

# %% [markdown] nbgrader={"grade": false, "grade_id": "tuning_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 2 (2 points).** After tuning, is the accuracy of the two networks still different? Which network is
# more sensitive to its hyperparameters, and which would you expect to close the gap with more data or more epochs?
# Support your answer with the numbers you obtained.

# %% [markdown] nbgrader={"grade": true, "grade_id": "tuning_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Tuning narrows the gap but does not close it: with twice the epochs the scratch net improves, yet it stays below
# the fine-tuned net, which is already good with its first settings and even after only one or two epochs. The
# scratch net is the more sensitive one (it must learn every feature from a few hundred / a few thousand images, so
# learning rate, epochs and regularisation matter a lot and it overfits easily); the fine-tuned net only needs its
# head learned and its features nudged. With much more target data and many more epochs the scratch net can
# approach the fine-tuned one (the pretrained initialisation matters less when the target data set is large), but
# with a small target data set and a limited budget the pretrained features keep their advantage. A fair
# comparison tunes both nets with the same budget and reports several seeds.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 3 (continued): train the frozen feature extractor
#
# Your `frozen_feature_extractor` from section 4: a fresh `finetune_net` whose features stay those of the source
# model. `helpers.training.train` also keeps the BatchNorm statistics of frozen layers fixed (`freeze_bn_stats=True`),
# so the backbone does not change at all. Only the head is trained, so each epoch is cheaper (no gradients through
# the backbone).

# %%
frozen_net = frozen_feature_extractor(models.finetune_net(profile, 2, source=pretrained_net))
print("trainable parameters:", models.count_parameters(frozen_net, trainable_only=True),
      "of", models.count_parameters(frozen_net))
frozen_hist = train_fine_tuning(frozen_net, lr_finetune, desc="frozen features")
print("frozen features:", frozen_hist)
print(f"test acc (last 3 epochs): fine-tuned {finetune_acc:.3f} | frozen features {late_acc(frozen_hist):.3f} "
      f"| from scratch {scratch_acc:.3f}")
unchanged = all(torch.equal(v, pretrained_net.state_dict()[k])
                for k, v in frozen_net.state_dict().items() if not k.startswith("fc."))
assert unchanged, "the features must stay those of the source model"
if profile.fast:
    assert late_acc(frozen_hist) > scratch_acc + 0.08

# %% [markdown] nbgrader={"grade": false, "grade_id": "frozen_question_text", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Question 3 (2 points).** How does the accuracy of the frozen feature extractor compare with full fine-tuning
# and with training from scratch, and what does an epoch cost in each case (see `examples_per_sec` in the
# histories)? When would you choose a frozen feature extractor, and when full fine-tuning? Support your answer with
# the numbers you obtained.

# %% [markdown] nbgrader={"grade": true, "grade_id": "frozen_question", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# ### BEGIN SOLUTION
# Frozen features beat training from scratch by far and are on par with full fine-tuning on this task (the
# difference is within the noise of a 200-image test set); an epoch is about twice as fast, since no gradient flows
# through the backbone and no optimizer state is kept for it. The source features already separate the target
# classes. Choose a frozen extractor with very little target data (fine-tuning all layers would overfit), with a
# small compute budget, or when the target images resemble the source images; fine-tune every layer (with small
# rates) when there is enough target data and the target images differ from the source (other domain, other
# statistics), so that the features themselves need to adapt.
# ### END SOLUTION
#

# %% [markdown]
# ### Exercise 4 (continued): start from the hotdog class
#
# Your `hotdog_head` from section 4, on the pretrained features. Before any training, the model already recognises
# hotdogs; then it is fine-tuned for two epochs, like a net with a Xavier head:

# %%
hotdog_net = copy.deepcopy(pretrained_net)
hotdog_net.fc = hotdog_head(pretrained_net, categories)
zero_shot_acc = training.evaluate(hotdog_net, test_iter)[1]
xavier_acc = training.evaluate(models.finetune_net(profile, 2, source=pretrained_net), test_iter)[1]
print(f"before training: hotdog head {zero_shot_acc:.3f} | Xavier head {xavier_acc:.3f}")
if profile.fast:
    assert zero_shot_acc > 0.65

hotdog_hist = train_fine_tuning(hotdog_net, lr_finetune, num_epochs=2, desc="hotdog head")
xavier_hist = train_fine_tuning(models.finetune_net(profile, 2, source=pretrained_net), lr_finetune,
                                num_epochs=2, desc="Xavier head")
print("after 2 epochs: hotdog head", f"{hotdog_hist.final['test_acc']:.3f}",
      "| Xavier head", f"{xavier_hist.final['test_acc']:.3f}")

# %% [markdown]
# The head built from the source class gives a good model **without any training** (useful with very few target
# images, or as a sanity check that the right class was found). After two epochs on enough target data the
# advantage is gone (compare the two numbers: the difference is within the noise): a random head learns quickly on
# good features. The initialised head pays off when there are very few target images or training steps.
# In the `full` profile the "not-hotdog" row (the mean of 999 other rows) is a crude score: food images often
# score "hotdog" above the average class, so expect a weaker start there than in the `fast` profile. One more use of the source classes: predictions of several related source classes (other sausages, sandwiches)
# could be combined into the "hotdog" score as well.
#
# ## Full profile
#
# Run this chapter with the real data and weights: `COURSE_PROFILE=full make lab` on a machine with a GPU. The
# first run downloads the d2l hotdog data set (`hotdog.zip`, checked against its SHA-1
# `fba480ffa8aa7e0febbb511d181409f899b9baa5`) and torchvision's `resnet18-f37072fd.pth` (about 45 MB, into
# `$TORCH_HOME/hub/checkpoints`); `categories` are then ImageNet's 1,000 classes and `hotdog_head` finds
# "hotdog" at index 934. Images are $224 \times 224$ (test: resize 256, centre crop 224), batches of 128, base
# learning rates 0.001 (fine-tuned, head 0.01) and 0.01 (from scratch). Expect results close to d2l's executed
# notebook:
#
# | model | train loss | train acc | test acc |
# | --- | --- | --- | --- |
# | fine-tuned (`finetune_net`) | 0.242 | 0.909 | 0.940 |
# | from scratch (`scratch_net`) | 0.352 | 0.846 | 0.850 |
#
# The `full` profile decodes the JPEG files again in every epoch and is usually limited by the CPU; on a GPU,
# `helpers.fastpath.fast_loaders(profile)` decodes them once and augments whole batches on the device, a drop-in
# replacement for `data.hotdog_loaders(profile)`. Autograding always uses the `fast` profile.
