# %% [markdown]
# # Chapter 4: A compression workflow
#
# A **compression workflow** makes a fine-tuned model smaller or faster while keeping its accuracy: keep a
# **baseline** intact; **compress** copies of it (pruning, int8 quantization, distillation); **fine-tune** them;
# **measure** accuracy, size, sparsity and latency; **choose** on the validation set; report the **test** set once
# for the model kept. Each step has a classic mistake that silently gives wrong numbers: a *Common mistake* box
# shows it where it happens. The tools live in `helpers.compression` (`C`).

# %%
import copy
import logging

import torch
import torchvision
from torch import nn
from torch.nn.utils import prune

import helpers
from helpers import compression as C
from helpers import data, grading, models, plots, training

profile = helpers.setup()
train_iter, valid_iter, test_iter = data.hotdog_loaders(profile)
latency_batch = 8 if profile.fast else 2  # ResNet-18 on a CPU: 2 images keep each measurement to seconds
example_batch = next(iter(valid_iter))[0][:latency_batch]

# %% [markdown]
# ## 1. Baseline
#
# `data.hotdog_loaders` splits the training folder once (seeded, stratified): 80 % to train, 20 % to
# **validate**. Every choice in this chapter (which sparsity, which combination to deploy) is made on the
# validation set; the test set is looked at once, at the end, for the models we keep.
#
# The baseline is the chapter-2 recipe: pretrained network, new 2-class head, 10x learning rate on the head.

# %%
def train_baseline(seed):
    helpers.seed_everything(seed)
    net = models.finetune_net(profile).to(profile.device)
    optimizer = torch.optim.SGD(models.param_groups(net, 0.01, {"head": 10}), lr=0.01, momentum=0.9,
                                weight_decay=1e-3)
    training.train(net, train_iter, valid_iter, optimizer, profile.epochs(4), progress=False)
    return net


baseline = train_baseline(0)
baseline_state = copy.deepcopy(baseline.state_dict())  # to check at the end that nothing changed it
base_row = C.measure(baseline, valid_iter, example_batch, method="baseline")
C.print_table([base_row])

# %%
if profile.fast:
    assert base_row["accuracy"] >= 0.8, base_row

# %% [markdown]
# ## 2. Measuring compression honestly
#
# `C.measure` gives one row: validation **accuracy**, **non-zero** parameters, **sparsity**, **size** (saved state
# dict, zlib-compressed: zeros cost almost nothing) and **latency** (forward pass on `example_batch`, CPU).

# %%
pruned90 = C.prune_global_l1(baseline, 0.9)  # a copy with 90 % of the weights set to zero (section 3)


def numel(net):
    return sum(p.numel() for p in net.parameters())


print(f"numel ratio:          {numel(baseline) / numel(pruned90):.2f}x")
print(f"non-zero parameters:  {C.count_nonzero(baseline):,} -> {C.count_nonzero(pruned90):,}")
print(f"compressed bytes:     {C.serialized_size(baseline):,} -> {C.serialized_size(pruned90):,}")

# %%
assert numel(baseline) == numel(pruned90)  # zeros are still elements

# %% [markdown]
# > **Common mistake.** Compression ratio = `numel(baseline) / numel(compressed)`. Pruning writes zeros but removes
# > no element: the ratio is 1.00x whatever the sparsity. **Fix:** count non-zero weights, bytes on disk, latency.
#
# ### Exercise 1 (2 points): `compression_ratio` (seed exercise 4)
#
# Write `count_nonzero_params(net)`: the number of non-zero parameters **as the model uses them**: a pruned layer
# keeps `weight_orig` (unmasked, listed by `parameters()`) and uses `weight_orig * weight_mask`; count the latter.
# Then `compression_ratio(baseline, compressed)` = non-zero parameters of `baseline` / those of `compressed`. Do not
# use `C.count_nonzero` (the tests compare with it). Float models only.

# %% nbgrader={"grade": false, "grade_id": "ratio_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_nonzero_params(net):
    ### BEGIN SOLUTION
    total = 0
    for m in net.modules():
        for name, p in m.named_parameters(recurse=False):
            if name.endswith("_orig"):  # masked: the layer uses orig * mask
                p = p * getattr(m, name[: -len("_orig")] + "_mask")
            total += int((p != 0).sum())
    return total
    ### END SOLUTION


def compression_ratio(baseline, compressed):
    ### BEGIN SOLUTION
    return count_nonzero_params(baseline) / count_nonzero_params(compressed)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ratio_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
