"""Chapter 3's hidden tests catch the classic wrong answers (and pass the reference solution).

Each run executes the notebook up to the last exercise's test cell (the exercises come before the training
cells) with several wrong answers swapped in at once. The solutions of exercises 3-5 use the helpers'
reference groups and freezing, so one wrong answer cannot make another exercise's test fail: each failing
test cell is caused by its own wrong answer.
"""
from __future__ import annotations

import pytest

from tests.nbrun import run_until

NB = "solutions/ch3_unfreezing/ch3_unfreezing.ipynb"
LAST = "warmup_tests"
TESTS = ["layer_groups_tests", "freeze_tests", "discriminative_tests", "unfreezer_tests", "warmup_tests"]

# --- exercise 1: layer groups -------------------------------------------------------------------
GROUPS_NO_BN = '''
def get_layer_groups(net):
    # the stem without its BatchNorm: bn1's parameters belong to no group
    return {"stem": [net.conv1], "layer1": [net.layer1], "layer2": [net.layer2],
            "layer3": [net.layer3], "layer4": [net.layer4], "head": [net.fc]}
'''
GROUPS_REVERSED = '''
def get_layer_groups(net):
    # output to input
    return {"head": [net.fc], "layer4": [net.layer4], "layer3": [net.layer3],
            "layer2": [net.layer2], "layer1": [net.layer1], "stem": [net.conv1, net.bn1]}
'''
GROUPS_LITERAL = '''
def get_layer_groups(net):
    # the groups written out for ResNet-18: right for it, wrong for a deeper stem, a 2-layer head, 3 stages
    return {"stem": [net.conv1, net.bn1], "layer1": [net.layer1], "layer2": [net.layer2],
            "layer3": [net.layer3], "layer4": [net.layer4], "head": [net.fc]}
'''
GROUPS_WITH_PARAMETERLESS = '''
def get_layer_groups(net):
    # derived, but relu / maxpool / avgpool end up in the stem and the head
    stem, stages, head = [], {}, []
    for name, child in net.named_children():
        if name.startswith("layer"):
            stages[name] = [child]
        else:
            (head if stages else stem).append(child)
    return {"stem": stem, **stages, "head": head}
'''
GROUPS_LAST_CHILD_HEAD = '''
def get_layer_groups(net):
    # the head is only the last child; the other children after the stages are dropped
    children = list(net.named_children())
    stem, stages = [], {}
    for name, child in children[:-1]:
        if name.startswith("layer"):
            stages[name] = [child]
        elif not stages and any(True for _ in child.parameters()):
            stem.append(child)
    return {"stem": stem, **stages, "head": [children[-1][1]]}
'''

# --- exercise 2: freeze / unfreeze --------------------------------------------------------------
FREEZE_COUNTS_TENSORS = '''
def freeze_group(group_layers):
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad = False

def unfreeze_group(group_layers):
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad = True

def count_trainable(model):
    return len([p for p in model.parameters() if p.requires_grad])   # tensors, not elements
'''
FREEZE_FIRST_MODULE_ONLY = '''
def freeze_group(group_layers):
    for p in group_layers[0].parameters():   # forgets bn1 in the stem
        p.requires_grad = False

def unfreeze_group(group_layers):
    for p in group_layers[0].parameters():
        p.requires_grad = True

def count_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
'''
FREEZE_WITH_EVAL = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.eval()                          # eval mode is not freezing

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.train()

def count_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
'''

# --- exercise 3: discriminative learning rates ---------------------------------------------------
DISC_ONLY_TRAINABLE = '''
def discriminative_param_groups(net, base_lr, factor=2.6):
    # the source document's bug: only the parameters trainable *now*
    out = []
    for k, name in enumerate(["head", "layer4", "layer3", "layer2", "layer1", "stem"]):
        params = [p for p in models.group_parameters(net, name) if p.requires_grad]
        if params:
            out.append({"params": params, "lr": base_lr / factor ** k, "name": name})
    return out
'''
DISC_WRONG_DIRECTION = '''
def discriminative_param_groups(net, base_lr, factor=2.6):
    # largest rate at the input, smallest at the head
    return [{"params": models.group_parameters(net, name), "lr": base_lr / factor ** k, "name": name}
            for k, name in enumerate(models.LAYER_GROUPS)]
