"""Chapter 4's test cells catch realistic wrong answers, each for the reason meant for it.

Every case swaps a wrong answer into one exercise and asserts *why* its test cell failed (``assert_caught``: the
AssertionError and the part of its message that names the property), and that the other exercises run in the
same kernel still pass (``assert_passes``: a NameError cascade is not a catch). Wrong answers to different
exercises are batched into one kernel (the exercises are independent); the cells run without the lesson's
training cells (``tests/ch4_cells.py``); ``test_right_answers_ch4.py`` runs the same cells in the real notebook.
"""
from __future__ import annotations

import itertools

import pytest

from tests.ch4_cells import EXERCISES, graded_tests_of, run_graded
from tests.nbrun import assert_caught, assert_passes

# Each wrong answer: (exercise, answer cell source(s), test cell, regex its message must match).
W = {}

# --- Exercise 1: count_nonzero_params / compression_ratio ------------------------------------------------------
_RATIO = '''
def compression_ratio(baseline, compressed):
    return count_nonzero_params(baseline) / count_nonzero_params(compressed)
'''
W["ratio_numel"] = ("ratio", '''
def count_nonzero_params(net):  # the source's table: numel does not see zeros
    return sum(p.numel() for p in net.parameters())
''' + _RATIO, "ratio_tests", "unpruned tiny net: expected")
W["ratio_weight_orig"] = ("ratio", '''
def count_nonzero_params(net):  # parameters() lists weight_orig: the mask is ignored
    return sum(int((p != 0).sum()) for p in net.parameters())
''' + _RATIO, "ratio_tests", r"count weight_orig \* weight_mask")
W["ratio_conv_linear_only"] = ("ratio", '''
def count_nonzero_params(net):  # only the weights of conv / linear layers: biases and BatchNorm forgotten
    return sum(int((m.weight != 0).sum()) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
''' + _RATIO, "ratio_tests", "unpruned tiny net: expected")
W["ratio_state_dict"] = ("ratio", '''
def count_nonzero_params(net):  # the state dict: masks, running statistics and weight_orig counted
    return sum(int((t != 0).sum()) for t in net.state_dict().values())
''' + _RATIO, "ratio_tests", "unpruned tiny net: expected")
W["ratio_from_sparsity"] = ("ratio", '''
def count_nonzero_params(net):
    total = 0
    for m in net.modules():
        for name, p in m.named_parameters(recurse=False):
            if name.endswith("_orig"):
                p = p * getattr(m, name[: -len("_orig")] + "_mask")
            total += int((p != 0).sum())
    return total

def compression_ratio(baseline, compressed):  # 1 / (1 - sparsity): biases and BatchNorm ignored
    return 1 / (1 - C.sparsity(compressed))
''', "ratio_tests", r"compression_ratio\(tiny, half\): expected")
W["ratio_inverted"] = ("ratio", '''
def count_nonzero_params(net):
    return sum(int((getattr(m, n[:-5]) if n.endswith("_orig") else p).ne(0).sum())
               for m in net.modules() for n, p in m.named_parameters(recurse=False))

def compression_ratio(baseline, compressed):  # upside down
    return count_nonzero_params(compressed) / count_nonzero_params(baseline)
''', "ratio_tests", r"compression_ratio\(tiny, half\): expected")
W["ratio_removes_masks"] = ("ratio", '''
def count_nonzero_params(net):  # folds the masks into the model it was given (prune.remove, in place)
    for m in net.modules():
        for name in [n[:-5] for n, _ in m.named_buffers(recurse=False) if n.endswith("_mask")]:
            prune.remove(m, name)
    return sum(int((p != 0).sum()) for p in net.parameters())
''' + _RATIO, "ratio_tests", "counting must not change the models")
W["ratio_weight_orig_only"] = ("ratio", '''
def count_nonzero_params(net):  # handles weight_orig, but a pruned bias (bias_orig) is counted unmasked
    total = 0
    for m in net.modules():
        for name, p in m.named_parameters(recurse=False):
            if name == "weight_orig":
                p = p * m.weight_mask
            total += int((p != 0).sum())
    return total
''' + _RATIO, "ratio_tests", "pruned biases")
W["ratio_helper"] = ("ratio", '''
def count_nonzero_params(net):  # the helper the tests compare with
    return C.count_nonzero(net)
''' + _RATIO, "ratio_tests", "C.count_nonzero is blocked")
W["ratio_helper_alias"] = ("ratio", '''
from helpers.compression.pruning import count_nonzero as _count
def count_nonzero_params(net):  # the helper by another name (patching C.count_nonzero alone misses it)
    return _count(net)
''' + _RATIO, "ratio_tests", "C.count_nonzero is blocked")

