"""Chapter 4's hidden tests catch the classic wrong answers, and the solutions pass them.

Each case runs the source notebook up to a test cell (tests/nbrun.run_until) with a wrong answer swapped in.
"""
import pytest

from tests.nbrun import run_until

NB = "solutions/ch4_compression/ch4_compression.ipynb"

NUMEL_RATIO = '''
def count_nonzero_params(net):
    return sum(p.numel() for p in net.parameters())

def compression_ratio(baseline, compressed):
    return count_nonzero_params(baseline) / count_nonzero_params(compressed)
'''
PARAMS_NONZERO = '''
def count_nonzero_params(net):  # counts weight_orig on masked models
    return sum(int((p != 0).sum()) for p in net.parameters())

def compression_ratio(baseline, compressed):
    return count_nonzero_params(baseline) / count_nonzero_params(compressed)
'''
PRUNE_IN_PLACE = '''
def prune_copy(net, amount):  # the document: prunes the baseline itself
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    return net
'''
PRUNE_REMOVE = '''
def prune_copy(net, amount):  # a copy, but masks removed: fine-tuning lets the weights grow back
    net = copy.deepcopy(net)
    targets = [(m, "weight") for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in targets:
        prune.remove(m, name)
    return net
'''
SEQUENCE_REMOVE_FIRST = '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
    student = C.make_permanent(C.prune_global_l1(baseline, sparsity))  # prune.remove before fine-tuning
    loss = training.DistillationLoss(copy.deepcopy(baseline), temperature, alpha)
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)
    return C.quantize_static(student, train_iter, num_batches=calibration_batches)
'''
SEQUENCE_DYNAMIC = '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
    student = C.prune_global_l1(baseline, sparsity)
    loss = training.DistillationLoss(copy.deepcopy(baseline), temperature, alpha)
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)
    return C.quantize_dynamic(C.make_permanent(student))  # the document's dynamic quantization: fc only
'''
SEQUENCE_SELF_TEACHER = '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
    student = prune_copy(baseline, sparsity)
    loss = training.DistillationLoss(C.clone(student), temperature, alpha)  # teacher: a copy of the pruned student
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, loss=loss, progress=False)
    return C.quantize_static(student, train_iter, num_batches=calibration_batches)
'''
SEQUENCE_NO_DISTILLATION = '''
def compress_in_sequence(baseline, train_iter, sparsity, epochs, lr, temperature=4.0, alpha=0.5,
                         calibration_batches=2):
    student = prune_copy(baseline, sparsity)  # plain cross-entropy: no teacher at all
    opt = torch.optim.SGD(student.parameters(), lr=lr, momentum=0.9)
    training.train(student, train_iter, None, opt, epochs, progress=False)
    return C.quantize_static(student, train_iter, num_batches=calibration_batches)
'''
CHECK_LOOSE = '''
def check_pruning_entry(entry):  # the document: no validation beyond the key lookup
    if entry.get("method") != "pruning":
        raise ValueError("method")
    if not 0 <= entry["params"]["sparsity"] <= 1:
        raise ValueError("sparsity")
'''
LOGGING_DUPLICATES = '''
def setup_logging(path, level=logging.INFO):  # adds one more handler at every call
    logger = logging.getLogger("helpers.compression")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger
'''
@pytest.fixture(autouse=True)
def grading_env(monkeypatch):
    """Run the notebook as the autograder does (COURSE_GRADING=1: lesson repeats over seeds run once)."""
    monkeypatch.setenv("COURSE_GRADING", "1")


GRADED = ["ratio_tests", "prune_copy_tests", "sequence_tests", "config_check_tests", "logging_tests"]


def test_solutions_pass_every_test_cell():
    failed = run_until(NB, "combos_tests")
    assert not any(failed.values()), failed


def test_wrong_answers_fail():
    failed = run_until(NB, "logging_tests", replace={
        "ratio_impl": NUMEL_RATIO, "prune_copy_impl": PRUNE_IN_PLACE, "sequence_impl": SEQUENCE_REMOVE_FIRST,
        "config_check_impl": CHECK_LOOSE, "logging_impl": LOGGING_DUPLICATES})
    for gid in GRADED:
        assert failed[gid], f"{gid} did not catch the wrong answer"


@pytest.mark.parametrize("replace, gid", [
    ({"ratio_impl": PARAMS_NONZERO}, "ratio_tests"),
    ({"prune_copy_impl": PRUNE_REMOVE}, "prune_copy_tests"),
])
def test_more_wrong_answers_fail(replace, gid):
    assert run_until(NB, gid, replace=replace)[gid]


@pytest.mark.parametrize("wrong", [SEQUENCE_SELF_TEACHER, SEQUENCE_NO_DISTILLATION], ids=["self_teacher", "no_teacher"])
def test_sequence_needs_the_uncompressed_baseline_as_teacher(wrong):
    failed = run_until(NB, "sequence_tests", replace={"sequence_impl": wrong})
    assert failed["sequence_tests"] and not failed["prune_copy_tests"]


def test_dynamic_quantization_in_the_sequence_fails():
    failed = run_until(NB, "sequence_tests", replace={"sequence_impl": SEQUENCE_DYNAMIC})
    assert failed["sequence_tests"] and not failed["prune_copy_tests"]
