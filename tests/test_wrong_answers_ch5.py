"""Chapter 5's hidden tests catch the classic wrong answers (and pass the reference solution).

Each run executes the notebook up to the last autograded test cell (``kd_tests``; all autograded exercises come
before the training cells) with several wrong answers swapped in at once. The test cells do not use each
other's solutions, so each failing test cell is caused by its own wrong answer.
"""
from __future__ import annotations

import pytest

from tests.nbrun import run_until

NB = "solutions/ch5_recovery/ch5_recovery.ipynb"
LAST = "kd_tests"
TESTS = ["clip_tests", "optimizer_tests", "bn_tests", "scheduler_tests", "kd_tests"]

# --- exercise 1: gradient clipping ---------------------------------------------------------------
CLIP_PER_TENSOR = '''
def clip_gradients(parameters, max_norm):
    # each tensor clipped by its own norm: the direction of the step changes
    total = 0.0
    for p in parameters:
        if p.grad is None:
            continue
        n = p.grad.norm().item()
        total += n ** 2
        if n > max_norm:
            p.grad.mul_(max_norm / (n + 1e-6))
    return total ** 0.5
'''
CLIP_GENERATOR_TWICE = '''
def clip_gradients(parameters, max_norm):
    # iterates `parameters` twice: with net.parameters() (a generator) the second loop is empty
    total = sum((p.grad ** 2).sum() for p in parameters if p.grad is not None) ** 0.5
    total = float(total)
    if total > max_norm:
        for p in parameters:
            if p.grad is not None:
                p.grad.mul_(max_norm / (total + 1e-6))
    return total
'''
CLIP_BY_VALUE = '''
def clip_gradients(parameters, max_norm):
    # clip_grad_value_: clamps each element, changes the direction
    params = [p for p in parameters if p.grad is not None]
    total = float(sum((p.grad ** 2).sum() for p in params) ** 0.5) if params else 0.0
    for p in params:
        p.grad.clamp_(-max_norm, max_norm)
    return total
'''
CLIP_ALWAYS_RESCALE = '''
def clip_gradients(parameters, max_norm):
    # rescales every gradient to max_norm, small ones *up* too
    grads = [p.grad for p in parameters if p.grad is not None]
    total = float(torch.sqrt(sum((g ** 2).sum() for g in grads))) if grads else 0.0
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total
'''

# --- exercise 2: every group registered before the scheduler -----------------------------------
OPT_TRAINABLE_ONLY = '''
def make_optimizer(net, lr, make_scheduler=None):
    # only the groups trainable now: the groups unfrozen later are never trained
    groups = [g for g in models.param_groups(net, lr, weight_decay=1e-4) if all(p.requires_grad for p in g["params"])]
    optimizer = torch.optim.Adam(groups)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_ADD_GROUP_AFTER = '''
def make_optimizer(net, lr, make_scheduler=None):
    # the trainable groups, the scheduler, then add_param_group for the others: they are not scheduled
    groups = models.param_groups(net, lr, weight_decay=1e-4)
    now = [g for g in groups if all(p.requires_grad for p in g["params"])]
    optimizer = torch.optim.Adam(now)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    for g in groups:
        if g["name"] not in [h["name"] for h in now]:
            optimizer.add_param_group(g)
    optimizer.param_groups.sort(key=lambda g: models.LAYER_GROUPS.index(g["name"]))
    return optimizer, scheduler
'''
OPT_ONE_GROUP = '''
def make_optimizer(net, lr, make_scheduler=None):
    # every parameter, but one unnamed group
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_UNFREEZES = '''
def make_optimizer(net, lr, make_scheduler=None):
    # unfreezes everything to be sure the optimizer gets every parameter
    models.unfreeze(net)
    optimizer = torch.optim.Adam(models.param_groups(net, lr, weight_decay=1e-4))
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_SGD_NO_DECAY = '''
def make_optimizer(net, lr, make_scheduler=None):
    optimizer = torch.optim.SGD(models.param_groups(net, lr), lr=lr, momentum=0.9)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''