assert count_nonzero_params(tiny) == C.count_nonzero(tiny)
assert abs(compression_ratio(tiny, tiny) - 1.0) < 1e-9
### BEGIN HIDDEN TESTS
half = C.prune_global_l1(tiny, 0.5)
assert count_nonzero_params(half) == C.count_nonzero(half), \
    "on a masked model count weight_orig * weight_mask, not weight_orig"
r = compression_ratio(tiny, half)
assert 1.8 < r < 2.1, f"50% of the weights pruned should give about 2x, got {r:.2f}x (numel does not see zeros)"
assert abs(compression_ratio(tiny, C.make_permanent(half)) - r) < 1e-9, "masked or permanent: same ratio"
r90 = compression_ratio(tiny, C.prune_global_l1(tiny, 0.9))
assert r90 > 5, f"90% pruned: expected a large ratio, got {r90:.2f}x (numel does not see zeros)"
assert C.sparsity(tiny) == 0.0, "the ratio must not change the models"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Pruning
#
# **Global L1 unstructured pruning** ranks the weights of all Conv2d and Linear layers together by absolute value
# and zeroes the smallest fraction `amount`. PyTorch keeps a **mask**: `weight_orig` stays a parameter,
# `weight_mask` is a buffer, and a forward pre-hook computes `weight = weight_orig * weight_mask`.

# %%
def apply_pruning_in_place(model, sparsity):  # the common mistake, below
    targets = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)
    return model


stand_in = copy.deepcopy(baseline)  # plays a workflow's self.model
compressed = apply_pruning_in_place(stand_in, 0.5)
print("same object:", compressed is stand_in, "| 'baseline' sparsity now:", round(C.sparsity(stand_in), 3))

# %% [markdown]
# > **Common mistake.** A workflow class prunes and quantizes `self.model` itself: the baseline is destroyed, each
# > later method compresses an already compressed model. **Fix:** compress a copy. A masked model refuses
# > `copy.deepcopy` (its `weight` is computed); `C.clone(net)` copies both kinds.
#
# ### Exercise 2 (2 points): `prune_copy` (seed exercise 1)
#
# Write `prune_copy(net, amount)`: return a **copy** of `net` with global L1 unstructured pruning of the fraction
# `amount` of all Conv2d and Linear weights, **masks kept** (no `prune.remove`). `net` must not change. Use
# `torch.nn.utils.prune`, not `C.prune_global_l1`.

# %% nbgrader={"grade": false, "grade_id": "prune_copy_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def prune_copy(net, amount):
    ### BEGIN SOLUTION
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "prune_copy_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
tiny = grading.tiny_net()
before = copy.deepcopy(tiny.state_dict())
pruned = prune_copy(tiny, 0.6)
assert pruned is not tiny
assert abs(C.sparsity(pruned) - 0.6) < 0.01, C.sparsity(pruned)
### BEGIN HIDDEN TESTS
assert tiny.state_dict().keys() == before.keys(), "the original got masks: prune a copy"
assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items()), "the original changed: prune a copy"
assert C.sparsity(tiny) == 0.0, "the original was pruned in place"
assert any(k.endswith("weight_mask") for k in pruned.state_dict()), "keep the masks (no prune.remove)"
layers = [(m.weight == 0).float().mean().item() for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
assert max(layers) - min(layers) > 0.05, "prune globally (one threshold for all layers), not layer by layer"
training.train(pruned, grading.tiny_loader(), None, torch.optim.SGD(pruned.parameters(), lr=0.05, momentum=0.9),
               2, progress=False)
assert abs(C.sparsity(pruned) - 0.6) < 0.01, "sparsity lost in fine-tuning: keep the masks"
### END HIDDEN TESTS

# %% [markdown]
# ### Where global pruning takes its zeros
#
# One threshold for all layers does not mean the same sparsity in every layer:

# %%
layer_sizes = {name: m.weight.numel() for name, m in baseline.named_modules() if isinstance(m, C.PRUNABLE)}
plots.plot_layer_sparsity(C.layer_sparsity(pruned90), layer_sizes, overall=C.sparsity(pruned90));

# %% [markdown]
# The large late convolutions hold most of the weights, and most of the small ones: they lose almost all.
#
# ### How much does pruning cost? Several seeds
#
# Accuracy right after pruning, at increasing sparsity. One run says little: the baseline is trained for a few
# epochs on 192 images, so we repeat the sweep on baselines trained from a few seeds (`profile.seeds(3)`: one
# seed when autograding).

# %%
right_after = {a: [] for a in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)}
baselines = [baseline] + [train_baseline(seed) for seed in profile.seeds(3)[1:]]
for net in baselines:
    for a in right_after:
        right_after[a].append(C.accuracy(C.prune_global_l1(net, a), valid_iter))
