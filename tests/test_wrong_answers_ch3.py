"""Chapter 3's test cells catch the classic wrong answers, each for the reason it is wrong.

Each run executes the notebook up to the last exercise's test cell (the exercises come before the training
cells) with one wrong answer per exercise swapped in. The solutions of exercises 3-5 use the helpers' reference
groups and freezing, so one wrong answer cannot make another exercise's test fail; every wrong answer must fail
*its own* test cell with an ``AssertionError`` whose message names the property (``assert_caught``): a
``NameError`` or another exercise's failure does not count.
"""
from __future__ import annotations

import pytest

from tests.nbrun import assert_caught, run_cells

NB = "solutions/ch3_unfreezing/ch3_unfreezing.ipynb"
LAST = "warmup_tests"

# --- exercise 1: layer groups -------------------------------------------------------------------
GROUPS_NO_BN = '''
def get_layer_groups(net):
    # the stem without its BatchNorm: bn1's parameters belong to no group
    stem, stages, head = [], {}, []
    for name, child in net.named_children():
        if name.startswith("layer"):
            stages[name] = [child]
        elif isinstance(child, nn.Conv2d) and not stages:
            stem.append(child)
        elif isinstance(child, nn.Linear) and stages:
            head.append(child)
    return {"stem": stem, **stages, "head": head}
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

# --- exercise 2: freeze / unfreeze, BatchNorm included ------------------------------------------
FREEZE_REQUIRES_GRAD_ONLY = '''
def freeze_group(group_layers):
    # chapter 1's freezing: requires_grad only, the BatchNorm layers keep updating their statistics
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad = False

def unfreeze_group(group_layers):
    for layer in group_layers:
        for p in layer.parameters():
            p.requires_grad = True

def bn_freeze(net):
    pass
'''
FREEZE_FIRST_MODULE_ONLY = '''
def freeze_group(group_layers):
    layer = group_layers[0]                    # forgets bn1 in the stem
    layer.requires_grad_(False)
    for m in layer.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()

def unfreeze_group(group_layers):
    group_layers[0].requires_grad_(True)

def bn_freeze(net):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
'''
FREEZE_EVAL_ONLY = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.eval()                          # eval mode alone is not freezing: the weights still train

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.train()

def bn_freeze(net):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
'''
BN_FREEZE_NET_EVAL = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        layer.eval()

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)
        layer.train()

def bn_freeze(net):
    net.eval()                                # the trainable layers (and the head) leave training mode too
'''
BN_FREEZE_ALL_BN = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        for m in layer.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)
        for m in layer.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.train()

def bn_freeze(net):
    for m in net.modules():                   # every BatchNorm, trainable ones included
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
'''
BN_FREEZE_CHILDREN_ONLY = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()

def bn_freeze(net):
    for m in net.children():                  # direct children only: misses the BatchNorms inside the blocks
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
'''
BN_FREEZE_HELPER = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()

def bn_freeze(net):
    training.freeze_frozen_batchnorm(net)     # the course's version, not written
'''
UNFREEZE_KEEPS_EVAL = '''
def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        for m in layer.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)             # the BatchNorm layers stay in eval mode

def bn_freeze(net):
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
'''

# --- exercise 3: discriminative learning rates ---------------------------------------------------
DISC_FACTOR_PER_GROUP = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # the spread used as a factor per group: the stem gets max_lr / 100 ** 5
    n = len(groups)
    return [{"params": [p for m in mods for p in m.parameters()], "lr": max_lr / spread ** (n - 1 - i), "name": name}
            for i, (name, mods) in enumerate(groups.items())]
'''
DISC_OFF_BY_ONE = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # factor spread ** (1 / n): the first group does not reach max_lr / spread
    n = len(groups)
    return [{"params": [p for m in mods for p in m.parameters()], "lr": max_lr / spread ** ((n - 1 - i) / n),
             "name": name} for i, (name, mods) in enumerate(groups.items())]
'''
DISC_LINEAR = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # linear spacing between the two ends, not geometric
    n, low = len(groups), max_lr / spread
    return [{"params": [p for m in mods for p in m.parameters()], "lr": low + (max_lr - low) * i / (n - 1),
             "name": name} for i, (name, mods) in enumerate(groups.items())]
