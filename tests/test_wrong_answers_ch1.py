"""Chapter 1's tests catch the classic wrong answers, each for the right reason.

Each run executes the notebook up to the last exercise's test cell (the exercises come before the training
cells) with one wrong answer per exercise swapped in: the two exercises are independent, so each run checks two
wrong answers, and each must be caught by its own exercise's test cell with the message naming the property it
breaks (a ``NameError`` or the other exercise's failure does not count).
"""
from __future__ import annotations

import pytest

from tests.nbrun import assert_caught, run_cells

NB = "solutions/ch1_basics/ch1_basics.ipynb"
LAST = "param_groups_tests"

# --- exercise 1: freeze_all_but_head -----------------------------------------------------------
# (source, the message of the assert that must catch it)
FREEZE_FORGETS_STEM = ('''
def freeze_all_but_head(net):
    # only the four stages: the stem conv1/bn1 stays trainable
    for layer in [net.layer1, net.layer2, net.layer3, net.layer4]:
        for p in layer.parameters():
            p.requires_grad = False
    return net
''', "the stem is still trainable")
FREEZE_CONVS_ONLY = ('''
def freeze_all_but_head(net):
    # freezes the convolutions only: every BatchNorm (the stem's bn1 included) keeps training
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.requires_grad = False
    return net
''', "the stem is still trainable")
FREEZE_WITH_EVAL = ('''
def freeze_all_but_head(net):
    # eval mode is not freezing: the parameters still get gradients
    for name, module in net.named_children():
        if name != "fc":
            module.eval()
    return net
''', "the stem is still trainable")
FREEZE_WITH_HELPER = ('''
def freeze_all_but_head(net):
    # the course's shortcut: the exercise is to write the freezing
    models.freeze(net)
    models.unfreeze(net, "head")
    return net
''', "write the freezing yourself with requires_grad")
FREEZE_ON_A_COPY = ('''
def freeze_all_but_head(net):
    # freezes a copy: the caller's net is unchanged
    net = copy.deepcopy(net)
    for p in net.parameters():
        p.requires_grad = False
    for p in net.fc.parameters():
        p.requires_grad = True
    return net
''', "return the same net")
FREEZE_HEAD_NOT_REENABLED = ('''
def freeze_all_but_head(net):
    # skips the head instead of making it trainable: a head frozen before stays frozen
    for name, p in net.named_parameters():
        if not name.startswith("fc."):
            p.requires_grad = False
    return net
''', "head was frozen .* must be exactly the head's")
FREEZE_REPLACES_HEAD = ('''
def freeze_all_but_head(net):
    # the source document's order applied to a net that already has its head: a new, untrained fc
    for p in net.parameters():
        p.requires_grad = False
    net.fc = nn.Linear(net.fc.in_features, net.fc.out_features)
    return net
''', "do not replace the head")
FREEZE_REINITIALISES_HEAD = ('''
def freeze_all_but_head(net):
    # "a fresh head": resets the weights the head already has
    for p in net.parameters():
        p.requires_grad = False
    net.fc.reset_parameters()
    for p in net.fc.parameters():
        p.requires_grad = True
    return net
''', "do not change or re-initialise any weight")
FREEZE_LINEAR_HEAD_ONLY = ('''
def freeze_all_but_head(net):
    # assumes the head is a Linear: fails on any other head module
    for p in net.parameters():
        p.requires_grad = False
    net.fc.weight.requires_grad = True
    net.fc.bias.requires_grad = True
    return net
''', "net.fc may be any module")