lost = [b - x for b, x in zip(right_after[0.0], right_after[0.9])]
mean, std = plots.mean_std(lost)
print(f"{len(lost)} seed(s): accuracy lost at 90% sparsity {mean:.2f} ± {std:.2f}")

# %%
if profile.fast:
    assert sum(lost) / len(lost) > 0.1, lost  # 90 % pruning hurts, on average

# %% [markdown]
# ### Fine-tuning after pruning: keep the mask
#
# > **Common mistake.** Prune, call `prune.remove`, then fine-tune. The zeros are now ordinary weights: they get
# > gradients and grow back, and the fine-tuned model is dense again. **Fix:** fine-tune with the masks (the mask
# > multiplies both the value and the gradient of a pruned weight); fold them (`C.make_permanent`) only to export.

# %%
def finetune(net, epochs=2, lr=0.01, loss=None):
    helpers.seed_everything(0)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    training.train(net, train_iter, valid_iter, opt, profile.epochs(epochs), loss=loss, progress=False)
    return net


# %%
masked = finetune(C.prune_global_l1(baseline, 0.9))                     # masks kept
removed = finetune(C.make_permanent(C.prune_global_l1(baseline, 0.9)))  # remove, then train
rows_pruning = [C.measure(m, valid_iter, example_batch, method=name) for name, m in
                [("pruned 90%", pruned90), ("pruned 90% + masked FT", masked), ("pruned 90%, remove, FT", removed)]]
C.print_table([base_row] + rows_pruning)

# %% [markdown]
# The same masked fine-tuning on the pruned baseline of every seed of the sweep:

# %%
after_ft = [rows_pruning[1]["accuracy"]] + [C.accuracy(finetune(C.prune_global_l1(net, 0.9)), valid_iter)
                                            for net in baselines[1:]]
lost_ft = [b - x for b, x in zip(right_after[0.0], after_ft)]
(m0, s0), (m1, s1) = plots.mean_std(lost), plots.mean_std(lost_ft)
print(f"{len(lost_ft)} seed(s): accuracy lost at 90% sparsity {m0:.2f} ± {s0:.2f} right after pruning, "
      f"{m1:.2f} ± {s1:.2f} after 2 epochs of masked fine-tuning")
plots.plot_sweep({"right after pruning": right_after,
                  "+ 2 epochs masked fine-tuning": {0.0: right_after[0.0], 0.9: after_ft}},
                 xlabel="sparsity", ylabel="validation accuracy", chance=0.5);

# %%
assert abs(C.sparsity(masked) - C.sparsity(pruned90)) < 1e-6  # masked fine-tuning: sparsity unchanged
assert C.sparsity(removed) < 0.5                               # after prune.remove: the zeros grew back
if profile.fast:
    assert rows_pruning[1]["accuracy"] > rows_pruning[0]["accuracy"] + 0.1, rows_pruning  # masked FT recovers
    assert sum(lost_ft) < sum(lost), (lost, lost_ft)  # ... on average over the seeds too
assert len(after_ft) == len(right_after[0.9]) == len(baselines)

# %% [markdown]
# Up to about 70 % pruning costs little. At 90 % the error bars are wide: over six seeds we measured a loss of
# 0.29 ± 0.16 (from 0.02 to 0.44; half the baselines fell to 0.50, the same class for every image). Two epochs of
# masked fine-tuning shrink both the loss and its spread (0.04 ± 0.09 over the same six seeds): the pruned weights
# are gone, but what is left can be repaired. Judge a compression method on several runs, never on one.

# %% [markdown]
# ## 4. Quantization
#
# > **Common mistake.** `quantize_dynamic(model, {nn.Linear, nn.Conv2d}, dtype=torch.qint8)`. Dynamic quantization
# > only converts the types of its default mapping (`Linear`, recurrent layers, embeddings): `Conv2d` is skipped
# > **silently**, even when listed. **Fix:** static quantization (below).