'''

# --- exercise 4: gradual unfreezer --------------------------------------------------------------
UNFREEZER_PROGRESSIVE_FREEZING = '''
class GradualUnfreezer:
    # doc 000: everything trainable at first, then freeze more and more of the first layers
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
        names = list(models.LAYER_GROUPS)
        k = min(len(names) - 1, epoch // self.every)
        models.freeze(net, names[:k])
        models.unfreeze(net, names[k:])
'''
UNFREEZER_FROM_INPUT = '''
class GradualUnfreezer:
    # unfreezes from the input toward the head
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
        names = list(models.LAYER_GROUPS)
        k = min(len(names) - 1, epoch // self.every)
        trainable = names[:k] + ["head"]
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_NO_OPTIMIZER_CHECK = '''
class GradualUnfreezer:
    # right schedule, but an optimizer that misses the unfrozen groups goes unnoticed
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''

# --- exercise 5: warmup + cosine ----------------------------------------------------------------
WARMUP_COSINE_ONLY = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    # no warmup: starts at the full learning rate
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
'''
WARMUP_FROM_ONE = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    # the "warmup" is inverted: it starts at the full rate and goes down to start_factor
    def f(s):
        if s < warmup_steps:
            return 1 - (1 - start_factor) * s / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (s - warmup_steps) / (total_steps - warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)
'''

# --- other correct answers must pass too ---------------------------------------------------------
ALT_UNFREEZER_STATEFUL = '''
class GradualUnfreezer:
    # a stateful but correct version: freeze all but the head at epoch 0, then one more group per stage
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
        groups = get_layer_groups(net)
        order = list(reversed(groups))              # head first
        if epoch == 0:
            for name in order[1:]:
                freeze_group(groups[name])
        if epoch % self.every == 0 and epoch // self.every < len(order):
            name = order[epoch // self.every]
            known = {id(p) for g in optimizer.param_groups for p in g["params"]}
            if any(id(p) not in known for m in groups[name] for p in m.parameters()):
                raise ValueError(f"{name} is not in the optimizer")
            unfreeze_group(groups[name])
'''
ALT_WARMUP_SEQUENTIAL = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=0.0)
    return SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_steps])
'''
ALT_GROUPS_TWO_PASSES = '''
def get_layer_groups(net):
    # another correct answer: find the stages first, then split the other children around them
    children = list(net.named_children())
    idx = [i for i, (n, _) in enumerate(children) if n.startswith("layer")]
    has_params = lambda m: len(list(m.parameters())) > 0
    groups = {"stem": [m for _, m in children[:idx[0]] if has_params(m)]}
    groups.update({n: [m] for n, m in children[idx[0]:idx[-1] + 1]})
    groups["head"] = [m for _, m in children[idx[-1] + 1:] if has_params(m)]
    return groups
'''
ALT_DISC_HELPERS = '''
def discriminative_param_groups(net, base_lr, factor=2.6):
    return models.param_groups(net, base_lr, models.discriminative_mult(factor))
'''


def _failed(results: dict[str, bool]) -> list[str]:
    return [t for t in TESTS if results[t]]


def test_reference_solution_passes():
    results = run_until(NB, LAST)
    assert not any(results.values()), results


def test_other_correct_answers_pass():
    results = run_until(NB, LAST, replace={"layer_groups_impl": ALT_GROUPS_TWO_PASSES,
                                           "discriminative_impl": ALT_DISC_HELPERS,
                                           "unfreezer_impl": ALT_UNFREEZER_STATEFUL,
                                           "warmup_impl": ALT_WARMUP_SEQUENTIAL})
    assert not any(results.values()), results


def test_wrong_answers_batch_a():
    # stem without bn1, counting tensors, optimizer missing frozen groups, progressive freezing, no warmup
    results = run_until(NB, LAST, replace={"layer_groups_impl": GROUPS_NO_BN,
                                           "freeze_impl": FREEZE_COUNTS_TENSORS,
                                           "discriminative_impl": DISC_ONLY_TRAINABLE,
                                           "unfreezer_impl": UNFREEZER_PROGRESSIVE_FREEZING,
                                           "warmup_impl": WARMUP_COSINE_ONLY})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_b():
    # groups in the wrong order, first module only, wrong LR direction, unfreezing from the input,
    # inverted warmup
    results = run_until(NB, LAST, replace={"layer_groups_impl": GROUPS_REVERSED,
                                           "freeze_impl": FREEZE_FIRST_MODULE_ONLY,
                                           "discriminative_impl": DISC_WRONG_DIRECTION,
                                           "unfreezer_impl": UNFREEZER_FROM_INPUT,
                                           "warmup_impl": WARMUP_FROM_ONE})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_c():
    # the ResNet-18 literal; eval() instead of requires_grad; an unfreezer that lets an optimizer missing the
    # unfrozen groups pass
    results = run_until(NB, "unfreezer_tests", replace={"layer_groups_impl": GROUPS_LITERAL,
                                                        "freeze_impl": FREEZE_WITH_EVAL,
                                                        "unfreezer_impl": UNFREEZER_NO_OPTIMIZER_CHECK})
    assert results["layer_groups_tests"] and results["freeze_tests"] and results["unfreezer_tests"], results


@pytest.mark.parametrize("wrong", [GROUPS_WITH_PARAMETERLESS, GROUPS_LAST_CHILD_HEAD])
def test_wrong_layer_groups(wrong):
    # parameterless modules in the groups; a head of the last child only
    results = run_until(NB, "layer_groups_tests", replace={"layer_groups_impl": wrong})
    assert results["layer_groups_tests"], results
