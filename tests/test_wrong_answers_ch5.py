"""Chapter 5's hidden tests catch the classic wrong answers (and pass the reference solution).

Each run executes the notebook up to the last autograded test cell (``kd_tests``; all autograded exercises come
before the training cells) with several wrong answers swapped in at once. The test cells do not use each
other's solutions (the unfreezer is tested with a fixed schedule), so each failing test cell is caused by its
own wrong answer.
"""
from __future__ import annotations

from tests.nbrun import run_until

NB = "solutions/ch5_recovery/ch5_recovery.ipynb"
LAST = "kd_tests"
TESTS = ["clip_tests", "schedule_tests", "unfreezer_tests", "scheduler_tests", "kd_tests"]

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

# --- exercise 2a: schedule ------------------------------------------------------------------------
SCHEDULE_PROGRESSIVE_FREEZING = '''
def progressive_unfreezing_schedule(groups, num_epochs, epochs_per_stage=1):
    # the document: stage s trains layers[s:], i.e. everything first, then freezes the first layers
    groups = list(groups)
    return [groups[min(len(groups) - 1, e // epochs_per_stage):] for e in range(num_epochs)]
'''
SCHEDULE_FROM_INPUT = '''
def progressive_unfreezing_schedule(groups, num_epochs, epochs_per_stage=1):
    # unfreezes from the input toward the head
    groups = list(groups)
    return [groups[:min(len(groups), 1 + e // epochs_per_stage)] for e in range(num_epochs)]
'''
SCHEDULE_IGNORES_STAGE_LENGTH = '''
def progressive_unfreezing_schedule(groups, num_epochs, epochs_per_stage=1):
    groups = list(groups)
    return [groups[len(groups) - min(len(groups), 1 + e):] for e in range(num_epochs)]
'''

# --- exercise 2b: unfreezer callback ---------------------------------------------------------------
UNFREEZER_NO_OPTIMIZER_CHECK = '''
class ScheduleUnfreezer:
    # right groups, but an optimizer that misses the unfrozen groups goes unnoticed
    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_start(self, epoch, net, optimizer):
        trainable = self.schedule[min(epoch, len(self.schedule) - 1)]
        models.freeze(net, [g for g in models.LAYER_GROUPS if g not in trainable])
        models.unfreeze(net, trainable)
'''
UNFREEZER_ONLY_UNFREEZES = '''
class ScheduleUnfreezer:
    # unfreezes the scheduled groups but never freezes the others
    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_start(self, epoch, net, optimizer):
        trainable = self.schedule[min(epoch, len(self.schedule) - 1)]
        known = grading.optimizer_param_ids(optimizer)
        for g in trainable:
            if any(id(p) not in known for p in models.group_parameters(net, g)):
                raise ValueError(g)
        models.unfreeze(net, trainable)
'''

# --- exercise 3a: schedulers ------------------------------------------------------------------------
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

# --- exercise 4a: distillation loss -----------------------------------------------------------------
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
ALT_SCHEDULE = '''
def progressive_unfreezing_schedule(groups, num_epochs, epochs_per_stage=1):
    out = []
    for epoch in range(num_epochs):
        k = min(len(groups), epoch // epochs_per_stage + 1)
        out.append([g for i, g in enumerate(groups) if i >= len(groups) - k])
    return out
'''
ALT_UNFREEZER = '''
class ScheduleUnfreezer:
    def __init__(self, schedule):
        self.schedule = schedule

    def on_epoch_start(self, epoch, net, optimizer):
        stage = self.schedule[-1] if epoch >= len(self.schedule) else self.schedule[epoch]
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for name in models.LAYER_GROUPS:
            for p in models.group_parameters(net, name):
                if name in stage and id(p) not in in_optimizer:
                    raise ValueError(f"{name} is missing from the optimizer")
                p.requires_grad = name in stage
'''
ALT_SCHEDULER = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.LambdaLR(optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)))
    if name == "step":
        return s.LambdaLR(optimizer, lambda e: 0.1 ** (e // max(1, epochs // 3)))
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, "max", factor=0.5, patience=1)
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
    results = run_until(NB, LAST, replace={"clip_impl": ALT_CLIP, "schedule_impl": ALT_SCHEDULE,
                                           "unfreezer_impl": ALT_UNFREEZER, "scheduler_impl": ALT_SCHEDULER,
                                           "kd_impl": ALT_KD})
    assert not any(results.values()), results


def test_wrong_answers_batch_a():
    # per-tensor clipping, the document's progressive freezing, no optimizer check, plateau in min mode,
    # distillation without T^2
    results = run_until(NB, LAST, replace={"clip_impl": CLIP_PER_TENSOR,
                                           "schedule_impl": SCHEDULE_PROGRESSIVE_FREEZING,
                                           "unfreezer_impl": UNFREEZER_NO_OPTIMIZER_CHECK,
                                           "scheduler_impl": SCHEDULER_PLATEAU_MIN,
                                           "kd_impl": KD_NO_T2})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_b():
    # a generator iterated twice, unfreezing from the input, never freezing, the document's eta_min,
    # KL arguments swapped
    results = run_until(NB, LAST, replace={"clip_impl": CLIP_GENERATOR_TWICE,
                                           "schedule_impl": SCHEDULE_FROM_INPUT,
                                           "unfreezer_impl": UNFREEZER_ONLY_UNFREEZES,
                                           "scheduler_impl": SCHEDULER_DOCUMENT_COSINE,
                                           "kd_impl": KD_SWAPPED})
    assert _failed(results) == TESTS, results


def test_wrong_answers_batch_c():
    # clipping by value, stages of one epoch whatever epochs_per_stage, a wrong step size and no error,
    # probabilities instead of log-probabilities
    results = run_until(NB, LAST, replace={"clip_impl": CLIP_BY_VALUE,
                                           "schedule_impl": SCHEDULE_IGNORES_STAGE_LENGTH,
                                           "scheduler_impl": SCHEDULER_STEP_NO_MIN,
                                           "kd_impl": KD_NO_LOG_SOFTMAX})
    assert [t for t in _failed(results)] == ["clip_tests", "schedule_tests", "scheduler_tests", "kd_tests"], results


def test_wrong_answers_batch_d():
    # gradients scaled up below the threshold; "mean" reduction; calling the course's reference
    results = run_until(NB, LAST, replace={"clip_impl": CLIP_ALWAYS_RESCALE, "kd_impl": KD_MEAN})
    assert _failed(results) == ["clip_tests", "kd_tests"], results
    results = run_until(NB, LAST, replace={"kd_impl": KD_HELPER})
    assert _failed(results) == ["kd_tests"], results