# %%
# NBVAL_CHECK_OUTPUT
dynamic = C.quantize_dynamic(baseline)  # the call above, on a copy
print("quantized by quantize_dynamic:", C.quantized_layers(dynamic))

# %% [markdown]
# **Static** quantization also quantizes activations, with scales measured on calibration batches.
# `C.quantize_static` does it on a copy, as torchvision's quantizable ResNet does (fuse conv + BatchNorm + ReLU,
# calibrate, convert), with `torch.ao.quantization` (deprecated in favour of torchao, whose `quantize_` skips
# convolutions too). int8 models run **on the CPU only**.

# %%
# NBVAL_CHECK_OUTPUT
int8 = C.quantize_static(baseline, train_iter, num_batches=4)
layers = C.quantized_layers(int8)
print(len(layers), "quantized layers:", ", ".join(n.removeprefix("net.") for n in layers))

# %%
int8_row = C.measure(int8, valid_iter, example_batch, method="static int8")
C.print_table([base_row, int8_row])

# %%
assert int8_row["size_bytes"] < 0.35 * base_row["size_bytes"]  # 4 bytes -> 1 byte per weight
if profile.fast:
    assert int8_row["accuracy"] >= base_row["accuracy"] - 0.07, (int8_row, base_row)

# %% [markdown]
# Latency, compared in interleaved rounds on one CPU thread (float models copied to the CPU):

# %%
cpu = {"float": C.clone(baseline).cpu(), "pruned 90%": C.make_permanent(pruned90).cpu(), "int8": int8}
latency = C.compare_latency(cpu, example_batch, repeats=10 if profile.fast else 2, rounds=3)
print(f"CPU, 1 thread, batch of {len(example_batch)}:",
      ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency.items()))

# %% [markdown]
# A converted int8 model has no float parameters left: it **cannot be fine-tuned**. Recovery after quantization
# is **quantization-aware training** (QAT): `C.prepare_qat` returns a float copy whose forward pass *simulates*
# int8 rounding, so training adapts the weights to it; `C.convert_qat` then produces the int8 model.

# %%
print("float parameters left in the int8 model:", len(list(int8.parameters())))
qat = finetune(C.prepare_qat(baseline), epochs=1, lr=0.001)
qat_row = C.measure(C.convert_qat(qat), valid_iter, example_batch, method="int8 after QAT")
C.print_table([base_row, int8_row, qat_row])

# %% [markdown]
# ## 5. Distillation
#
# Distillation (Hinton et al., 2015) trains a **student** on a mix of the labels and the **teacher's** softened
# outputs: `alpha * CE(student, y) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`
# (`training.DistillationLoss`). The student can be a smaller network, or the pruned model itself, with the
# uncompressed baseline as teacher: distillation is then a fine-tuning loss after compression.

# %%
teacher = C.clone(baseline).eval()
distilled = finetune(C.prune_global_l1(baseline, 0.9),
                     loss=training.DistillationLoss(teacher, temperature=4.0, alpha=0.5))
kd_row = C.measure(distilled, valid_iter, example_batch, method="pruned 90% + distillation FT")
C.print_table([base_row, rows_pruning[1], kd_row])

# %%
assert abs(kd_row["sparsity"] - C.sparsity(pruned90)) < 1e-6

# %% [markdown]
# > **Common mistake.** Calling a distillation step that was never written, or distilling the compressed model
# > from a copy of *itself*: its own outputs teach it nothing new. **Fix:** the teacher is the uncompressed
# > baseline (a copy, in eval mode).
#
# ### Exercise 3 (3 points): pruning, distillation and quantization in sequence (seed exercise 1)
#
# Write `compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
# calibration_batches=2)`, returning an int8 model, without changing `baseline`:
#
# 1. prune a copy (your `prune_copy`);
# 2. fine-tune it for `epochs` epochs, masks kept, with SGD (`lr`, momentum 0.9) and `training.DistillationLoss`
#    whose teacher is a copy of the **uncompressed** `baseline` (`training.train(..., progress=False)`, validation
#    iterator `None`);
# 3. quantize with `C.quantize_static(..., num_batches=calibration_batches)`.

# %% nbgrader={"grade": false, "grade_id": "sequence_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
    ### BEGIN SOLUTION
    student = prune_copy(baseline, sparsity)
    loss = training.DistillationLoss(copy.deepcopy(baseline), temperature, alpha)
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)
    return C.quantize_static(student, train_iter, num_batches=calibration_batches)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "sequence_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
