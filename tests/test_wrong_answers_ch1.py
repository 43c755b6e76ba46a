"""Chapter 1's hidden tests catch the classic wrong answers (and pass the reference solution).

Each run executes the notebook up to the last exercise's test cell (the exercises come before the training
cells) with one wrong answer per exercise swapped in; the two exercises do not depend on each other.
"""
from __future__ import annotations

from tests.nbrun import run_until

NB = "solutions/ch1_basics/ch1_basics.ipynb"
LAST = "param_groups_tests"
TESTS = ["freeze_head_tests", "param_groups_tests"]

# --- exercise 1: freeze_all_but_head ------------------------------------------------------------
FREEZE_FORGETS_STEM = '''
def freeze_all_but_head(net):
    # only the four stages: the stem conv1/bn1 stays trainable
    for layer in [net.layer1, net.layer2, net.layer3, net.layer4]:
        for p in layer.parameters():
            p.requires_grad = False
    return net
'''
FREEZE_HEAD_NOT_REENABLED = '''
def freeze_all_but_head(net):
    # skips the head instead of making it trainable: a head frozen before stays frozen
    for name, p in net.named_parameters():
        if not name.startswith("fc."):
            p.requires_grad = False
    return net
'''
FREEZE_REPLACES_HEAD = '''
def freeze_all_but_head(net):
    # the source document's order applied to a net that already has its head: a new, untrained fc
    for p in net.parameters():
        p.requires_grad = False
    net.fc = nn.Linear(net.fc.in_features, net.fc.out_features)
    return net
'''

# --- exercise 2: finetune_param_groups ----------------------------------------------------------
GROUPS_ONLY_TRAINABLE = '''
def finetune_param_groups(net, lr):
    # the classic bug: layer4 is frozen now, so it is left out, and never trained after unfreezing
    groups = [{"params": [p for p in net.layer4.parameters() if p.requires_grad], "lr": lr / 10, "name": "layer4"},
              {"params": [p for p in net.fc.parameters() if p.requires_grad], "lr": lr, "name": "head"}]
    return [g for g in groups if g["params"]] or groups[1:]
'''
GROUPS_WRONG_DIRECTION = '''
def finetune_param_groups(net, lr):
    # the pretrained layer gets the larger rate
    return [{"params": list(net.layer4.parameters()), "lr": lr * 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
'''
GROUPS_SWAPPED = '''
def finetune_param_groups(net, lr):
    # the rates of the two groups swapped
    return [{"params": list(net.layer4.parameters()), "lr": lr, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr / 10, "name": "head"}]
'''


def _failed(results: dict[str, bool]) -> list[str]:
    return [t for t in TESTS if results[t]]


def test_reference_solution_passes():
    results = run_until(NB, LAST)
    assert not any(results.values()), results


def test_wrong_answers_batch_a():
    results = run_until(NB, LAST, replace={"freeze_head_impl": FREEZE_FORGETS_STEM,
                                           "param_groups_impl": GROUPS_ONLY_TRAINABLE})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_b():
    results = run_until(NB, LAST, replace={"freeze_head_impl": FREEZE_HEAD_NOT_REENABLED,
                                           "param_groups_impl": GROUPS_WRONG_DIRECTION})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_c():
    results = run_until(NB, LAST, replace={"freeze_head_impl": FREEZE_REPLACES_HEAD,
                                           "param_groups_impl": GROUPS_SWAPPED})
    assert _failed(results) == TESTS, results
