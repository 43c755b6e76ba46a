# %% [markdown]
# # Chapter 4: A compression workflow
#
# A **compression workflow** makes a fine-tuned model smaller or faster while keeping its accuracy: keep a
# **baseline** intact; **compress** copies of it (pruning, int8 quantization, distillation); **fine-tune** them;
# **measure** accuracy, size, sparsity and latency; **choose** on the validation set; report the **test** set once
# for the model kept. The chapter follows the French course section *Typical compression workflow* (section
# 25.1), whose code makes a classic mistake at almost every step: a *Common mistake* box shows each one where it
# happens. The tools live in `helpers.compression` (`C`).

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
# The baseline is the chapter-2 recipe: pretrained network, new 2-class head, 10x learning rate on the head, SGD
# with momentum and weight decay.

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
# course check (not part of the lesson): the mini world's baseline learns the task
if profile.checks:
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
# course check: zeros are still elements
assert numel(baseline) == numel(pruned90)

# %% [markdown]
# > **Common mistake.** Compression ratio = `numel(baseline) / numel(compressed)` (the comparison table of
# > *Typical compression workflow* does this). Pruning writes zeros but removes no element: the ratio is 1.00x
# > whatever the sparsity. **Fix:** count non-zero weights, bytes on disk, latency.
#
# ### Exercise 1 (2 points): `compression_ratio`
#
# Write `count_nonzero_params(net)`: the number of non-zero parameters **as the model uses them**. A pruned layer
# keeps `weight_orig` (unmasked, listed by `parameters()`) and a buffer `weight_mask`, and uses
# `weight_orig * weight_mask`: count the latter (the same for any `<name>_orig`, e.g. a pruned `bias`). Every
# parameter counts (convolutions, linear layers, BatchNorm, biases); buffers do not. Then
# `compression_ratio(baseline, compressed)` = non-zero parameters of `baseline` / those of `compressed`. Neither
# function may change the models. Write the counting yourself: the tests block `C.count_nonzero` (they compare
# with it). Float models only.

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
half = C.prune_global_l1(tiny, 0.5)  # masked: weight_orig is still dense, weight_mask holds the zeros
assert count_nonzero_params(tiny) == C.count_nonzero(tiny), \
    f"unpruned tiny net: expected {C.count_nonzero(tiny)} non-zero parameters, got {count_nonzero_params(tiny)}"
assert count_nonzero_params(half) == C.count_nonzero(half), \
    (f"pruned (masked) tiny net: expected {C.count_nonzero(half)}, got {count_nonzero_params(half)}: count "
     "weight_orig * weight_mask, not weight_orig")
ratio = compression_ratio(tiny, half)
assert abs(ratio - C.count_nonzero(tiny) / C.count_nonzero(half)) < 1e-9, \
    f"compression_ratio(tiny, half): expected {C.count_nonzero(tiny) / C.count_nonzero(half):.4f}, got {ratio}"
### BEGIN HIDDEN TESTS
def _ratio_cases():
    wide = models.MiniResNet(3, widths=(8, 8, 16, 16))
    p70 = C.prune_global_l1(wide, 0.7)
    bias = C.clone(p70)
    prune.l1_unstructured(bias.fc, "bias", amount=2)  # a pruned bias: bias_orig * bias_mask
    return [(tiny, half), (wide, p70), (wide, bias), (wide, C.make_permanent(p70)), (tiny, tiny)]


cases = _ratio_cases()
expected = [(C.count_nonzero(b), C.count_nonzero(c)) for b, c in cases]
states = [(copy.deepcopy(b.state_dict()), copy.deepcopy(c.state_dict())) for b, c in cases]
with grading.blocked([C.count_nonzero], "C.count_nonzero is blocked in this test (by any name): count the non-zero "
                     "parameters yourself (parameters, masks, tensor operations)"):
    for (b, c), (nb, nc), (sb, sc) in zip(cases, expected, states):
        assert count_nonzero_params(c) == nc, \
            f"expected {nc} non-zero parameters, got {count_nonzero_params(c)} (masks, pruned biases, all layers)"
        r = compression_ratio(b, c)
        assert abs(r - nb / nc) < 1e-9, \
            f"expected a ratio of {nb / nc:.4f} (non-zero parameters of baseline / compressed), got {r}"
        assert all(torch.equal(sb[k], v) for k, v in b.state_dict().items()) and b.state_dict().keys() == sb.keys() \
            and c.state_dict().keys() == sc.keys() and all(torch.equal(sc[k], v) for k, v in c.state_dict().items()), \
            "counting must not change the models (no prune.remove, no in-place edits)"
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Pruning
#
# **Global L1 unstructured pruning** ranks the weights of all Conv2d and Linear layers together by absolute value
# and zeroes the smallest fraction `amount`. PyTorch keeps a **mask**: `weight_orig` stays a parameter,
# `weight_mask` is a buffer, and a forward pre-hook computes `weight = weight_orig * weight_mask`.
#
# The pruning step of *Typical compression workflow* is written as a method of a workflow class, on `self.model`:

# %%
def apply_pruning_in_place(model, sparsity):  # the common mistake, below
    targets = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in targets:
        prune.remove(module, name)
    return model


stand_in = copy.deepcopy(baseline)  # plays the workflow's self.model
compressed = apply_pruning_in_place(stand_in, 0.5)
print("same object:", compressed is stand_in, "| 'baseline' sparsity now:", round(C.sparsity(stand_in), 3))

# %% [markdown]
# > **Common mistake.** A workflow class prunes and quantizes `self.model` itself: the baseline is destroyed, each
# > later method compresses an already compressed model. And it calls `prune.remove` at once, so fine-tuning
# > lets the zeros grow back (below). **Fix:** compress a copy and keep the masks. A masked model refuses
# > `copy.deepcopy` (its `weight` is computed); `C.clone(net)` copies both kinds.
#
# ### Exercise 2 (2 points): `prune_copy`
#
# Write `prune_copy(net, amount)`: return a **copy** of `net` with global L1 unstructured pruning of the fraction
# `amount` of the weights of all Conv2d and Linear layers (one threshold for all of them; not the biases, not
# BatchNorm), **masks kept** (no `prune.remove`). `net` must not change. Use `torch.nn.utils.prune` (the tests
# block `C.prune_global_l1`).

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
assert pruned is not tiny, "return a copy, not net itself"
assert tiny.state_dict().keys() == before.keys() and all(torch.equal(before[k], v) for k, v in tiny.state_dict().items()), \
    "the original changed (it got masks or zeros): prune a copy (copy.deepcopy) and leave net alone"