tiny, loader = grading.tiny_net(), grading.tiny_loader()
before = copy.deepcopy(tiny.state_dict())
out = compress_in_sequence(tiny, loader, 0.7, epochs=2, lr=0.05)
assert any("conv" in n for n in C.quantized_layers(out)), "the result should be a static int8 model"
### BEGIN HIDDEN TESTS
assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items()) and C.sparsity(tiny) == 0.0, \
    "the baseline changed: work on copies"
assert "net.fc" in C.quantized_layers(out) and len(C.quantized_layers(out)) >= 9, "quantize every layer (static)"
assert C.sparsity(out) >= 0.68, f"sparsity {C.sparsity(out):.2f} after fine-tuning: keep the masks until the end"
assert out(next(iter(loader))[0]).shape == (8, 2)
teachers = []
_forward = training.DistillationLoss.forward
def _spy(self, *args):
    if not teachers:
        teachers.append(C.clone(self.teacher))
    return _forward(self, *args)
training.DistillationLoss.forward = _spy
try:
    compress_in_sequence(tiny, loader, 0.7, epochs=1, lr=0.05)
finally:
    training.DistillationLoss.forward = _forward
assert teachers, "fine-tune with training.DistillationLoss as the loss of training.train"
t_state = teachers[0].state_dict()
assert not C.is_pruned(teachers[0]) and C.sparsity(teachers[0]) == 0.0 and t_state.keys() == before.keys() \
    and all(torch.equal(before[k], t_state[k].cpu()) for k in before), \
    "the teacher must be a copy of the uncompressed baseline, not of the pruned student"
### END HIDDEN TESTS

# %%
sequence_int8 = compress_in_sequence(baseline, train_iter, 0.9, epochs=profile.epochs(2), lr=0.01)
seq_row = C.measure(sequence_int8, valid_iter, example_batch, method="prune 90% > distil > int8")
C.print_table([base_row, seq_row])

# %% [markdown] nbgrader={"grade": false, "grade_id": "sequence_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 4 (2 points, written; seed exercise 1)
#
# Why this order: pruning, then fine-tuning (with distillation), then quantization? What would go wrong if you
# quantized first and then pruned or fine-tuned, and what if you pruned without any fine-tuning? Use the numbers of
# this notebook.

# %% [markdown] nbgrader={"grade": true, "grade_id": "sequence_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# Pruning first: it ranks float weights, and the pruned float model can be fine-tuned (masks kept), which brings
# the 90 % pruned model from the sweep's accuracy (down to chance for some seeds) back near the baseline.
# Quantization last: an int8 model has no float parameters to prune or train (QAT must happen before conversion),
# and its scales should be calibrated on the final weights; zeros stay int8 zeros, so sparsity survives. Without
# fine-tuning, the pruning loss stays and quantization adds its own error on top.
#

# %% [markdown]
# ## 6. A configured workflow (YAML)
#
# > **Common mistake.** Reading a YAML config without validating it: a typo (`method: prunning`) or a sparsity of
# > `90` crashes deep inside the run, or runs something else. **Fix:** validate, saying where and what to fix.
#
# `C.load_config` does that. An entry is one step (`method`, `params`, `finetuning`) or a named chain of `steps`.
# `finetuning` after quantization means QAT; for distillation it trains the student (a smaller `student_widths`
# network, or the previous step's model).

# %%
CONFIG = '''
seed: 0
compression:
  - method: pruning
    params: {sparsity: 0.9}
    finetuning: {epochs: 2, lr: 0.01}
  - method: quantization            # static int8; with finetuning: quantization-aware training
    params: {calibration_batches: 4}
    finetuning: {epochs: 1, lr: 0.001}
  - name: small student (distillation)
    method: distillation
    params: {temperature: 4.0, alpha: 0.5, student_widths: [16, 16, 32, 64]}
    finetuning: {epochs: 6, lr: 0.1}
'''
config = C.cap_epochs(C.load_config(CONFIG), profile)  # profile.epochs(n) for every fine-tuning
print([e.name for e in config.experiments])

# %%
# NBVAL_CHECK_OUTPUT
for bad in (CONFIG.replace("sparsity: 0.9", "sparsity: 90"), CONFIG.replace("method: pruning", "method: prunning"),
            CONFIG.replace("epochs: 6", "epochs: six")):
    try:
        C.load_config(bad)
    except C.ConfigError as err:
        print("ConfigError:", err)