# --- Exercise 2: prune_copy -----------------------------------------------------------------------------------
W["prune_in_place"] = ("prune_copy", '''
def prune_copy(net, amount):  # the source: prunes the model it was given
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
''', "prune_copy_tests", "return a copy")
W["prune_in_place_copy_returned"] = ("prune_copy", '''
def prune_copy(net, amount):  # prunes the original, then returns a copy of it
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return C.clone(net)
''', "prune_copy_tests", "the original changed")
W["prune_remove"] = ("prune_copy", '''
def prune_copy(net, amount):  # a copy, but masks removed: fine-tuning regrows the zeros
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in targets:
        prune.remove(m, name)
    return net
''', "prune_copy_tests", "keep the masks")
W["prune_layer_by_layer"] = ("prune_copy", '''
def prune_copy(net, amount):  # the same fraction in every layer: one threshold per layer
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            prune.l1_unstructured(m, "weight", amount=amount)
    return net
''', "prune_copy_tests", "smallest absolute value")
W["prune_random"] = ("prune_copy", '''
def prune_copy(net, amount):  # global, but random weights instead of the smallest
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.RandomUnstructured, amount=amount)
    return net
''', "prune_copy_tests", "smallest absolute value")
W["prune_conv_only"] = ("prune_copy", '''
def prune_copy(net, amount):  # fc forgotten
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, nn.Conv2d)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
''', "prune_copy_tests", r"fc too")
W["prune_batchnorm_too"] = ("prune_copy", '''
def prune_copy(net, amount):  # every module with a weight: BatchNorm's scales pruned too
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
''', "prune_copy_tests", "expected 60 % of the weights at zero")  # BatchNorm's scales take part of it
W["prune_biases_too"] = ("prune_copy", '''
def prune_copy(net, amount):  # weights and biases ranked together
    net = copy.deepcopy(net)
    targets = [(m, n) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for n in ("weight", "bias") if getattr(m, n) is not None]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
''', "prune_copy_tests", "not the biases")
W["prune_keep_fraction"] = ("prune_copy", '''
def prune_copy(net, amount):  # reads amount as the fraction to keep
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=1 - amount)
    return net
''', "prune_copy_tests", "expected 60 % of the weights at zero")
W["prune_helper"] = ("prune_copy", '''
def prune_copy(net, amount):  # the helper
    return C.prune_global_l1(net, amount)
''', "prune_copy_tests", "C.prune_global_l1 is blocked")
W["prune_helper_via_workflow"] = ("prune_copy", '''
import sys
_prune = sys.modules["helpers.compression.workflow"].prune_global_l1
def prune_copy(net, amount):  # the helper, reached through another module of the package
    return _prune(net, amount)
''', "prune_copy_tests", "C.prune_global_l1 is blocked")

# --- Exercise 3: int8 arithmetic ------------------------------------------------------------------------------
_INT8 = {
    "qparams": '''
def affine_qparams(x):
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max((hi - lo) / 255, torch.finfo(torch.float32).eps)
    return scale, int(min(max(-128 - round(lo / scale), -128), 127))
''',
    "quantize": '''
def quantize(x, scale, zero_point):
    return torch.clamp(torch.round(x / scale) + zero_point, -128, 127).to(torch.int8)
''',
    "dequantize": '''
def dequantize(q, scale, zero_point):
    return (q.float() - zero_point) * scale
''',
    "channel": '''
def per_channel_qparams(w):
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(dim=1).values.clamp(max=0), flat.max(dim=1).values.clamp(min=0)
    scale = ((hi - lo) / 255).clamp(min=torch.finfo(torch.float32).eps)
    zero_point = (-128 - torch.round(lo / scale)).clamp(-128, 127).long()
    shape = (-1,) + (1,) * (w.dim() - 1)
    return scale.reshape(shape), zero_point.reshape(shape)
''',
}


def int8_answer(**wrong: str) -> str:
    return "".join(wrong.get(k, v) for k, v in _INT8.items())