assert any(k.endswith("weight_mask") for k in pruned.state_dict()), \
    "the copy has no weight_mask: keep the masks (no prune.remove), or fine-tuning regrows the zeros"
assert abs(C.sparsity(pruned) - 0.6) < 0.01, f"expected 60 % of the weights at zero, got {C.sparsity(pruned):.1%}"
### BEGIN HIDDEN TESTS
_no_helper = grading.blocked([C.prune_global_l1], "C.prune_global_l1 is blocked in this test (by any name): prune "
                            "with torch.nn.utils.prune yourself")
wide = models.MiniResNet(3, widths=(8, 8, 16, 16))
seq = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
with _no_helper:
    for net, amount in [(tiny, 0.6), (wide, 0.3), (seq, 0.5)]:
        out = prune_copy(net, amount)
        assert abs(C.sparsity(out) - amount) < 0.01, f"amount={amount}: got a sparsity of {C.sparsity(out):.3f}"
        layers = [m for m in out.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert all(hasattr(m, "weight_mask") for m in layers), "prune the weights of every Conv2d and Linear (fc too)"
        assert not any(hasattr(m, "weight_mask") for m in out.modules() if isinstance(m, nn.BatchNorm2d)), \
            "prune Conv2d and Linear weights only, not BatchNorm"
        assert not any(k.endswith("bias_mask") for k in out.state_dict()), "prune the weights, not the biases"
        kept = torch.cat([m.weight_orig[m.weight_mask.bool()].abs().flatten() for m in layers])
        dropped = torch.cat([m.weight_orig[~m.weight_mask.bool()].abs().flatten() for m in layers])
        assert dropped.max() <= kept.min() + 1e-7, \
            "L1 pruning zeroes the weights of smallest absolute value (over all layers together), not random ones"
    fractions = [(m.weight == 0).float().mean().item() for m in pruned.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert max(fractions) - min(fractions) > 0.05, "prune globally (one threshold for all layers), not layer by layer"
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
# epochs on a small data set, so we repeat the sweep on baselines trained from a few seeds (`profile.seeds(3)`:
# one seed when autograding). The seeds are paired: every sparsity prunes the same baselines.

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
# course check: on the mini world, 90 % pruning hurts on average
if profile.checks:
    assert sum(lost) / len(lost) > 0.05, lost

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
# course check: masked fine-tuning keeps the sparsity, prune.remove loses it; on the mini world FT recovers
assert abs(C.sparsity(masked) - C.sparsity(pruned90)) < 1e-6
assert C.sparsity(removed) < 0.5
if profile.checks:
    assert rows_pruning[1]["accuracy"] > rows_pruning[0]["accuracy"], rows_pruning
    assert sum(lost_ft) < sum(lost), (lost, lost_ft)
assert len(after_ft) == len(right_after[0.9]) == len(baselines)

# %% [markdown]
# Read the plot and the line above (mean ± spread over the seeds of your run). Moderate sparsity costs little; the
# cost grows quickly towards 90-95 %, and two epochs of masked fine-tuning win most of it back: the pruned weights
# are gone, but what is left can be repaired. Compare the difference of the two means with their spreads: when it
# is larger than both, the effect is beyond the seed-to-seed noise; when it is not, one run could have shown
# either. Judge a compression method on several runs, never on one.
#
# ### Structured pruning: fewer channels, less work
#
# Unstructured pruning leaves every tensor its shape: the zeros are still multiplied, so a 90 % sparse model is
# no faster on ordinary hardware (only sparse kernels, such as 2:4 sparsity on recent GPUs, skip zeros).
# **Structured** pruning removes whole channels: a filter of a convolution disappears, with its BatchNorm channel
# and the matching input slice of the next convolution, and what is left are smaller *dense* layers.
# `C.prune_channels(net, amount)` does it inside every residual block (Li et al., 2017, *Pruning Filters for
# Efficient ConvNets*): it keeps the `1 - amount` inner channels (outputs of `conv1`, inputs of `conv2`) whose
# `conv1` filters have the largest L1 norm. A block's output keeps its width, because it is added to the
# residual. `C.multiply_adds` counts the work of one forward pass; latency is measured in interleaved rounds on one
# CPU thread (float models copied to the CPU), on a batch of 32 images.

# %%
speed_batch = (example_batch.repeat(4, 1, 1, 1) if profile.fast else example_batch)
slim_cut = C.prune_channels(baseline, 0.5)
slim = finetune(C.clone(slim_cut))  # no masks to keep: the channels are gone
on_cpu = {"float": C.clone(baseline).cpu(), "pruned 90%": C.make_permanent(pruned90).cpu(),
          "channels -50%": C.clone(slim).cpu()}
work = {name: C.multiply_adds(net, speed_batch) for name, net in on_cpu.items()}
speed = C.compare_latency(on_cpu, speed_batch, repeats=10 if profile.fast else 2, rounds=5)
for name in on_cpu:
    print(f"{name:14s} {work[name] / 1e6:8.1f} M multiply-adds  {speed[name]:7.2f} ms  "
          f"speed-up x{speed['float'] / speed[name]:.2f}")
slim_row = C.measure(slim, valid_iter, example_batch, method="channels -50% + FT")
C.print_table([base_row, rows_pruning[0], rows_pruning[1],
               C.measure(slim_cut, valid_iter, example_batch, method="channels -50%"), slim_row])

# %%
# course check: unstructured zeros are still multiplied; removed channels are not
assert work["pruned 90%"] == work["float"] and work["channels -50%"] < 0.7 * work["float"]

# %% [markdown]
# Compare the lines of your run: the 90 % pruned model does exactly the baseline's multiply-adds, so its latency
# can only be the baseline's within the noise; the channel-pruned model does fewer, and its speed-up is smaller
# than the ratio of multiply-adds (a small model on a CPU spends part of its time outside the arithmetic: memory,
# BatchNorm, ReLU, Python). Its table rows show the price: it removed far fewer weights than 90 % unstructured
# pruning, yet right after pruning it is much worse, and it needs its fine-tuning: whole channels carry more than
# scattered small weights.

# %% [markdown]
# ## 4. Quantization
#
# > **Common mistake.** `quantize_dynamic(model, {nn.Linear, nn.Conv2d}, dtype=torch.qint8)` (the quantization step
# > of *Typical compression workflow*). Dynamic quantization only converts the types of its default mapping
# > (`Linear`, recurrent layers, embeddings): `Conv2d` is skipped **silently**, even when listed. **Fix:** static
# > quantization (below).

# %%
dynamic = C.quantize_dynamic(baseline)  # the call above, on a copy
print("quantized by quantize_dynamic:", C.quantized_layers(dynamic))

# %%
# course check: only fc was converted
assert list(C.quantized_layers(dynamic)) == ["fc"], C.quantized_layers(dynamic)

# %% [markdown]
# ### What int8 stores: a scale and a zero point
#
# An int8 tensor holds integers `q` in [-128, 127] and, per tensor (or per channel), a **scale** `s` (a float)
# and a **zero point** `z` (an integer). The value an integer stands for, and the integer a value becomes, are
#
# $$\hat x = s\,(q - z), \qquad q = \mathrm{clamp}\big(\mathrm{round}(x / s) + z,\; -128,\; 127\big).$$
#
# **Affine** (asymmetric) quantization maps the range `[lo, hi]` of the values onto the 256 integers:
# `lo = min(x.min(), 0)`, `hi = max(x.max(), 0)`, `s = (hi - lo) / 255`, `z = -128 - round(lo / s)`. The range
# always contains 0, so that 0 is represented **exactly** (by `q = z`): zero padding, ReLU outputs and pruned
# weights stay exact zeros. Inside the range, rounding moves a value by at most `s / 2`.
#
# **Per tensor**, one `(s, z)` serves the whole tensor; **per channel**, each output channel `w[c]` of a weight
# gets its own. A channel whose weights are 100 times smaller than the widest channel's would, per tensor, fall
# on two or three of the 256 levels; per channel, it uses all of them. Activations are quantized per tensor, with
# ranges measured on calibration batches; weights per channel (the default of PyTorch's `x86` engine;
# `qnnpack`, on ARM, uses one scale per weight tensor). For weights, PyTorch also makes the range symmetric,
# `[-max|w|, max|w|]`, so that the zero point is 0 and the int8 product needs no correction term.
#
# > **Common mistake.** `(x / s).round().add(z).to(torch.int8)` without clamping: a value beyond the range does
# > not saturate at 127, the cast **wraps around** (200 becomes -56), silently. **Fix:** clamp to [-128, 127],
# > then cast.
#
# ### Exercise 3 (4 points): quantize and dequantize
#
# Write the arithmetic with tensor operations (the tests block `torch.quantize_per_tensor`,
# `torch.quantize_per_channel`, the fake-quantize functions, the observers' `calculate_qparams` and `C`'s own
# versions):
#
# - `affine_qparams(x)`: `(scale, zero_point)` of the whole tensor, a Python `float` and `int`, by the formulas
#   above; a tensor of zeros must not give a zero scale (use at least `torch.finfo(torch.float32).eps`);
# - `quantize(x, scale, zero_point)`: `q` as a `torch.int8` tensor, clamped before the cast;
# - `dequantize(q, scale, zero_point)`: the `float32` values `s (q - z)`;
# - `per_channel_qparams(w)`: one scale and zero point per output channel `w[c]` (dimension 0), as tensors of
#   shape `(C, 1, ..., 1)` (as many dimensions as `w`), so that `quantize` and `dequantize` broadcast them against
#   `w` unchanged.
#
# None of them may change its input.

# %% nbgrader={"grade": false, "grade_id": "int8_impl", "locked": false, "schema_version": 3, "solution": true, "task": false}
def affine_qparams(x):
    ### BEGIN SOLUTION
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max((hi - lo) / 255, torch.finfo(torch.float32).eps)
    zero_point = int(min(max(-128 - round(lo / scale), -128), 127))
    return scale, zero_point
    ### END SOLUTION


def quantize(x, scale, zero_point):
    ### BEGIN SOLUTION
    return torch.clamp(torch.round(x / scale) + zero_point, -128, 127).to(torch.int8)
    ### END SOLUTION


def dequantize(q, scale, zero_point):
    ### BEGIN SOLUTION
    return (q.float() - zero_point) * scale
    ### END SOLUTION


def per_channel_qparams(w):
    ### BEGIN SOLUTION
    flat = w.reshape(w.shape[0], -1)
    lo = flat.min(dim=1).values.clamp(max=0)
    hi = flat.max(dim=1).values.clamp(min=0)
    scale = ((hi - lo) / 255).clamp(min=torch.finfo(torch.float32).eps)
    zero_point = (-128 - torch.round(lo / scale)).clamp(-128, 127).long()
    shape = (-1,) + (1,) * (w.dim() - 1)
    return scale.reshape(shape), zero_point.reshape(shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "int8_tensor_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
### BEGIN HIDDEN TESTS
import contextlib
from unittest import mock

import importlib

_cq = importlib.import_module("helpers.compression.quantization")


@contextlib.contextmanager
def _no_int8_helpers():
    def block(name):
        return mock.Mock(side_effect=AssertionError(f"{name} is blocked in this test: write the int8 arithmetic "
                                                    "with tensor operations (round, clamp, min, max)"))
    with contextlib.ExitStack() as stack:
        for owner, names in [(torch, ["quantize_per_tensor", "quantize_per_channel", "fake_quantize_per_tensor_affine",
                                      "fake_quantize_per_channel_affine"]),
                             (C, ["affine_qparams", "per_channel_qparams", "quantize_affine", "dequantize_affine"]),
                             (_cq, ["affine_qparams", "per_channel_qparams", "quantize_affine", "dequantize_affine"])]:
            for name in names:
                stack.enter_context(mock.patch.object(owner, name, block(name)))
        stack.enter_context(mock.patch.object(torch.ao.quantization.observer.UniformQuantizationObserverBase,
                                              "_calculate_qparams", block("the observers' calculate_qparams")))
        yield
### END HIDDEN TESTS
x = torch.tensor([-1.0, 0.0, 0.6, 2.0])
scale, zero_point = affine_qparams(x)
assert abs(scale - 3 / 255) < 1e-8 and zero_point == -43, \
    f"range [-1, 2]: expected scale 3/255 = {3 / 255:.6f} and zero point -43, got {scale}, {zero_point}"
q = quantize(x, scale, zero_point)
assert q.dtype == torch.int8, f"quantize should return a torch.int8 tensor, got {q.dtype}"
assert q.tolist() == [-128, -43, 8, 127], f"quantize([-1, 0, 0.6, 2]): expected [-128, -43, 8, 127], got {q.tolist()}"
back = dequantize(q, scale, zero_point)
assert back.dtype == torch.float32 and back[1].item() == 0.0, f"dequantize should give float32, 0 exactly: {back}"
assert (back - x).abs().max() <= scale / 2 + 1e-6, f"round-trip error above scale / 2: {back} for {x}"
out = quantize(torch.tensor([10.0, -10.0]), scale, zero_point).tolist()
assert out == [127, -128], f"values beyond the range must saturate at 127 / -128 (clamp, then cast), got {out}"
### BEGIN HIDDEN TESTS
gen = torch.Generator().manual_seed(0)
tensors = [torch.randn(1000, generator=gen) * 3 + 1, torch.rand(50, generator=gen) + 1,   # all positive: lo = 0
           -torch.rand(7, 3, generator=gen) - 0.5, torch.zeros(4), x]                     # all negative, zeros
references = []
for t in tensors:
    obs = torch.ao.quantization.MinMaxObserver(dtype=torch.qint8)
    obs(t)
    s, z = obs.calculate_qparams()
    references.append((float(s), int(z), torch.quantize_per_tensor(t, float(s), int(z), torch.qint8).int_repr()))
copies = [t.clone() for t in tensors]
with _no_int8_helpers():
    for t, kept, (s_ref, z_ref, q_ref) in zip(tensors, copies, references):
        s, z = affine_qparams(t)
        assert isinstance(s, float) and isinstance(z, int), \
            f"affine_qparams should return a Python float and int, got {type(s).__name__}, {type(z).__name__}"
        assert abs(s - s_ref) <= 1e-6 * s_ref and z == z_ref, \
            (f"range [{min(t.min().item(), 0):.3f}, {max(t.max().item(), 0):.3f}]: expected scale {s_ref:.6g} and "
             f"zero point {z_ref}, got {s:.6g}, {z} (the range must contain 0; 255 steps; z = -128 - round(lo / s))")
        q = quantize(t, s_ref, z_ref)
        assert q.dtype == torch.int8 and q.shape == t.shape, f"quantize: expected int8 of shape {tuple(t.shape)}"
        diff = (q.int() - q_ref.int()).abs()
        assert diff.max() <= 1 and (diff > 0).sum() <= max(1, t.numel() // 100), "quantize: round(x / s) + z, clamped to [-128, 127]"
        back = dequantize(q_ref, s_ref, z_ref)
        assert back.dtype == torch.float32 and torch.allclose(back, (q_ref.float() - z_ref) * s_ref, atol=1e-6), \
            "dequantize: scale * (q - zero_point), as float32"
        assert torch.equal(t, kept), "quantizing must not change its input"
    assert dequantize(quantize(torch.zeros(3), *affine_qparams(tensors[1])), *affine_qparams(tensors[1])).eq(0).all(), \
        "0 must be exactly representable (include 0 in the range)"
    assert not torch.isnan(dequantize(quantize(torch.zeros(4), *affine_qparams(torch.zeros(4))),
                                      *affine_qparams(torch.zeros(4)))).any(), "a tensor of zeros: no zero scale"
### END HIDDEN TESTS

# %% nbgrader={"grade": true, "grade_id": "int8_channel_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
w = torch.stack([torch.linspace(-0.01, 0.02, 18).reshape(2, 3, 3), torch.linspace(-1.0, 2.0, 18).reshape(2, 3, 3)])
scales, zero_points = per_channel_qparams(w)
assert tuple(scales.shape) == tuple(zero_points.shape) == (2, 1, 1, 1), \
    f"expected scales and zero points of shape (2, 1, 1, 1) for a (2, 2, 3, 3) weight, got {tuple(scales.shape)}"
assert torch.allclose(scales.flatten().double(), torch.tensor([0.03 / 255, 3 / 255], dtype=torch.float64), rtol=1e-5), \
    f"expected one scale per output channel, [0.03/255, 3/255], got {scales.flatten().tolist()}"
assert zero_points.flatten().tolist() == [-43, -43], f"expected zero points [-43, -43], got {zero_points.flatten().tolist()}"
back = dequantize(quantize(w, scales, zero_points), scales, zero_points)
assert back.shape == w.shape and (back - w)[0].abs().max() <= 0.03 / 255 / 2 + 1e-7, \
    "per channel, the small channel's error should stay within its own scale / 2"
### BEGIN HIDDEN TESTS
gen = torch.Generator().manual_seed(1)
weights = [torch.randn(8, 4, 3, 3, generator=gen) * torch.logspace(-3, 1, 8).view(8, 1, 1, 1),
           torch.randn(5, 16, generator=gen) + 0.5, torch.rand(1, 3, 1, 1, generator=gen)]
refs = []
for wt in weights:
    obs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                        qscheme=torch.per_channel_affine)
    obs(wt)
    s, z = obs.calculate_qparams()
    refs.append((s, z, torch.quantize_per_channel(wt, s, z, 0, torch.qint8).int_repr()))
copies = [wt.clone() for wt in weights]
with _no_int8_helpers():
    for wt, kept, (s_ref, z_ref, q_ref) in zip(weights, copies, refs):
        shape = (wt.shape[0],) + (1,) * (wt.dim() - 1)
        s, z = per_channel_qparams(wt)
        assert tuple(s.shape) == tuple(z.shape) == shape, f"weight {tuple(wt.shape)}: expected shape {shape}"
        assert torch.allclose(s.flatten().double(), s_ref.double(), rtol=1e-5) and torch.equal(z.flatten().long(), z_ref.long()), \
            "per channel: each output channel w[c] gets the affine scale and zero point of its own range"
        q = quantize(wt, s, z)
        diff = (q.int() - q_ref.int()).abs()
        assert q.dtype == torch.int8 and diff.max() <= 1 and (diff > 0).sum() <= max(1, wt.numel() // 100), \
            "quantize with per-channel scales: broadcast (C, 1, ..., 1) against w"
        assert torch.equal(wt, kept), "per_channel_qparams must not change w"
    st, zt = affine_qparams(weights[0])
    err_t = (dequantize(quantize(weights[0], st, zt), st, zt) - weights[0])[0].abs().max()
    sc, zc = per_channel_qparams(weights[0])
    err_c = (dequantize(quantize(weights[0], sc, zc), sc, zc) - weights[0])[0].abs().max()
    assert err_c < err_t / 100, "per channel, the smallest channel should be far more precise than per tensor"
### END HIDDEN TESTS

# %% [markdown]
# ### Why convolution and BatchNorm are fused before quantizing
#
# In eval mode, BatchNorm is a fixed affine map per channel: $y_c = \gamma_c\,(z_c - \mu_c)/\sqrt{\sigma_c^2 +
# \epsilon} + \beta_c$. Folded into the convolution before it, it disappears: $w'_c = w_c\,\gamma_c /
# \sqrt{\sigma_c^2+\epsilon}$, $b'_c = \beta_c + (b_c - \mu_c)\,\gamma_c/\sqrt{\sigma_c^2+\epsilon}$. Static
# quantization fuses convolution + BatchNorm (+ ReLU) **before** it measures ranges, for two reasons:
#
# 1. **Quantize what runs.** The int8 kernel computes the fused layer in one pass with one int8 output. Unfused,
#    the convolution's output would be rounded to int8, dequantized for BatchNorm, and quantized again: twice the
#    rounding error and extra time. With the ReLU fused too, the output range starts at 0 and uses all 256 levels.
# 2. **The scales must be those of the fused weights.** The factor $\gamma_c/\sqrt{\sigma_c^2+\epsilon}$ rescales
#    every output channel differently: weights quantized before folding would see their rounding error multiplied
#    by it, channel by channel.
#
# It also explains why weights are quantized per channel: below, the stem's convolution fused with its
# BatchNorm (`torch.nn.utils.fusion.fuse_conv_bn_eval`), and the quantization error of your functions on it.

# %%
q_params, q_channel = grading.or_reference(affine_qparams, C.affine_qparams), \
    grading.or_reference(per_channel_qparams, C.per_channel_qparams)
q_int8, q_back = grading.or_reference(quantize, C.quantize_affine), grading.or_reference(dequantize, C.dequantize_affine)

stem = C.clone(baseline).cpu().eval()
fused = torch.nn.utils.fusion.fuse_conv_bn_eval(stem.conv1, stem.bn1)
with torch.no_grad():
    gap = (fused(example_batch.cpu()) - stem.bn1(stem.conv1(example_batch.cpu()))).abs().max().item()
print(f"max |fused(x) - bn1(conv1(x))| = {gap:.1e}: the same function, one layer")
w = fused.weight.detach()
widest = w.flatten(1).abs().amax(dim=1)
print(f"fused stem weight, {w.shape[0]} output channels: largest |w| per channel from {widest.min():.3f} "
      f"to {widest.max():.3f}")
s, z = q_params(w)
s_c, z_c = q_channel(w)
err_tensor = (q_back(q_int8(w, s, z), s, z) - w).abs().flatten(1).amax(dim=1) / widest
err_channel = (q_back(q_int8(w, s_c, z_c), s_c, z_c) - w).abs().flatten(1).amax(dim=1) / widest
print(f"worst rounding error relative to its channel's largest weight: per tensor {err_tensor.max():.1%}, "
      f"per channel {err_channel.max():.1%}")
plots.plot_seed_bars({"per tensor": err_tensor.tolist(), "per channel": err_channel.tolist()},
                     ylabel="rounding error / channel's largest |w|");

# %%
# course check: fusing changes nothing; per channel is more precise on the fused stem
assert gap < 1e-4 and err_channel.max() < err_tensor.max()

# %% [markdown]
# **Static** quantization quantizes weights *and* activations, with activation ranges measured on calibration
# batches. `C.quantize_static` does it on a copy, as torchvision's quantizable ResNet does (fuse conv + BatchNorm +
# ReLU, calibrate, convert), with `torch.ao.quantization` (deprecated in favour of torchao, whose `quantize_` skips
# convolutions too). int8 models run **on the CPU only**.

# %%
int8 = C.quantize_static(baseline, train_iter, num_batches=4)
layers = C.quantized_layers(int8)
print(len(layers), "quantized layers:", ", ".join(n.removeprefix("net.") for n in layers))
stem_q, stem_w = int8.net.conv1, int8.net.conv1.weight()
weight_scales = stem_w.q_per_channel_scales().numel() if stem_w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric) else 1
print(f"int8 stem: {type(stem_q).__name__} (bn1 is now {type(int8.net.bn1).__name__}), {weight_scales} weight "
      f"scale(s), output scale {stem_q.scale:.4f} and zero point {stem_q.zero_point}")

# %%
# course check: convolutions and fc are int8, conv + bn + relu fused, per-channel weight scales
assert "net.fc" in layers and "net.layer4.0.conv2" in layers and type(int8.net.bn1).__name__ == "Identity"
assert weight_scales == (baseline.conv1.out_channels if C.quantization_engine() != "qnnpack" else 1)

# %%
int8_row = C.measure(int8, valid_iter, example_batch, method="static int8")
C.print_table([base_row, int8_row])

# %%
# course check: 4 bytes -> 1 byte per weight; on the mini world int8 keeps the accuracy
assert int8_row["size_bytes"] < 0.35 * base_row["size_bytes"]
if profile.checks:
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
# int8 rounding (the `quantize` then `dequantize` of your exercise, in float), so training adapts the weights to
# it; `C.convert_qat` then produces the int8 model.

# %%
print("float parameters left in the int8 model:", len(list(int8.parameters())))
qat = finetune(C.prepare_qat(baseline), epochs=1, lr=0.001)
qat_row = C.measure(C.convert_qat(qat), valid_iter, example_batch, method="int8 after QAT")
C.print_table([base_row, int8_row, qat_row])

# %% [markdown]
# ## 5. Distillation
#
# A network's softmax output says more than its top class: how much "not hot dog" a model also sees in a hot dog
# image is information the hard label lacks. **Knowledge distillation** (Hinton et al., 2015, *Distilling the
# Knowledge in a Neural Network*) trains a **student** on the labels *and* on the outputs of a **teacher**,
# both softened by a temperature $T$ ($\mathrm{softmax}(z/T)$: the larger $T$, the flatter), with logits $z_s$
# (student) and $z_t$ (teacher):
#
# $$\mathcal{L} = \alpha\,\mathrm{CE}(z_s, y) + (1 - \alpha)\,T^2\,\mathrm{KL}\big(\mathrm{softmax}(z_t/T)\,\big\|\,
# \mathrm{softmax}(z_s/T)\big).$$
#
# The KL divergence goes from the teacher's distribution (the target) to the student's; its gradients shrink as
# $1/T^2$, so the factor $T^2$ keeps the soft term's weight the same whatever the temperature. Chapter 5 derives
# this loss and has you write it; here we use it as `training.DistillationLoss(teacher, temperature, alpha)`. The
# student can be a smaller network, or the pruned model itself, with the uncompressed baseline as teacher:
# distillation is then a fine-tuning loss after compression.

# %%
teacher = C.clone(baseline).eval()
distilled = finetune(C.prune_global_l1(baseline, 0.9),
                     loss=training.DistillationLoss(teacher, temperature=4.0, alpha=0.5))
kd_row = C.measure(distilled, valid_iter, example_batch, method="pruned 90% + distillation FT")
C.print_table([base_row, rows_pruning[1], kd_row])

# %%
# course check: distillation fine-tuning keeps the masks
assert abs(kd_row["sparsity"] - C.sparsity(pruned90)) < 1e-6

# %% [markdown]
# > **Common mistake.** Calling a distillation step that was never written (*Typical compression workflow* lists
# > `'distillation'` among its methods but has no code for it), or distilling the compressed model from a copy of
# > *itself*: its own outputs teach it nothing new. **Fix:** the teacher is the uncompressed baseline (a copy, in
# > eval mode).
#
# ### Exercise 4 (3 points): pruning, distillation and quantization in sequence
#
# Exercise 1 of *Typical compression workflow*: a workflow that applies pruning, quantization and distillation
# one after the other. Write `compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0,
# alpha=0.5, calibration_batches=2)`, returning an int8 model, without changing `baseline`:
#
# 1. prune a copy (your `prune_copy`) at `sparsity`;
# 2. fine-tune it for `epochs` epochs, masks kept, with `torch.optim.SGD` (`lr`, momentum 0.9) and
#    `training.DistillationLoss(teacher, temperature, alpha)` whose teacher is a copy of the **uncompressed**
#    `baseline` (`training.train(..., loss=..., progress=False)`, validation iterator `None`);
# 3. quantize with `C.quantize_static(..., num_batches=calibration_batches)`, calibrating on `train_iter`.

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
layers = C.quantized_layers(out)
assert "net.fc" in layers and any("conv" in n for n in layers), \
    f"expected a static int8 model (convolutions and fc quantized), got quantized layers {sorted(layers)}"
assert C.sparsity(out) >= 0.68, \
    f"sparsity {C.sparsity(out):.2f} after fine-tuning (expected 0.70): keep the masks until quantization"
assert tiny.state_dict().keys() == before.keys() and all(torch.equal(before[k], v) for k, v in tiny.state_dict().items()), \
    "the baseline changed: prune and fine-tune a copy"
### BEGIN HIDDEN TESTS
import inspect
from unittest import mock

assert len(layers) >= 9, "quantize every convolution and fc (static int8, not dynamic)"
assert out(next(iter(loader))[0]).shape == (8, 2), "the int8 model should run on a batch"
seen = {"losses": [], "train": [], "quantize": []}
_forward, _train, _quantize = training.DistillationLoss.forward, training.train, C.quantize_static


def _spy_loss(self, *args):
    if not seen["losses"]:
        seen["teacher"] = C.clone(self.teacher)
    seen["losses"].append((self.temperature, self.alpha))
    return _forward(self, *args)


def _spy_train(*args, **kwargs):
    seen["train"].append(inspect.signature(_train).bind(*args, **kwargs).arguments)
    return _train(*args, **kwargs)


def _spy_quantize(*args, **kwargs):
    seen["quantize"].append(inspect.signature(_quantize).bind(*args, **kwargs).arguments)
    return _quantize(*args, **kwargs)


with mock.patch.object(training.DistillationLoss, "forward", _spy_loss), \
        mock.patch.object(training, "train", _spy_train), mock.patch.object(C, "quantize_static", _spy_quantize):
    compress_in_sequence(tiny, loader, 0.5, epochs=1, lr=0.03, temperature=2.0, alpha=0.3, calibration_batches=3)
assert seen["losses"], "fine-tune with training.DistillationLoss as the loss of training.train"
assert {t for t, a in seen["losses"]} == {2.0} and {a for t, a in seen["losses"]} == {0.3}, \
    "pass temperature and alpha on to training.DistillationLoss"
t_state = seen["teacher"].state_dict()
assert not C.is_pruned(seen["teacher"]) and C.sparsity(seen["teacher"]) == 0.0 and t_state.keys() == before.keys() \
    and all(torch.equal(before[k], t_state[k].cpu()) for k in before), \
    "the teacher must be a copy of the uncompressed baseline, not of the pruned student"
assert len(seen["train"]) == 1 and seen["train"][0]["num_epochs"] == 1, "fine-tune once, for `epochs` epochs"
opt = seen["train"][0]["optimizer"]
assert type(opt) is torch.optim.SGD and opt.defaults["lr"] == 0.03 and opt.defaults["momentum"] == 0.9, \
    "fine-tune with torch.optim.SGD(lr=lr, momentum=0.9)"
assert len(seen["losses"]) == len(loader), "one distillation loss per batch: pass the loss to training.train"
assert len(seen["quantize"]) == 1 and seen["quantize"][0].get("num_batches", 4) == 3, \
    "quantize once, with C.quantize_static(..., num_batches=calibration_batches)"
assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items()), "the baseline changed: work on copies"
assert tiny.training, "the baseline was put in eval mode (DistillationLoss does that to its teacher): give it a copy"
### END HIDDEN TESTS

# %%
sequence_int8 = compress_in_sequence(baseline, train_iter, 0.9, epochs=profile.epochs(2), lr=0.01)
seq_row = C.measure(sequence_int8, valid_iter, example_batch, method="prune 90% > distil > int8")
C.print_table([base_row, rows_pruning[1], int8_row, seq_row])

# %% [markdown] nbgrader={"grade": false, "grade_id": "sequence_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 5 (2 points, written)
#
# Why this order: pruning, then fine-tuning (with distillation), then quantization? What would go wrong if you
# quantized first and then pruned or fine-tuned, and what if you pruned without any fine-tuning? Use the numbers
# your notebook printed (the pruning sweep, the tables of sections 3 to 5).

# %% [markdown] nbgrader={"grade": true, "grade_id": "sequence_answer", "locked": false, "points": 2, "schema_version": 3, "solution": true, "task": false}
#
# **Model answer.** Pruning first: it ranks float weights, and the pruned float model can still be fine-tuned
# with its masks; in the sweep, 90 % pruning alone costs a lot of accuracy (the "right after pruning" line), and
# masked fine-tuning (with or without distillation) brings most of it back (the tables of sections 3 and 5).
# Quantization last: an int8 model has no float parameters to prune or train (the notebook printed 0 float
# parameters left; QAT has to happen before conversion), and its scales should be measured on the final weights;
# zeros stay exact int8 zeros (0 is always representable), so the sparsity survives (the last table). Without
# fine-tuning, the pruning loss stays and quantization adds its own rounding error on top.
#
# **Rubric (2 points), against the student's own output:**
# - 1 point: quantization last, with a reason: int8 has no float weights to fine-tune or prune (QAT before
#   conversion), or scales must fit the final weights; and the student's last table shows the sparsity kept in
#   the int8 model.
# - 1 point: pruning without fine-tuning, quoted from the student's own sweep or tables (accuracy right after
#   90 % pruning against after masked or distillation fine-tuning; if their run shows little difference, saying
#   so and why, e.g. the seed spread, earns the point).
# - 0.5 off for numbers that are not in the student's output (e.g. copied from elsewhere).
#

# %% [markdown]
# ## 6. A configured, logged workflow (YAML)
#
# > **Common mistake.** Reading a YAML config without validating it: a typo (`method: quantisation`) or a sparsity
# > of `90` (a percentage where a fraction is meant) crashes deep inside the run, or runs something else. **Fix:** validate, saying where and what to fix.
#
# `C.load_config` does that. An entry is one step (`method`, `params`, `finetuning`) or a named chain of `steps`.
# `finetuning` after quantization means QAT; for distillation it trains the student (a smaller `student_widths`
# network, or the previous step's model).

# %%
CONFIG = '''
seed: 0
compression:
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
config_errors = []
for bad in (CONFIG.replace("alpha: 0.5", "alpha: 50"), CONFIG.replace("method: quantization", "method: quantisation"),
            CONFIG.replace("epochs: 6", "epochs: six")):
    try:
        C.load_config(bad)
    except C.ConfigError as err:
        config_errors.append(err)
        print("ConfigError:", err)

# %%
# course check: each bad config is refused
assert len(config_errors) == 3

# %% [markdown]
# ### Exercise 6 (2 points): validate a pruning entry
#
# Exercise 2 of *Typical compression workflow* asks for a YAML configuration system; its core is validation.
# Write `check_pruning_entry(entry)` **without** `C.load_config`: `entry` is one parsed YAML entry (a dict, as
# `yaml.safe_load` gives it). Raise `ValueError` with a message that **names the offending key** (`"method"`,
# `"sparsity"`, `"epochs"` or `"lr"`) when:
#
# - `entry["method"]` is missing or is not `"pruning"`;
# - `entry["params"]["sparsity"]` is missing (or `params` is missing or empty), not a number (`bool` and strings
#   are not numbers), or not strictly between 0 and 1;
# - `entry["finetuning"]` (optional; missing or empty: no fine-tuning) has an `epochs` that is not an integer >= 0
#   (`bool`, `2.0` and `"2"` are not integers), or an `lr` that is not a number > 0. Either key may be left out.
#
# Return `None` when the entry is valid (other keys, such as `name`, are allowed). Do not change `entry`.

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
def rejects(entry, word):
    try:
        check_pruning_entry(entry)
    except ValueError as err:
        assert word in str(err), f"{entry}: the message should name {word!r}, got {err}"
        return
    except Exception as err:
        raise AssertionError(f"{entry}: raise ValueError naming {word!r}, not {type(err).__name__}: {err}") from None
    raise AssertionError(f"{entry} should be rejected with a ValueError naming {word!r}")


assert check_pruning_entry({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 2, "lr": 0.01}}) \
    is None, "a valid entry: return None"
rejects({"method": "pruning", "params": {"sparsity": 1.5}}, "sparsity")
rejects({"method": "pruning", "params": {"sparsity": 90}}, "sparsity")
rejects({"method": "prunning", "params": {"sparsity": 0.5}}, "method")
### BEGIN HIDDEN TESTS
with grading.blocked([C.load_config], "C.load_config is blocked in this test (by any name): check the "
                     "entry yourself"):
    valid = [{"method": "pruning", "params": {"sparsity": 0.9}},
             {"name": "P", "method": "pruning", "params": {"sparsity": 0.3}, "finetuning": {"epochs": 0}},
             {"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"lr": 0.1}},
             {"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": None},
             {"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 3, "lr": 1}}]
    for entry in valid:
        kept = copy.deepcopy(entry)
        try:
            result = check_pruning_entry(entry)
        except Exception as err:
            raise AssertionError(f"{entry} is valid (finetuning, epochs and lr are optional; other keys allowed), "
                                 f"but raised {type(err).__name__}: {err}") from None
        assert result is None, f"{entry}: return None for a valid entry"
        assert entry == kept, f"check_pruning_entry changed the entry: {kept} -> {entry}"
    for s in (0, 1, 1.0, -0.1, "0.5", True, None, [0.5]):
        rejects({"method": "pruning", "params": {"sparsity": s}}, "sparsity")
    rejects({"method": "pruning", "params": {}}, "sparsity")
    rejects({"method": "pruning", "params": None}, "sparsity")
    rejects({"method": "pruning"}, "sparsity")
    rejects({"params": {"sparsity": 0.5}}, "method")
    rejects({"method": "quantization", "params": {"sparsity": 0.5}}, "method")
    for e in (1.5, 2.0, -1, "2", True):
        rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": e}}, "epochs")
    for lr in (0, -0.01, "1e-3", True, None):
        rejects({"method": "pruning", "params": {"sparsity": 0.5}, "finetuning": {"epochs": 1, "lr": lr}}, "lr")
### END HIDDEN TESTS

# %% [markdown]
# ### Logging
#
# A long workflow should **log**, not print: a file that outlives the notebook (and a crashed kernel), a
# timestamp and a level on every line, one switch for the detail (`INFO`, `WARNING`). `helpers.compression` logs
# on the logger `"helpers.compression"`; `C.log_to_file(path)` sends it to a file with the format
# `"%(asctime)s %(levelname)s %(name)s: %(message)s"`.
#
# > **Common mistake.** Adding a `FileHandler` in a cell, then running the cell again: the logger now has two
# > handlers and every line is written twice (three times after a third run, ...). **Fix:** remove (and close)
# > the file handlers of earlier calls before adding one, as `C.log_to_file` does.
#
# `run_workflow` runs each entry on a **copy** of the baseline, measures it on the validation set, checks that
# the baseline is unchanged, and logs each step:

# %%
log_file = profile.data_dir / "logs" / "ch4_workflow.log"
log_file.parent.mkdir(parents=True, exist_ok=True)
C.log_to_file(log_file)
rows = C.run_workflow(config, baseline, train_iter, valid_iter, profile, example_batch)
C.print_table(rows)
log_lines = log_file.read_text().splitlines()  # the file keeps earlier runs: show this one
this_run = log_lines[max(i for i, line in enumerate(log_lines) if "baseline: measuring" in line):]
print(f"{log_file.name}, this run:")
print("\n".join(this_run))

# %%
# course check: the baseline is intact (every entry worked on a copy)
assert all(torch.equal(baseline_state[k].cpu(), v.cpu()) for k, v in baseline.state_dict().items())

# %% [markdown] nbgrader={"grade": false, "grade_id": "logging_question", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ### Exercise 7 (1 point, written)
#
# Exercise 3 of *Typical compression workflow* asks for logging that tracks progress and metrics. From the log
# lines your notebook printed above: which experiment took the longest, and how do you know from the log alone?
# Name one thing the log file gives you that the printed table does not.

# %% [markdown] nbgrader={"grade": true, "grade_id": "logging_answer", "locked": false, "points": 1, "schema_version": 3, "solution": true, "task": false}
#
# **Model answer.** In my run, the small student (distillation) took the longest: the timestamp of its
# "1 step(s)" line and of its "accuracy ..." line are the furthest apart (it trains a new network for the most
# epochs). The log file outlives the notebook and a crashed kernel, has a timestamp and a level on each line
# (progress can be followed while it runs, e.g. `tail -f`, and filtered by level), and records each step's
# sparsity and non-zero count, which the table does not show.
#
# **Rubric (1 point), against the student's own log:** 0.5 for the experiment whose start and end timestamps are
# furthest apart *in the student's printed log* (any experiment is right if their timestamps say so), with the
# timestamps as the reason; 0.5 for one real advantage of the log file (persists, timestamps, levels, per-step
# lines, can be followed during a long run).
#

# %% [markdown]
# ## 7. Combinations, and a choice
#
# Exercise 4 of *Typical compression workflow*: a workflow that tries different combinations of methods. The valid
# combinations of pruning (P), distillation (D) and quantization (Q), steps in the order P, D, Q, are P, Q, P+D,
# P+Q and P+D+Q: D alone has no student, and Q must be last (an int8 model cannot be trained). When distillation
# follows pruning, it does the fine-tuning (student = the pruned model, teacher = the baseline).

# %%
COMBOS = '''
seed: 0
compression:
  - name: P
    steps:
      - {method: pruning, params: {sparsity: 0.9}, finetuning: {epochs: 2, lr: 0.01}}
  - name: Q
    steps:
      - {method: quantization}
  - name: P+D
    steps:
      - {method: pruning, params: {sparsity: 0.9}}
      - {method: distillation, params: {temperature: 4.0, alpha: 0.5}, finetuning: {epochs: 2, lr: 0.01}}
  - name: P+Q
    steps:
      - {method: pruning, params: {sparsity: 0.9}, finetuning: {epochs: 2, lr: 0.01}}
      - {method: quantization}
  - name: P+D+Q
    steps:
      - {method: pruning, params: {sparsity: 0.9}}
      - {method: distillation, params: {temperature: 4.0, alpha: 0.5}, finetuning: {epochs: 2, lr: 0.01}}
      - {method: quantization}
'''
combo_models = {}
combo_rows = C.run_workflow(C.cap_epochs(C.load_config(COMBOS), profile), baseline, train_iter, valid_iter, profile,
                            example_batch, keep_models=combo_models)
all_rows = combo_rows + rows[1:] + [slim_row]
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
# ### Exercise 8 (3 points, written)
#
# From the table, the plot and the latency measurements of sections 3 and 4 (your own numbers): which model would
# you deploy (a) to minimise size on disk, (b) to minimise CPU latency, (c) for the best accuracy per byte? Why
# does unstructured pruning reduce the compressed size but not the latency, and what did channel pruning change?
# Why are these choices made on the validation set, and the test set used only once?

# %% [markdown] nbgrader={"grade": true, "grade_id": "combos_answer", "locked": false, "points": 3, "schema_version": 3, "solution": true, "task": false}
#
# **Model answer** (read against the tables of a run on the mini world; a student's numbers differ). (a) P+Q or
# P+D+Q: 90 % zeros compress well and int8 divides the rest by about four (the smallest `KB` in the table, about
# 16x smaller than the baseline). (b) In section 4's one-thread comparison, int8 ran faster than the float
# baseline and the 90 % pruned float model took as long as the baseline; in section 3, the channel-pruned model
# was faster too (it does fewer multiply-adds), and pruning channels then quantizing would combine both. The
# table's `CPU ms` column (one short measurement per row) is too noisy to decide. (c) Q keeps the baseline's
# validation accuracy within a few points at a quarter of its bytes, P+Q at a sixteenth: per byte, P+Q. Unstructured
# pruning leaves the tensors dense (zeros are still multiplied: the same multiply-adds as the baseline), so only
# the zlib-compressed file shrinks. Channel pruning removes whole filters: the layers become smaller dense layers
# and every forward pass does less work, at the price of more accuracy lost per removed weight (it needed its
# fine-tuning). Choices tuned on the test set would make its accuracy an optimistic estimate; used once, for the
# model kept, it is not.
#
# **Rubric (3 points), against the student's own output:**
# - 1 point: (a), (b), (c) each answered with a model and a number from the student's table or latency lines
#   (1/3 each). For (b) any model is right if their measurements support it; saying that the `CPU ms` column is
#   too noisy, or that differences within the noise decide nothing, is a plus, not required.
# - 1 point: unstructured pruning keeps every multiplication (dense tensors; same multiply-adds in their output)
#   so only the compressed size falls (0.5); channel pruning removes work, shown by their multiply-adds and
#   latency lines (0.5; if their run shows no speed-up, saying so and why, e.g. a small model, load, earns it).
# - 1 point: validation to choose, test once: choices made on the test set overfit it and its accuracy is no
#   longer an unbiased estimate of new data.
#

# %% [markdown]
# ## Full profile
#
# `COURSE_PROFILE=full` runs the same chapter on the real ResNet-18 (`weights=ResNet18_Weights.IMAGENET1K_V1`)
# fine-tuned on the d2l hotdog data; training runs on `profile.device` (a GPU if there is one), int8 models and
# latency on the CPU. `quantize_static` handles torchvision's `resnet18` unchanged (its 20 convolutions and `fc`),
# and so does `prune_channels` (the inner channels of its 8 residual blocks).

# %%
full_net = models.new_head(torchvision.models.resnet18(weights=None), 2).eval()
full_int8 = C.quantize_static(full_net, [(torch.randn(2, 3, 64, 64), None)], num_batches=1)
full_slim = C.prune_channels(full_net, 0.5)
print(len(C.quantized_layers(full_int8)), "quantized layers in resnet18")
mb = lambda n: f"{n / 2**20:.1f} MiB"
print("state dict:", mb(C.serialized_size(full_net, compress=False)), "-> int8",
      mb(C.serialized_size(full_int8, compress=False)), "| half the inner channels:",
      mb(C.serialized_size(full_slim, compress=False)))

# %%
# course check: all 21 layers of resnet18 quantized
assert len(C.quantized_layers(full_int8)) == 21