# %% [markdown]
# ### Exercise 5 (2 points): validate a pruning entry (seed exercise 2)
#
# Write `check_pruning_entry(entry)` **without** `C.load_config`: `entry` is one parsed YAML entry (a dict). Raise
# `ValueError` with a message that **names the offending key** (`"method"`, `"sparsity"`, `"epochs"` or `"lr"`)
# when:
#
# - `entry["method"]` is missing or is not `"pruning"`;
# - `entry["params"]["sparsity"]` is missing, not a number (`bool` and strings are not numbers), or not strictly
#   between 0 and 1;
# - `entry.get("finetuning", {})` has an `epochs` that is not an integer >= 0, or an `lr` that is not a number > 0.
#
# Return `None` when the entry is valid.

# %% nbgrader={"grade": false, "grade_id": "config_check_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def check_pruning_entry(entry):
    ### BEGIN SOLUTION
    def is_number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if not isinstance(entry, dict) or entry.get("method") != "pruning":
        raise ValueError(f"method: expected 'pruning', got {entry.get('method') if isinstance(entry, dict) else entry!r}")
    sparsity = (entry.get("params") or {}).get("sparsity")
    if sparsity is None:
        raise ValueError("params.sparsity is missing (fraction of weights to remove, e.g. 0.5)")
    if not is_number(sparsity) or not 0 < sparsity < 1:
        raise ValueError(f"params.sparsity must be a number in (0, 1), got {sparsity!r}")
    ft = entry.get("finetuning") or {}
    epochs, lr = ft.get("epochs", 0), ft.get("lr", 0.01)
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"finetuning.epochs must be an integer >= 0, got {epochs!r}")
    if not is_number(lr) or lr <= 0:
        raise ValueError(f"finetuning.lr must be a number > 0, got {lr!r}")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "config_check_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
check_pruning_entry({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 2, "lr": 0.01}})
try:
    check_pruning_entry({"method": "pruning", "params": {"sparsity": 1.5}})
    raise AssertionError("sparsity 1.5 should be rejected")
except ValueError as err:
    assert "sparsity" in str(err), str(err)
### BEGIN HIDDEN TESTS
def rejects(entry, word):
    try:
        check_pruning_entry(entry)
    except ValueError as err:
        assert word in str(err), f"the message should name {word!r}: {err}"
        return
    raise AssertionError(f"{entry} should be rejected ({word})")

check_pruning_entry({"method": "pruning", "params": {"sparsity": 0.9}})
for s in (0, 1, 1.0, 90, -0.1, "0.5", True, None):
    rejects({"method": "pruning", "params": {"sparsity": s}}, "sparsity")
rejects({"method": "pruning", "params": {}}, "sparsity")
rejects({"method": "pruning"}, "sparsity")
rejects({"params": {"sparsity": 0.5}}, "method")
rejects({"method": "prunning", "params": {"sparsity": 0.5}}, "method")
rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 1.5}}, "epochs")
rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": -1}}, "epochs")
rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 1, "lr": 0}}, "lr")
rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 1, "lr": "1e-3"}}, "lr")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Logging
#
# A long workflow should **log** (timestamps, levels, a file that outlives the notebook), not print.
# `helpers.compression` logs on the logger `"helpers.compression"`.
#
# ### Exercise 6 (2 points): `setup_logging` (seed exercise 3)
#
# Write `setup_logging(path, level=logging.INFO)`: configure the logger `"helpers.compression"` to write to the file
# `path` with the format `"%(asctime)s %(levelname)s %(name)s: %(message)s"` at `level`, and return the logger.
# Calling it again (a re-run cell, another path) must **not** duplicate lines: remove the file handlers a previous
# call added (otherwise every re-run adds a handler, and every line appears twice, three times, ...).

# %% nbgrader={"grade": false, "grade_id": "logging_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def setup_logging(path, level=logging.INFO):
    ### BEGIN SOLUTION
    logger = logging.getLogger("helpers.compression")
    for h in list(logger.handlers):
        if isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
            h.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "logging_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
import re
import tempfile
from pathlib import Path