# --- exercise 3: frozen BatchNorm layers keep their statistics -------------------------------------
BN_NET_EVAL = '''
def keep_frozen_bn_stats(net):
    # the whole network in eval mode: the trainable BatchNorm layers stop learning their statistics
    net.eval()
    return sorted(n for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
'''
BN_REQUIRES_GRAD_ONLY = '''
def keep_frozen_bn_stats(net):
    # freezes the parameters again, but the buffers still drift in train mode
    names = []
    for n, m in net.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.requires_grad_(False)
            names.append(n)
    return sorted(names)
'''
BN_TOP_LEVEL = '''
def keep_frozen_bn_stats(net):
    # only the direct children: the BatchNorm layers inside the residual blocks are missed
    names = []
    for n, m in net.named_children():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
            names.append(n)
    return sorted(names)
'''
BN_ANY_FROZEN = '''
def keep_frozen_bn_stats(net):
    # one frozen parameter is enough to stop the statistics
    names = []
    for n, m in net.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and any(not p.requires_grad for p in m.parameters()):
            m.eval()
            names.append(n)
    return sorted(names)
'''
BN_2D_ONLY = '''
def keep_frozen_bn_stats(net):
    names = []
    for n, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
            names.append(n)
    return sorted(names)
'''
BN_HELPER = '''
def keep_frozen_bn_stats(net):
    training.freeze_frozen_batchnorm(net)
    return sorted(n for n, m in net.named_modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.training)
'''

# --- exercise 4: schedulers ------------------------------------------------------------------------
SCHEDULER_PLATEAU_MIN = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)  # mode="min" with an accuracy
    raise ValueError(name)
'''
SCHEDULER_DOCUMENT_COSINE = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-6)  # the document's lr_min
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    raise ValueError(name)
'''
SCHEDULER_PATIENCE_3 = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)  # the document's: too late
    raise ValueError(name)
'''
SCHEDULER_PATIENCE_0 = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=0)  # reacts to one noisy epoch
    raise ValueError(name)
'''
SCHEDULER_STEP_NO_MIN = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return s.StepLR(optimizer, step_size=epochs // 3 or 3, gamma=0.1)  # wrong for short runs
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)
    return None  # no error for an unknown name
'''

# --- exercise 5: distillation loss -----------------------------------------------------------------
KD_NO_T2 = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="batchmean")  # no T^2
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
'''
KD_SWAPPED = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    soft = F.kl_div(F.log_softmax(teacher_logits / T, dim=1), F.softmax(student_logits / T, dim=1),
                    reduction="batchmean") * T * T  # KL arguments swapped
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
'''
KD_NO_LOG_SOFTMAX = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    soft = F.kl_div(F.softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="batchmean") * T * T  # probabilities where kl_div expects log-probabilities
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
'''
KD_MEAN = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1),
                    reduction="mean") * T * T  # also divides by the number of classes
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft
'''
KD_HELPER = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    return training.distillation_loss(student_logits, teacher_logits, targets, T, alpha)
'''