# --- exercise 2: finetune_param_groups ----------------------------------------------------------
GROUPS_ONLY_TRAINABLE = ('''
def finetune_param_groups(net, lr):
    # the classic bug: layer4 is frozen now, so it is left out, and never trained after unfreezing
    groups = [{"params": [p for p in net.layer4.parameters() if p.requires_grad], "lr": lr / 10, "name": "layer4"},
              {"params": [p for p in net.fc.parameters() if p.requires_grad], "lr": lr, "name": "head"}]
    return [g for g in groups if g["params"]] or groups[1:]
''', "no group named 'layer4'.*register layer4 although it is frozen")
GROUPS_EMPTY_LAYER4 = ('''
def finetune_param_groups(net, lr):
    # the same bug, the group kept but empty
    return [{"params": [p for p in net.layer4.parameters() if p.requires_grad], "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
''', "'layer4' group misses .* frozen ones included")
GROUPS_WRONG_DIRECTION = ('''
def finetune_param_groups(net, lr):
    # the pretrained layer gets the larger rate
    return [{"params": list(net.layer4.parameters()), "lr": lr * 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
''', r"layer4's rate is lr / 10")
GROUPS_SWAPPED = ('''
def finetune_param_groups(net, lr):
    # the rates of the two groups swapped
    return [{"params": list(net.layer4.parameters()), "lr": lr, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr / 10, "name": "head"}]
''', "the head's rate is lr")
GROUPS_WHOLE_BACKBONE = ('''
def finetune_param_groups(net, lr):
    # the whole backbone in the "layer4" group: stem .. layer3 would train too once unfrozen
    body = [p for n, p in net.named_parameters() if not n.startswith("fc.")]
    return [{"params": body, "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
''', "'layer4' group holds .* parameters of other layers")
GROUPS_WITH_HELPER = ('''
def finetune_param_groups(net, lr):
    # the course's helper, filtered: the exercise is to build the groups
    return [g for g in models.param_groups(net, lr, {"layer4": 0.1}) if g["name"] in ("layer4", "head")]
''', "models.param_groups is not allowed")
GROUPS_UNFREEZES_LAYER4 = ('''
def finetune_param_groups(net, lr):
    # "registers" layer4 by unfreezing it: stage 1 then trains layer4 too
    for p in net.layer4.parameters():
        p.requires_grad = True
    return [{"params": list(net.layer4.parameters()), "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
''', "do not change which parameters are trainable")
GROUPS_GENERATORS = ('''
def finetune_param_groups(net, lr):
    # generators: consumed by the first reader, an empty group for the next one
    return [{"params": net.layer4.parameters(), "lr": lr / 10, "name": "layer4"},
            {"params": net.fc.parameters(), "lr": lr, "name": "head"}]
''', "give lists of parameters")
GROUPS_FIRST_BLOCK_ONLY = ('''
def finetune_param_groups(net, lr):
    # only the first block of layer4 (the mini nets have one; ResNet-18 has two)
    return [{"params": list(net.layer4[0].parameters()), "lr": lr / 10, "name": "layer4"},
            {"params": list(net.fc.parameters()), "lr": lr, "name": "head"}]
''', "ResNet: the 'layer4' group misses")
GROUPS_GEOMETRIC_HELPER = ('''
def finetune_param_groups(net, lr):
    # chapter 3's helper over the two groups, spread 10: right groups and rates, but not written here
    return models.geometric_param_groups({"layer4": [net.layer4], "head": [net.fc]}, lr, spread=10)
''', r"models.param_groups is not allowed in this exercise \(nor models.geometric_param_groups\)")
GROUPS_HELPER_ALIAS = ('''
from helpers.models import param_groups as make_groups
def finetune_param_groups(net, lr):
    # the course's helper by another name (a mock.patch of models.param_groups alone would miss it)
    return [g for g in make_groups(net, lr, {"layer4": 0.1}) if g["name"] in ("layer4", "head")]
''', "models.param_groups is not allowed")

# one wrong answer per exercise and run: the runs cover every wrong answer of both exercises
PAIRS = [
    (FREEZE_FORGETS_STEM, GROUPS_ONLY_TRAINABLE),
    (FREEZE_CONVS_ONLY, GROUPS_EMPTY_LAYER4),
    (FREEZE_WITH_EVAL, GROUPS_WRONG_DIRECTION),
    (FREEZE_WITH_HELPER, GROUPS_SWAPPED),
    (FREEZE_ON_A_COPY, GROUPS_WHOLE_BACKBONE),
    (FREEZE_HEAD_NOT_REENABLED, GROUPS_WITH_HELPER),
    (FREEZE_REPLACES_HEAD, GROUPS_UNFREEZES_LAYER4),
    (FREEZE_REINITIALISES_HEAD, GROUPS_GENERATORS),
    (FREEZE_LINEAR_HEAD_ONLY, GROUPS_FIRST_BLOCK_ONLY),
    (FREEZE_FORGETS_STEM, GROUPS_GEOMETRIC_HELPER),
    (FREEZE_WITH_HELPER, GROUPS_HELPER_ALIAS),
]


@pytest.mark.parametrize("freeze, groups", PAIRS, ids=[f"pair{i}" for i in range(len(PAIRS))])
def test_wrong_answers_are_caught_for_their_reason(freeze, groups):
    errors = run_cells(NB, LAST, replace={"freeze_head_impl": freeze[0], "param_groups_impl": groups[0]})
    assert errors["freeze_head_impl"] is None and errors["param_groups_impl"] is None, errors
    assert_caught(errors, "freeze_head_tests", freeze[1])
    assert_caught(errors, "param_groups_tests", groups[1])