log_path = Path(tempfile.mkdtemp()) / "workflow.log"
logger = setup_logging(log_path)
assert logger.name == "helpers.compression"
tiny_config = C.load_config("compression:\n  - method: pruning\n    params: {sparsity: 0.5}")
C.run_workflow(tiny_config, grading.tiny_net(), grading.tiny_loader(), grading.tiny_loader())
text = log_path.read_text()
assert "baseline: accuracy" in text, text
### BEGIN HIDDEN TESTS
lines = [l for l in text.splitlines() if "baseline: accuracy" in l]
assert len(lines) == 1, f"each message should be written once, got {len(lines)}"
assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO helpers.compression: ", lines[0]), lines[0]
log2 = log_path.with_name("again.log")
setup_logging(log2)
C.run_workflow(tiny_config, grading.tiny_net(), grading.tiny_loader(), grading.tiny_loader())
again = [l for l in log2.read_text().splitlines() if "baseline: accuracy" in l]
assert len(again) == 1, f"after a second setup_logging, lines are written {len(again)} times"
assert log_path.read_text() == text, "the first file should no longer receive messages"
setup_logging(log2, level=logging.WARNING)
C.run_workflow(tiny_config, grading.tiny_net(), grading.tiny_loader(), grading.tiny_loader())
assert len([l for l in log2.read_text().splitlines() if "baseline: accuracy" in l]) == 1, "respect level"
### END HIDDEN TESTS

# %% [markdown]
# `run_workflow` runs each entry on a **copy** of the baseline, measures it on the validation set, and checks that
# the baseline is unchanged.

# %%
log_file = profile.data_dir / "logs" / "ch4_workflow.log"
log_file.parent.mkdir(parents=True, exist_ok=True)
setup_logging(log_file)
rows = C.run_workflow(config, baseline, train_iter, valid_iter, profile, example_batch)
C.print_table(rows)
print("".join(log_file.read_text().splitlines(keepends=True)[-3:]))

# %%
assert all(torch.equal(baseline_state[k].cpu(), v.cpu()) for k, v in baseline.state_dict().items())  # intact
assert abs(rows[1]["sparsity"] - 0.9) < 0.01  # after fine-tuning

# %% [markdown]
# ## 8. Combinations, and a choice
#
# ### Exercise 7 (3 points): a configuration for every combination (seed exercise 4)
#
# Write `combination_config(sparsity, epochs, lr)`: return a config **dict** (as `yaml.safe_load` gives) whose
# `compression` list has one entry per valid combination of pruning (P), distillation (D) and quantization (Q),
# steps in the order P, D, Q: exactly **P, Q, P+D, P+Q, P+D+Q** (D alone has no student; Q must be last). Each
# entry is `{"name": ..., "steps": [...]}` with unique names. Pruning uses `sparsity` and fine-tunes for `epochs`
# at `lr`, unless distillation follows it: distillation then fine-tunes for `epochs` at `lr` (student = the pruned
# model). Quantization is static int8 without fine-tuning. `C.load_config` must accept the result. For example,
# with `sparsity=0.5, epochs=1, lr=0.1`, the entry P+Q in YAML and as the dict your function returns:
#
# ```yaml
# - name: P+Q
#   steps:
#     - method: pruning
#       params: {sparsity: 0.5}
#       finetuning: {epochs: 1, lr: 0.1}
#     - method: quantization
# ```
#
# `{"name": "P+Q", "steps": [{"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 1,
# "lr": 0.1}}, {"method": "quantization"}]}`

# %% nbgrader={"grade": false, "grade_id": "combos_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def combination_config(sparsity, epochs, lr):
    ### BEGIN SOLUTION
    ft = {"epochs": epochs, "lr": lr}
    def pruning(then_distil):
        return {"method": "pruning", "params": {"sparsity": sparsity}, **({} if then_distil else {"finetuning": ft})}
    distil = {"method": "distillation", "params": {"temperature": 4.0, "alpha": 0.5}, "finetuning": ft}
    quant = {"method": "quantization"}
    combos = {"P": [pruning(False)], "Q": [quant], "P+D": [pruning(True), distil],
              "P+Q": [pruning(False), quant], "P+D+Q": [pruning(True), distil, quant]}
    return {"seed": 0, "compression": [{"name": name, "steps": steps} for name, steps in combos.items()]}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "combos_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
combos = C.load_config(combination_config(0.9, 2, 0.01))
methods = sorted(tuple(s.method for s in e.steps) for e in combos.experiments)
print(methods)
assert len(methods) == 5
### BEGIN HIDDEN TESTS
assert set(methods) == {("pruning",), ("quantization",), ("pruning", "distillation"), ("pruning", "quantization"),
                        ("pruning", "distillation", "quantization")}, methods
