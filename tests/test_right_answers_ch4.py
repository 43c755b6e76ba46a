"""Chapter 4: correct answers written differently from the solution get full points.

For each autograded exercise, two correct answers that differ from the model solution (another API, a loop, a
different but valid reading of the spec) pass every test cell of that exercise, hidden tests included. One batch
runs in the real notebook (the lesson cells in between use the answers through ``grading.or_reference``), the
other on the graded cells alone (``tests/ch4_cells.py``).
"""
from __future__ import annotations

import pytest

from tests.ch4_cells import ALL_TESTS, EXERCISES, run_full, run_graded
from tests.nbrun import assert_passes

RIGHT_A = {
    "ratio_impl": '''
def count_nonzero_params(net):  # the tensor each layer uses: getattr(module, "weight") is orig * mask when masked
    total = 0
    for module in net.modules():
        for name, p in module.named_parameters(recurse=False):
            used = getattr(module, name.removesuffix("_orig")) if name.endswith("_orig") else p
            total += torch.count_nonzero(used).item()
    return total


def compression_ratio(baseline, compressed):
    return float(count_nonzero_params(baseline)) / float(count_nonzero_params(compressed))
''',
    "prune_copy_impl": '''
def prune_copy(net, amount):  # C.clone and a tuple of named modules
    out = C.clone(net)
    params = tuple((module, "weight") for _, module in out.named_modules()
                   if type(module) in (nn.Conv2d, nn.Linear))
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    return out
''',
    "int8_impl": '''
EPS = torch.finfo(torch.float32).eps


def affine_qparams(x):  # in float32 tensors, converted at the end
    lo, hi = x.min().clamp(max=0), x.max().clamp(min=0)
    scale = ((hi - lo) / 255).clamp(min=EPS)
    zero_point = (-128 - torch.round(lo / scale)).clamp(-128, 127)
    return float(scale), int(zero_point)


def quantize(x, scale, zero_point):
    return x.div(scale).round().add(zero_point).clamp(-128, 127).to(torch.int8)


def dequantize(q, scale, zero_point):
    return q.to(torch.float32).sub(zero_point).mul(scale)


def per_channel_qparams(w):  # a loop over the output channels, reusing affine_qparams
    pairs = [affine_qparams(w[c]) for c in range(w.shape[0])]
    shape = (w.shape[0],) + (1,) * (w.dim() - 1)
    return (torch.tensor([s for s, _ in pairs], dtype=torch.float32).view(shape),
            torch.tensor([z for _, z in pairs], dtype=torch.int64).view(shape))
''',
    "sequence_impl": '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):  # the helper for the pruning step, keywords everywhere
    teacher = C.clone(baseline)
    student = C.prune_global_l1(baseline, sparsity)
    optimizer = torch.optim.SGD(params=student.parameters(), momentum=0.9, lr=lr)
    training.train(net=student, train_iter=train_iter, valid_iter=None, optimizer=optimizer, num_epochs=epochs,
                   loss=training.DistillationLoss(teacher=teacher, temperature=temperature, alpha=alpha),
                   progress=False)
    return C.quantize_static(student, train_iter, calibration_batches)
''',
    "config_check_impl": '''
import numbers


def check_pruning_entry(entry):  # numbers.Real, early checks, one helper per key
    def number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    if entry.get("method") != "pruning":
        raise ValueError(f"'method' must be 'pruning', not {entry.get('method')!r}")
    params = entry.get("params") or {}
    if "sparsity" not in params or not number(params["sparsity"]) or not 0 < params["sparsity"] < 1:
        raise ValueError(f"'sparsity' must be a number strictly between 0 and 1, got {params.get('sparsity')!r}")
    finetuning = entry.get("finetuning") or {}
    if "epochs" in finetuning and (type(finetuning["epochs"]) is not int or finetuning["epochs"] < 0):
        raise ValueError(f"'epochs' must be an integer >= 0, got {finetuning['epochs']!r}")
    if "lr" in finetuning and (not number(finetuning["lr"]) or finetuning["lr"] <= 0):
        raise ValueError(f"'lr' must be a number > 0, got {finetuning['lr']!r}")
    return None
''',
}

RIGHT_B = {
    "ratio_impl": '''
def count_nonzero_params(net):  # from the state dict: parameters only, masked ones multiplied by their mask
    state = net.state_dict()
    names = {name for name, _ in net.named_parameters()}
    count = 0
    for name in names:
        tensor = state[name]
        if name.endswith("_orig"):
            tensor = tensor * state[name[: -len("_orig")] + "_mask"]
        count += int(tensor.ne(0).sum())
    return count


def compression_ratio(baseline, compressed):
    return count_nonzero_params(baseline) / count_nonzero_params(compressed)
''',
    "prune_copy_impl": '''
def prune_copy(net, amount):  # one global threshold computed by hand, masks set with custom_from_mask
    net = copy.deepcopy(net)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    scores = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    k = round(amount * scores.numel())
    threshold = scores.kthvalue(k).values if k > 0 else scores.min() - 1
    for m in layers:
        prune.custom_from_mask(m, "weight", (m.weight.detach().abs() > threshold).float())
    return net
''',
    "int8_impl": '''
def affine_qparams(x):  # plain Python on the extremes
    lo = min(0.0, float(x.min()))
    hi = max(0.0, float(x.max()))
    scale = (hi - lo) / 255 if hi > lo else torch.finfo(torch.float32).eps
    scale = max(scale, torch.finfo(torch.float32).eps)
    return scale, max(-128, min(127, -128 - round(lo / scale)))


def quantize(x, scale, zero_point):
    q = torch.round(x / scale) + zero_point
    q = torch.where(q > 127, torch.full_like(q, 127), q)
    q = torch.where(q < -128, torch.full_like(q, -128), q)
    return q.type(torch.int8)


def dequantize(q, scale, zero_point):
    return scale * (q.float() - zero_point)


def per_channel_qparams(w):  # amin / amax over every dimension but the first
    dims = tuple(range(1, w.dim()))
    lo = torch.minimum(w.amin(dim=dims, keepdim=True), torch.zeros(()))
    hi = torch.maximum(w.amax(dim=dims, keepdim=True), torch.zeros(()))
    scale = torch.clamp((hi - lo) / 255, min=torch.finfo(torch.float32).eps)
    return scale, torch.clamp(-128 - torch.round(lo / scale), -128, 127).to(torch.long)
''',
    "sequence_impl": '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):  # step by step, with the student's own prune_copy
    pruned = prune_copy(baseline, sparsity)
    distil = training.DistillationLoss(copy.deepcopy(baseline).eval(), temperature=temperature, alpha=alpha)
    sgd = torch.optim.SGD([p for p in pruned.parameters() if p.requires_grad], lr, momentum=0.9)
    training.train(pruned, train_iter, None, sgd, epochs, loss=distil, progress=False)
    int8 = C.quantize_static(pruned, train_iter, num_batches=calibration_batches)
    return int8
''',
    "config_check_impl": '''
def check_pruning_entry(entry):  # a table of checks
    def is_num(v):
        return type(v) in (int, float)

    ft = entry.get("finetuning") or {}
    params = entry.get("params") or {}
    checks = [
        ("method", lambda: entry.get("method") == "pruning"),
        ("sparsity", lambda: is_num(params.get("sparsity")) and 0 < params["sparsity"] < 1),
        ("epochs", lambda: "epochs" not in ft or (type(ft["epochs"]) is int and ft["epochs"] >= 0)),
        ("lr", lambda: "lr" not in ft or (is_num(ft["lr"]) and ft["lr"] > 0)),
    ]
    for key, ok in checks:
        if not ok():
            raise ValueError(f"invalid {key}")
''',
}


@pytest.fixture(autouse=True)
def grading_env(monkeypatch):
    """Run the cells as the autograder does (COURSE_GRADING=1)."""
    monkeypatch.setenv("COURSE_GRADING", "1")


def test_right_answers_in_the_real_notebook_get_full_points():
    errors = run_full(RIGHT_A)
    assert_passes(errors, ALL_TESTS)


def test_more_right_answers_get_full_points(tmp_path):
    errors = run_graded(tmp_path, RIGHT_B, list(EXERCISES))
    assert_passes(errors, ALL_TESTS)