# --- other correct answers must pass too -------------------------------------------------------------
ALT_CLIP = '''
def clip_gradients(parameters, max_norm):
    return float(torch.nn.utils.clip_grad_norm_(list(parameters), max_norm))
'''
ALT_OPTIMIZER = '''
def make_optimizer(net, lr, make_scheduler=None):
    groups = [{"params": list(models.group_parameters(net, g)), "name": g, "weight_decay": 1e-4}
              for g in models.LAYER_GROUPS]
    optimizer = torch.optim.Adam(groups, lr=lr)
    scheduler = None
    if make_scheduler is not None:
        scheduler = make_scheduler(optimizer)
    return optimizer, scheduler
'''
ALT_BN = '''
def keep_frozen_bn_stats(net):
    out = []
    for name, module in net.named_modules():
        ps = list(module.parameters(recurse=False))
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and ps and all(not p.requires_grad for p in ps):
            module.train(False)
            out.append(name)
    return sorted(out)
'''
ALT_SCHEDULER = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.LambdaLR(optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)))
    if name == "step":
        return s.LambdaLR(optimizer, lambda e: 0.1 ** (e // max(1, epochs // 3)))
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, "max", factor=0.3, patience=max(1, epochs // 6))
    raise ValueError(f"unknown scheduler {name}")
'''
ALT_KD = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    kl = nn.KLDivLoss(reduction="batchmean")
    soft = kl(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1).exp())
    return alpha * nn.CrossEntropyLoss()(student_logits, targets) + (1 - alpha) * (T ** 2) * soft
'''


def _failed(results: dict[str, bool]) -> list[str]:
    return [t for t in TESTS if results[t]]


def test_reference_solution_passes():
    results = run_until(NB, LAST)
    assert not any(results.values()), results


def test_other_correct_answers_pass():
    results = run_until(NB, LAST, replace={"clip_impl": ALT_CLIP, "optimizer_impl": ALT_OPTIMIZER,
                                           "bn_impl": ALT_BN, "scheduler_impl": ALT_SCHEDULER,
                                           "kd_impl": ALT_KD})
    assert not any(results.values()), results


# One wrong answer per exercise in each batch (the exercises do not depend on each other).
BATCHES = {
    # per-tensor clipping, an optimizer of the trainable groups only, net.eval(), plateau in min mode,
    # distillation without T^2
    "a": {"clip_impl": CLIP_PER_TENSOR, "optimizer_impl": OPT_TRAINABLE_ONLY, "bn_impl": BN_NET_EVAL,
          "scheduler_impl": SCHEDULER_PLATEAU_MIN, "kd_impl": KD_NO_T2},
    # a generator iterated twice, add_param_group after the scheduler, requires_grad instead of eval mode,
    # the document's patience=3, KL arguments swapped
    "b": {"clip_impl": CLIP_GENERATOR_TWICE, "optimizer_impl": OPT_ADD_GROUP_AFTER, "bn_impl": BN_REQUIRES_GRAD_ONLY,
          "scheduler_impl": SCHEDULER_PATIENCE_3, "kd_impl": KD_SWAPPED},
    # clipping by value, one unnamed group, only the direct children, patience=0,
    # probabilities instead of log-probabilities
    "c": {"clip_impl": CLIP_BY_VALUE, "optimizer_impl": OPT_ONE_GROUP, "bn_impl": BN_TOP_LEVEL,
          "scheduler_impl": SCHEDULER_PATIENCE_0, "kd_impl": KD_NO_LOG_SOFTMAX},
    # gradients scaled up below the threshold, unfreezing everything, one frozen parameter is enough,
    # the document's eta_min, "mean" reduction
    "d": {"clip_impl": CLIP_ALWAYS_RESCALE, "optimizer_impl": OPT_UNFREEZES, "bn_impl": BN_ANY_FROZEN,
          "scheduler_impl": SCHEDULER_DOCUMENT_COSINE, "kd_impl": KD_MEAN},
}


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_wrong_answers_batch(batch):
    results = run_until(NB, LAST, replace=BATCHES[batch])
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_e():
    # SGD without weight decay, BatchNorm2d only, a wrong step size and no error, the course's reference loss;
    # then the course's freeze_frozen_batchnorm
    results = run_until(NB, LAST, replace={"optimizer_impl": OPT_SGD_NO_DECAY, "bn_impl": BN_2D_ONLY,
                                           "scheduler_impl": SCHEDULER_STEP_NO_MIN, "kd_impl": KD_HELPER})
    assert _failed(results) == ["optimizer_tests", "bn_tests", "scheduler_tests", "kd_tests"], results
    results = run_until(NB, LAST, replace={"bn_impl": BN_HELPER})
    assert _failed(results) == ["bn_tests"], results