assert len({e.name for e in combos.experiments}) == 5
for e in combos.experiments:
    for i, s in enumerate(e.steps):
        if s.method == "pruning":
            assert s.sparsity == 0.9
            follows = e.steps[i + 1].method if i + 1 < len(e.steps) else None
            assert s.finetuning.epochs == (0 if follows == "distillation" else 2), (e.name, s)
        if s.method == "distillation":
            assert s.finetuning.epochs == 2 and s.finetuning.lr == 0.01 and s.student_widths is None
        if s.method == "quantization":
            assert s.finetuning.epochs == 0
other = C.load_config(combination_config(0.5, 1, 0.1))
assert {s.sparsity for e in other.experiments for s in e.steps if s.method == "pruning"} == {0.5}
### END HIDDEN TESTS

# %%
combo_models = {}
combo_rows = C.run_workflow(C.load_config(combination_config(0.9, profile.epochs(2), 0.01)), baseline, train_iter,
                            valid_iter, profile, example_batch, keep_models=combo_models)
all_rows = combo_rows + rows[1:]
for r in all_rows:
    r["size_kb"] = r["size_bytes"] / 1024
C.print_table(all_rows)
plots.plot_tradeoff(all_rows, x="size_kb", logx=True);

# %% [markdown]
# A deployment rule, applied to the **validation** rows: the smallest combination whose accuracy is within 0.05 of
# the baseline's. Then, once, the **test** set for the baseline and the model we keep:

# %%
candidates = [r for r in combo_rows[1:] if r["accuracy"] >= base_row["accuracy"] - 0.05] or combo_rows[1:]
chosen = min(candidates, key=lambda r: r["size_bytes"])["method"]
for name, net in [("baseline", baseline), (chosen, combo_models[chosen])]:
    print(f"{name}: test accuracy {training.evaluate(net, test_iter)[1]:.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "combos_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 8 (3 points, written; seed exercise 4)
#
# From the table, the plot and the latency comparison of section 4: which combination would you deploy (a) to
# minimise size on disk, (b) to minimise CPU latency, (c) for the best accuracy per byte? Why does pruning reduce the
# compressed size but not the latency here, and what kind of pruning or runtime would make it faster? Why are these
# choices made on the validation set, and the test set used only once?

# %% [markdown] nbgrader={"grade": true, "grade_id": "combos_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# (a) P+D+Q (or P+Q): 90 % zeros compress well and int8 divides the rest by about four (71 KB against 1,127 KB
# here). (b) An int8 model: in section 4's one-thread comparison (mini model, batch of 8) int8 took about 0.65 of
# the float time (measured here under load: 10.7 ms against 16.2 ms; 1.5 against 2.7 ms of CPU time on a quiet
# core), and the 90 % pruned float model as long as the baseline (16.1 ms). The table's `ms` column is too noisy
# to decide. (c) Q keeps the baseline's validation accuracy at a quarter of its bytes; P+D+Q loses about 0.08 for a
# sixteenth. Unstructured pruning leaves the tensors dense (zeros are still multiplied): only the zlib-compressed
# file shrinks. Speed needs structured pruning (whole channels removed) or sparse kernels (2:4 sparsity on recent
# GPUs). Choices tuned on the test set would make its accuracy an optimistic estimate; used once, it is not.
#

# %% [markdown]
# ## Full profile
#
# `COURSE_PROFILE=full` runs the same chapter on the real ResNet-18 (`weights=ResNet18_Weights.IMAGENET1K_V1`)
# fine-tuned on the d2l hotdog data; training runs on `profile.device` (a GPU if there is one), int8 models and
# latency on the CPU. `quantize_static` handles torchvision's `resnet18` unchanged: its 20 convolutions and `fc`.

# %%
# NBVAL_CHECK_OUTPUT
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2).eval()
full_int8 = C.quantize_static(full_net, [(torch.randn(2, 3, 64, 64), None)], num_batches=1)
print(len(C.quantized_layers(full_int8)), "quantized layers in resnet18")

# %%
mb = lambda n: f"{n / 2**20:.1f} MiB"
print("state dict:", mb(C.serialized_size(full_net, compress=False)), "->", mb(C.serialized_size(full_int8, compress=False)))

# %% [markdown]
# Measured on an x86 CPU for the 1,000-class ResNet-18 at 224 x 224: static int8 takes the state dict from
# 46.8 MB to 11.8 MB, and a batch of 8 from about 95 ms to 20 ms.