W["int8_no_clamp"] = ("int8", int8_answer(quantize='''
def quantize(x, scale, zero_point):  # cast without clamping: beyond the range, int8 wraps around
    return (torch.round(x / scale) + zero_point).to(torch.int8)
'''), "int8_tensor_tests", "must saturate at 127 / -128")
W["int8_symmetric"] = ("int8", int8_answer(qparams='''
def affine_qparams(x):  # symmetric: zero point 0, the range [-max|x|, max|x|]
    return max(x.abs().max().item() / 127.5, 1e-8), 0
'''), "int8_tensor_tests", r"range \[-1, 2\]: expected scale")
W["int8_256_levels"] = ("int8", int8_answer(qparams='''
def affine_qparams(x):  # 256 steps instead of 255
    lo, hi = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = max((hi - lo) / 256, 1e-8)
    return scale, int(min(max(-128 - round(lo / scale), -128), 127))
'''), "int8_tensor_tests", r"range \[-1, 2\]: expected scale")
W["int8_range_without_zero"] = ("int8", int8_answer(qparams='''
def affine_qparams(x):  # the range of the values only: 0 is not representable when all values are positive
    lo, hi = x.min().item(), x.max().item()
    scale = max((hi - lo) / 255, torch.finfo(torch.float32).eps)
    return scale, int(min(max(-128 - round(lo / scale), -128), 127))
'''), "int8_tensor_tests", "the range must contain 0")
W["int8_truncate"] = ("int8", int8_answer(quantize='''
def quantize(x, scale, zero_point):  # truncation instead of rounding
    return torch.clamp((x / scale).trunc() + zero_point, -128, 127).to(torch.int8)
'''), "int8_tensor_tests", r"quantize: round\(x / s\) \+ z")
W["int8_dequantize_no_zero_point"] = ("int8", int8_answer(dequantize='''
def dequantize(q, scale, zero_point):  # zero point forgotten
    return q.float() * scale
'''), "int8_tensor_tests", "0 exactly")
W["int8_tensor_helper"] = ("int8", int8_answer(quantize='''
def quantize(x, scale, zero_point):  # PyTorch's quantized tensor does the work
    return torch.quantize_per_tensor(x, float(scale), int(zero_point), torch.qint8).int_repr()
'''), "int8_tensor_tests", "quantize_per_tensor is blocked")
W["int8_channel_flat"] = ("int8", int8_answer(channel='''
def per_channel_qparams(w):  # one value per channel, but shaped (C,): does not broadcast against w
    scales, zero_points = [], []
    for c in range(w.shape[0]):
        s, z = affine_qparams(w[c])
        scales.append(s)
        zero_points.append(z)
    return torch.tensor(scales), torch.tensor(zero_points)
'''), "int8_channel_tests", r"expected scales and zero points of shape \(2, 1, 1, 1\)")
W["int8_channel_wrong_dim"] = ("int8", int8_answer(channel='''
def per_channel_qparams(w):  # per input channel (dimension 1)
    flat = w.transpose(0, 1).reshape(w.shape[1], -1)
    lo, hi = flat.min(dim=1).values.clamp(max=0), flat.max(dim=1).values.clamp(min=0)
    scale = ((hi - lo) / 255).clamp(min=1e-8)
    zero_point = (-128 - torch.round(lo / scale)).clamp(-128, 127).long()
    shape = (-1,) + (1,) * (w.dim() - 1)
    return scale.reshape(shape), zero_point.reshape(shape)
'''), "int8_channel_tests", "expected one scale per output channel")
W["int8_channel_helper"] = ("int8", int8_answer(channel='''
def per_channel_qparams(w):  # an observer computes them
    obs = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                        qscheme=torch.per_channel_affine)
    obs(w)
    s, z = obs.calculate_qparams()
    shape = (-1,) + (1,) * (w.dim() - 1)
    return s.reshape(shape), z.reshape(shape)
'''), "int8_channel_tests", "calculate_qparams is blocked")