'''
DISC_WRONG_DIRECTION = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # largest rate at the input, smallest at the head
    n = len(groups)
    return [{"params": [p for m in mods for p in m.parameters()], "lr": max_lr / spread ** (i / (n - 1)),
             "name": name} for i, (name, mods) in enumerate(groups.items())]
'''
DISC_SIX_GROUPS = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # the factor of six groups, whatever the number of groups
    factor = spread ** (1 / 5)
    n = len(groups)
    return [{"params": [p for m in mods for p in m.parameters()], "lr": max_lr / factor ** (n - 1 - i),
             "name": name} for i, (name, mods) in enumerate(groups.items())]
'''
DISC_ONLY_TRAINABLE = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # only the parameters trainable *now*: the frozen groups are never trained after unfreezing
    if spread < 1:
        raise ValueError("spread must be >= 1")
    n, out = len(groups), []
    for i, (name, mods) in enumerate(groups.items()):
        params = [p for m in mods for p in m.parameters() if p.requires_grad]
        out.append({"params": params, "lr": max_lr / spread ** ((n - 1 - i) / (n - 1)), "name": name})
    return out
'''
DISC_HELPER = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    return models.geometric_param_groups(groups, max_lr, spread)   # the course's version, not written
'''
DISC_NO_CHECK = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    # a spread below 1 accepted: the input would train faster than the head
    n = len(groups)
    return [{"params": [p for m in mods for p in m.parameters()], "lr": max_lr / spread ** ((n - 1 - i) / (n - 1)),
             "name": name} for i, (name, mods) in enumerate(groups.items())]
'''

