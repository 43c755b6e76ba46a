"""Chapter 1: correct answers written differently from the solution get full points.

Each run swaps one right answer per exercise into the notebook and executes it up to the last exercise's test
cell: every test cell (visible and hidden tests) must pass. The two exercises are independent, so one run checks
one answer of each.
"""
from __future__ import annotations

import pytest

from tests.nbrun import assert_passes, run_cells

NB = "solutions/ch1_basics/ch1_basics.ipynb"
LAST = "param_groups_tests"
CELLS = ["freeze_head_impl", "freeze_head_tests", "param_groups_impl", "param_groups_tests"]

# --- exercise 1: freeze_all_but_head -----------------------------------------------------------
FREEZE_MODULE_API = '''
def freeze_all_but_head(net):
    # nn.Module.requires_grad_ on the whole net, then on the head
    net.requires_grad_(False)
    net.fc.requires_grad_(True)
    return net
'''
FREEZE_BY_NAME = '''
def freeze_all_but_head(net):
    # one pass over the named parameters: trainable exactly when it belongs to fc
    head = {id(p) for p in net.fc.parameters()}
    for name, p in net.named_parameters():
        p.requires_grad = id(p) in head
    return net
'''
FREEZE_BY_CHILDREN = '''
def freeze_all_but_head(net):
    # module by module: every top-level child but fc frozen, fc trainable
    for name, child in net.named_children():
        for p in child.parameters():
            p.requires_grad = (name == "fc")
    return net
'''

# --- exercise 2: finetune_param_groups ----------------------------------------------------------
GROUPS_HEAD_FIRST_TUPLES = '''
def finetune_param_groups(net, lr):
    # the other order, tuples of parameters, lr * 0.1
    head = {"name": "head", "lr": lr, "params": tuple(net.fc.parameters())}
    body = {"name": "layer4", "lr": lr * 0.1, "params": tuple(net.layer4.parameters())}
    return [head, body]
'''
GROUPS_BY_PREFIX = '''
def finetune_param_groups(net, lr):
    # by parameter names, frozen or not
    named = list(net.named_parameters())
    return [{"params": [p for n, p in named if n.startswith("layer4.")], "lr": lr / 10, "name": "layer4"},
            {"params": [p for n, p in named if n.startswith("fc.")], "lr": lr, "name": "head"}]
'''
GROUPS_WITH_GROUP_PARAMETERS = '''
def finetune_param_groups(net, lr):
    # the course's per-group parameter list (not its param_groups shortcut), in a loop
    rates = {"layer4": lr / 10, "head": lr}
    return [{"params": models.group_parameters(net, name), "lr": rate, "name": name} for name, rate in rates.items()]
'''

PAIRS = [(FREEZE_MODULE_API, GROUPS_HEAD_FIRST_TUPLES),
         (FREEZE_BY_NAME, GROUPS_BY_PREFIX),
         (FREEZE_BY_CHILDREN, GROUPS_WITH_GROUP_PARAMETERS)]


@pytest.mark.parametrize("freeze, groups", PAIRS, ids=["module_api+tuples", "by_name+prefix", "children+loop"])
def test_right_answers_get_full_points(freeze, groups):
    errors = run_cells(NB, LAST, replace={"freeze_head_impl": freeze, "param_groups_impl": groups})
    assert_passes(errors, CELLS)