# --- Exercise 4: compress_in_sequence -------------------------------------------------------------------------
_SIG = '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
'''


def sequence(student="C.prune_global_l1(baseline, sparsity)",
             loss="training.DistillationLoss(copy.deepcopy(baseline), temperature, alpha)",
             opt="torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)",
             train="training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)",
             out="C.quantize_static(student, train_iter, num_batches=calibration_batches)") -> str:
    return _SIG + f"""    student = {student}
    loss = {loss}
    opt = {opt}
    {train}
    return {out}
"""


W["seq_remove_first"] = ("sequence", sequence(student="C.make_permanent(C.prune_global_l1(baseline, sparsity))"),
                         "sequence_tests", "keep the masks until quantization")
W["seq_dynamic"] = ("sequence", sequence(out="C.quantize_dynamic(C.make_permanent(student))"),
                    "sequence_tests", "expected a static int8 model")
W["seq_prunes_baseline"] = ("sequence", _SIG + """    student = baseline  # the baseline itself is pruned and fine-tuned
    prune.global_unstructured([(m, "weight") for m in student.modules() if isinstance(m, (nn.Conv2d, nn.Linear))],
                              pruning_method=prune.L1Unstructured, amount=sparsity)
    loss = training.DistillationLoss(C.clone(baseline), temperature, alpha)
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)
    return C.quantize_static(student, train_iter, num_batches=calibration_batches)
""", "sequence_tests", "the baseline changed")
W["seq_self_teacher"] = ("sequence", sequence(loss="training.DistillationLoss(C.clone(student), temperature, alpha)"),
                         "sequence_tests", "the teacher must be a copy of the uncompressed baseline")
W["seq_no_distillation"] = ("sequence", sequence(train="training.train(student, train_iter, None, opt, epochs, "
                                                       "progress=False)"),
                            "sequence_tests", "fine-tune with training.DistillationLoss")
W["seq_default_temperature"] = ("sequence", sequence(loss="training.DistillationLoss(copy.deepcopy(baseline))"),
                                "sequence_tests", "pass temperature and alpha")
W["seq_teacher_not_copied"] = ("sequence", sequence(loss="training.DistillationLoss(baseline, temperature, alpha)"),
                               "sequence_tests", "put in eval mode")
W["seq_adam"] = ("sequence", sequence(opt="torch.optim.Adam(student.parameters(), lr=lr)"),
                 "sequence_tests", r"torch.optim.SGD\(lr=lr, momentum=0.9\)")
W["seq_no_momentum"] = ("sequence", sequence(opt="torch.optim.SGD(student.parameters(), lr=lr)"),
                        "sequence_tests", r"torch.optim.SGD\(lr=lr, momentum=0.9\)")
W["seq_fixed_epochs"] = ("sequence", sequence(train="training.train(student, train_iter, None, opt, 2, loss=loss, "
                                                    "progress=False)"),
                         "sequence_tests", "for `epochs` epochs")
W["seq_default_calibration"] = ("sequence", sequence(out="C.quantize_static(student, train_iter)"),
                                "sequence_tests", r"num_batches=calibration_batches")

# --- Exercise 6: check_pruning_entry --------------------------------------------------------------------------
W["config_loose"] = ("config", '''
def check_pruning_entry(entry):  # the source: the range only, bounds included
    if entry.get("method") != "pruning":
        raise ValueError("method")
    if not 0 <= entry["params"]["sparsity"] <= 1:
        raise ValueError("sparsity")
''', "config_check_tests", r"should be rejected with a ValueError naming 'sparsity'")
W["config_type_error"] = ("config", '''
def check_pruning_entry(entry):  # a string sparsity crashes with TypeError instead of a clear ValueError
    if entry.get("method") != "pruning":
        raise ValueError("method must be 'pruning'")
    s = (entry.get("params") or {}).get("sparsity")
    if s is None or not 0 < s < 1:
        raise ValueError("sparsity must be in (0, 1)")
    ft = entry.get("finetuning") or {}
    if not isinstance(ft.get("epochs", 0), int) or ft.get("epochs", 0) < 0:
        raise ValueError("epochs must be an integer >= 0")
    if not ft.get("lr", 0.01) > 0:
        raise ValueError("lr must be > 0")
''', "config_check_tests", r"not TypeError")
_CONFIG_OK = '''
def _num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)

def check_pruning_entry(entry):
    if entry.get("method") != "pruning":
        raise ValueError("method must be 'pruning'")
    s = (entry.get("params") or {}).get("sparsity")
    if not _num(s) or not 0 < s < 1:
        raise ValueError("sparsity must be a number in (0, 1)")
    ft = entry.get("finetuning") or {}
'''
W["config_float_epochs"] = ("config", _CONFIG_OK + '''
    e = ft.get("epochs", 0)
    if not _num(e) or e != int(e) or e < 0:  # 2.0 and True accepted as integers
        raise ValueError("epochs must be an integer >= 0")
    if not _num(ft.get("lr", 0.01)) or ft.get("lr", 0.01) <= 0:
        raise ValueError("lr must be a number > 0")
''', "config_check_tests", r"'epochs': 2.0\}\} should be rejected")
W["config_bool_accepted"] = ("config", _CONFIG_OK + '''
    if not isinstance(ft.get("epochs", 0), int) or ft.get("epochs", 0) < 0:  # True is an int
        raise ValueError("epochs must be an integer >= 0")
    if not isinstance(ft.get("lr", 0.01), (int, float)) or ft.get("lr", 0.01) <= 0:
        raise ValueError("lr must be a number > 0")