# --- exercise 4: gradual unfreezer --------------------------------------------------------------
UNFREEZER_HEAD = '''
class GradualUnfreezer:
    def __init__(self, every=1):
        self.every = every

    def on_epoch_start(self, epoch, net, optimizer):
'''
UNFREEZER_PROGRESSIVE_FREEZING = UNFREEZER_HEAD + '''
        # everything trainable at first, then freeze more and more of the first layers
        names = list(models.LAYER_GROUPS)
        k = min(len(names) - 1, epoch // self.every)
        models.freeze(net, names[:k])
        models.unfreeze(net, names[k:])
'''
UNFREEZER_FROM_INPUT = UNFREEZER_HEAD + '''
        # unfreezes from the input toward the head
        names = list(models.LAYER_GROUPS)
        k = min(len(names) - 1, epoch // self.every)
        trainable = names[:k] + ["head"]
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_NO_FREEZE = UNFREEZER_HEAD + '''
        # unfreezes the top groups but never freezes the others (a fresh network stays fully trainable)
        names = list(models.LAYER_GROUPS)
        models.unfreeze(net, names[len(names) - min(len(names), 1 + epoch // self.every):])
'''
UNFREEZER_KEEPS_A_REFERENCE = '''
class GradualUnfreezer:
    def __init__(self, every=1):
        self.every = every
        self.reference = models.GradualUnfreezer(every)  # the course's own, built before any test blocks it

    def on_epoch_start(self, epoch, net, optimizer):
        self.reference.on_epoch_start(epoch, net, optimizer)
'''
UNFREEZER_EVERY_IGNORED = UNFREEZER_HEAD + '''
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch):]     # one group per epoch, whatever every is
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_NEVER_THE_STEM = UNFREEZER_HEAD + '''
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names) - 1, 1 + epoch // self.every):]   # the stem stays frozen
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_NO_OPTIMIZER_CHECK = UNFREEZER_HEAD + '''
        # right schedule, but an optimizer that misses the unfrozen groups goes unnoticed
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_CHECKS_ANY = UNFREEZER_HEAD + '''
        # the optimizer "knows" a group when it knows any one of its parameters
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        known = grading.optimizer_param_ids(optimizer)
        for name in trainable:
            if not any(id(p) in known for p in models.group_parameters(net, name)):
                raise ValueError(f"{name} is not in the optimizer")
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_CHECKS_NAMES = UNFREEZER_HEAD + '''
        # checks the optimizer's group names, not its parameters
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        registered = {g.get("name") for g in optimizer.param_groups}
        for name in trainable[:-1]:          # the head is always known
            if name not in registered:
                raise ValueError(f"{name} is not in the optimizer")
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_CHECKS_AFTER_CHANGING = UNFREEZER_HEAD + '''
        # unfreezes first, then checks: the network is left half-changed when it raises
        names = list(models.LAYER_GROUPS)
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        models.freeze(net, [n for n in names if n not in trainable])
        models.unfreeze(net, trainable)
        known = grading.optimizer_param_ids(optimizer)
        for name in trainable:
            if any(id(p) not in known for p in models.group_parameters(net, name)):
                raise ValueError(f"the optimizer does not know {name}")
'''
UNFREEZER_DELEGATES = UNFREEZER_HEAD + '''
        models.GradualUnfreezer(self.every).on_epoch_start(epoch, net, optimizer)   # the course's, not written
'''
UNFREEZER_SUBCLASS = '''
class GradualUnfreezer(models.GradualUnfreezer):
    pass
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
WARMUP_HELPER = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    return training.warmup_cosine(optimizer, warmup_steps, total_steps, start_factor)   # not written
'''
WARMUP_FIXED_START = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    # start_factor ignored: always 0.1
    def f(s):
        if s < warmup_steps:
            return 0.1 + 0.9 * s / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (s - warmup_steps) / (total_steps - warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)
'''
WARMUP_OFF_BY_ONE = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    # reaches the full rate one step early
    def f(s):
        if s < warmup_steps:
            return start_factor + (1 - start_factor) * min(1.0, s / (warmup_steps - 1))
        return 0.5 * (1 + math.cos(math.pi * (s - warmup_steps) / (total_steps - warmup_steps)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)
'''
WARMUP_ONE_RATE = '''
class _OneRate:
    # every group gets the first group's rate times the factor: the discriminative ratios are lost
    def __init__(self, optimizer, f):
        self.optimizer, self.f, self.s = optimizer, f, 0
        self.base = optimizer.param_groups[0]["lr"]
        self._apply()

    def _apply(self):
        for g in self.optimizer.param_groups:
            g["lr"] = self.base * self.f(self.s)

    def step(self):
        self.s += 1
        self._apply()

def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    def f(s):
        if s < warmup_steps:
            return start_factor + (1 - start_factor) * s / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup_steps) / (total_steps - warmup_steps))))
    return _OneRate(optimizer, f)
'''

# one wrong answer per exercise in each run: {solution cell: (source, test cell, why it must fail)}
BATCHES = {
    "a": {"layer_groups_impl": (GROUPS_NO_BN, "layer_groups_tests", r"parameters in no group: bn1\.weight"),
          "freeze_impl": (FREEZE_REQUIRES_GRAD_ONLY, "freeze_tests",
                          r"freeze_group puts the BatchNorm layers of the group in eval mode"),
          "discriminative_impl": (DISC_FACTOR_PER_GROUP, "discriminative_tests",
                                  r"the head gets max_lr and the first group max_lr / spread"),
          "unfreezer_impl": (UNFREEZER_PROGRESSIVE_FREEZING, "unfreezer_schedule_tests",
                             r"epoch 0 trains the head alone"),
          "warmup_impl": (WARMUP_COSINE_ONLY, "warmup_tests", r"warmup starts at start_factor \* lr")},
    "b": {"layer_groups_impl": (GROUPS_REVERSED, "layer_groups_tests", r"expected the keys stem, layer1"),
          "freeze_impl": (FREEZE_FIRST_MODULE_ONLY, "freeze_tests",
                          r"freeze_group sets requires_grad=False .*still trainable: \['bn1\.weight'"),
          "discriminative_impl": (DISC_WRONG_DIRECTION, "discriminative_tests", r"the head gets max_lr"),
          "unfreezer_impl": (UNFREEZER_FROM_INPUT, "unfreezer_schedule_tests", r"epoch 1 adds layer4"),
          "warmup_impl": (WARMUP_FROM_ONE, "warmup_tests", r"warmup starts at start_factor")},
    "c": {"layer_groups_impl": (GROUPS_LITERAL, "layer_groups_tests",
                                r"derive the groups from net\.named_children\(\)"),
          "freeze_impl": (FREEZE_EVAL_ONLY, "freeze_tests", r"freeze_group sets requires_grad=False"),
          "discriminative_impl": (DISC_OFF_BY_ONE, "discriminative_tests", r"the first group max_lr / spread"),
          "unfreezer_impl": (UNFREEZER_NO_OPTIMIZER_CHECK, "unfreezer_optimizer_tests",
                             r"the optimizer does not know it: raise ValueError"),
          "warmup_impl": (WARMUP_HELPER, "warmup_tests", r"write the scheduler yourself")},
    "d": {"layer_groups_impl": (GROUPS_WITH_PARAMETERLESS, "layer_groups_tests",
                                r"the head is the children with parameters after the stages"),
          "freeze_impl": (BN_FREEZE_NET_EVAL, "freeze_tests", r"bn_freeze changes only BatchNorm layers"),
          "discriminative_impl": (DISC_LINEAR, "discriminative_tests", r"geometric spacing"),
          "unfreezer_impl": (UNFREEZER_CHECKS_ANY, "unfreezer_optimizer_tests",
                             r"the optimizer misses layer4's BatchNorm parameters"),
          "warmup_impl": (WARMUP_FIXED_START, "warmup_tests", r"use the arguments")},
    "e": {"layer_groups_impl": (GROUPS_LAST_CHILD_HEAD, "layer_groups_tests",
                                r"the head is every child with parameters after the last stage"),
          "freeze_impl": (BN_FREEZE_ALL_BN, "freeze_tests",
                          r"only the BatchNorm layers whose parameters are all frozen"),
          "discriminative_impl": (DISC_SIX_GROUPS, "discriminative_tests", r"three groups with a spread of 100"),
          "unfreezer_impl": (UNFREEZER_CHECKS_NAMES, "unfreezer_optimizer_tests",
                             r"SGD\(net\.parameters\(\)\) knows every parameter"),
          "warmup_impl": (WARMUP_OFF_BY_ONE, "warmup_tests", r"the warmup must increase")},
    "f": {"freeze_impl": (BN_FREEZE_CHILDREN_ONLY, "freeze_tests", r"nested ones too"),
          "discriminative_impl": (DISC_ONLY_TRAINABLE, "discriminative_tests",
                                  r"register every group, frozen ones included"),
          "unfreezer_impl": (UNFREEZER_CHECKS_AFTER_CHANGING, "unfreezer_optimizer_tests",
                             r"raise before changing anything"),
          "warmup_impl": (WARMUP_ONE_RATE, "warmup_tests", r"every group keeps its own rate")},
    "g": {"freeze_impl": (BN_FREEZE_HELPER, "freeze_tests", r"write bn_freeze yourself"),
          "discriminative_impl": (DISC_HELPER, "discriminative_tests", r"write the rates yourself"),
          "unfreezer_impl": (UNFREEZER_DELEGATES, "unfreezer_schedule_tests", r"write the unfreezer yourself")},
    "h": {"freeze_impl": (UNFREEZE_KEEPS_EVAL, "freeze_tests", r"back in training mode"),
          "discriminative_impl": (DISC_NO_CHECK, "discriminative_tests", r"a spread below 1"),
          "unfreezer_impl": (UNFREEZER_SUBCLASS, "unfreezer_schedule_tests", r"do not subclass")},
    "i": {"unfreezer_impl": (UNFREEZER_EVERY_IGNORED, "unfreezer_schedule_tests", r"every=2")},
    "j": {"unfreezer_impl": (UNFREEZER_NEVER_THE_STEM, "unfreezer_schedule_tests", r"epoch 5")},
    "k": {"unfreezer_impl": (UNFREEZER_NO_FREEZE, "unfreezer_schedule_tests", r"epoch 0 trains the head alone")},
    "l": {"unfreezer_impl": (UNFREEZER_KEEPS_A_REFERENCE, "unfreezer_schedule_tests",
                             r"write the unfreezer yourself: the tests switch off models.GradualUnfreezer")},
}


def test_reference_solution_passes():
    errors = run_cells(NB, LAST)
    assert errors and not any(errors.values()), errors


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_wrong_answers_are_caught_for_their_reason(batch):
    wrong = BATCHES[batch]
    errors = run_cells(NB, LAST, replace={impl: src for impl, (src, _, _) in wrong.items()})
    for impl, (_, test_id, why) in wrong.items():
        assert_caught(errors, test_id, why)