''', "config_check_tests", r"'epochs': True\}\} should be rejected")
W["config_requires_finetuning"] = ("config", _CONFIG_OK.replace('entry.get("finetuning") or {}',
                                                                'entry["finetuning"]') + '''
    if not isinstance(ft["epochs"], int) or isinstance(ft["epochs"], bool) or ft["epochs"] < 0:
        raise ValueError("epochs must be an integer >= 0")
    if not _num(ft["lr"]) or ft["lr"] <= 0:
        raise ValueError("lr must be a number > 0")
''', "config_check_tests", r"is valid .* but raised KeyError")
W["config_mutates_entry"] = ("config", _CONFIG_OK.replace('entry.get("finetuning") or {}',
                                                          'entry.setdefault("finetuning", {}) or {}') + '''
    ft.setdefault("epochs", 0)
    if not isinstance(ft["epochs"], int) or isinstance(ft["epochs"], bool) or ft["epochs"] < 0:
        raise ValueError("epochs must be an integer >= 0")
    if not _num(ft.get("lr", 0.01)) or ft.get("lr", 0.01) <= 0:
        raise ValueError("lr must be a number > 0")
''', "config_check_tests", "changed the entry")
W["config_params_none"] = ("config", '''
def check_pruning_entry(entry):  # `params:` left empty in YAML is None: AttributeError
    if entry.get("method") != "pruning":
        raise ValueError("method must be 'pruning'")
    s = entry.get("params", {}).get("sparsity")
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < 1:
        raise ValueError("sparsity must be a number in (0, 1)")
    ft = entry.get("finetuning") or {}
    e, lr = ft.get("epochs", 0), ft.get("lr", 0.01)
    if isinstance(e, bool) or not isinstance(e, int) or e < 0:
        raise ValueError("epochs must be an integer >= 0")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError("lr must be a number > 0")
''', "config_check_tests", "not AttributeError")
W["config_vague_message"] = ("config", '''
def check_pruning_entry(entry):  # right checks, a message that does not say which key
    ft = entry.get("finetuning") or {}
    s = (entry.get("params") or {}).get("sparsity")
    ok = (entry.get("method") == "pruning" and isinstance(s, float) and 0 < s < 1
          and type(ft.get("epochs", 0)) is int and ft.get("epochs", 0) >= 0
          and type(ft.get("lr", 0.01)) in (int, float) and ft.get("lr", 0.01) > 0)
    if not ok:
        raise ValueError("invalid pruning entry")
''', "config_check_tests", r"the message should name 'sparsity'")


W["config_load_config"] = ("config", '''
def check_pruning_entry(entry):  # the helper this exercise replaces
    C.load_config({"compression": [entry]})
''', "config_check_tests", "C.load_config is blocked")

W["config_load_config_from_its_module"] = ("config", '''
from helpers.compression.config import load_config
def check_pruning_entry(entry):  # the helper this exercise replaces, imported from its own module
    load_config({"compression": [entry]})
''', "config_check_tests", "C.load_config is blocked")


def _batches():
    """Group the wrong answers into runs: at most one per exercise in each run."""
    by_ex = {ex: [k for k, v in W.items() if v[0] == ex] for ex in EXERCISES}
    return [[k for k in batch if k is not None] for batch in itertools.zip_longest(*by_ex.values())]


BATCHES = _batches()


@pytest.fixture(autouse=True)
def grading_env(monkeypatch):
    """Run the cells as the autograder does (COURSE_GRADING=1)."""
    monkeypatch.setenv("COURSE_GRADING", "1")


@pytest.mark.parametrize("batch", BATCHES, ids=["+".join(b) for b in BATCHES])
def test_wrong_answers_are_caught_for_their_reason(batch, tmp_path):
    exercises = [W[k][0] for k in batch]
    replace = {}
    for k in batch:
        ex, src = W[k][0], W[k][1]
        replace[EXERCISES[ex][0][-1]] = src  # the exercise's own answer cell
    errors = run_graded(tmp_path, replace, exercises)
    caught = set()
    for k in batch:
        _, _, test_id, message = W[k]
        assert_caught(errors, test_id, message)
        caught.add(test_id)
    # the other exercises still pass (no NameError cascade); int8's per-channel cell uses quantize/dequantize,
    # so a wrong per-tensor answer may fail it too
    others = [t for t in graded_tests_of(exercises) if t not in caught
              and not (t == "int8_channel_tests" and "int8_tensor_tests" in caught)]
    assert_passes(errors, others)
