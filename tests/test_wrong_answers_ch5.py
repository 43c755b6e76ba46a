"""Chapter 5's tests catch the classic wrong answers, each for the reason meant for it.

Each run executes the notebook up to the last autograded test cell (``kd_mix_tests``; every autograded exercise
comes before the training cells) with one wrong answer per exercise swapped in at once (the exercises do not use
each other's functions). For each wrong answer we assert *why* its test cell failed (``AssertionError`` and the
message naming the property), and that the test cells of the exercises answered correctly in that run pass.
"""
from __future__ import annotations

import pytest

from tests.nbrun import assert_caught, assert_passes, run_cells

NB = "solutions/ch5_recovery/ch5_recovery.ipynb"
LAST = "kd_mix_tests"
SCHEDULER_TESTS = ["scheduler_cosine_tests", "scheduler_step_tests", "scheduler_plateau_mode_tests",
                   "scheduler_plateau_patience_tests"]
KD_TESTS = ["kd_soft_tests", "kd_mix_tests"]
TESTS = ["clip_tests", "optimizer_tests", "keepbest_tests", *SCHEDULER_TESTS, *KD_TESTS]

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
CLIP_HELPER = '''
def clip_gradients(parameters, max_norm):
    return float(torch.nn.utils.clip_grad_norm_(list(parameters), max_norm))
'''
CLIP_HELPER_IMPORTED = '''
from torch.nn.utils import clip_grad_norm_  # imported before the tests patch anything


def clip_gradients(parameters, max_norm):
    return clip_grad_norm_(list(parameters), max_norm).item()
'''
CLIP_TENSOR = '''
def clip_gradients(parameters, max_norm):
    # returns a tensor, not a Python float
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if total > max_norm:
        for g in grads:
            g.mul_(max_norm / (total + 1e-6))
    return total
'''

# --- exercise 2: every group registered before the scheduler -----------------------------------
OPT_TRAINABLE_ONLY = '''
def make_optimizer(net, lr, make_scheduler=None):
    # only the groups trainable now: the groups unfrozen later are never trained
    groups = [g for g in models.param_groups(net, lr) if all(p.requires_grad for p in g["params"])]
    optimizer = torch.optim.Adam(groups, weight_decay=1e-4)
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
    optimizer = torch.optim.Adam(models.param_groups(net, lr), weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_FREEZES = '''
def make_optimizer(net, lr, make_scheduler=None):
    # "stage 0": freezes the body itself, whatever stage the caller is at
    models.freeze(net)
    optimizer = torch.optim.Adam(models.param_groups(net, lr), weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_SGD = '''
def make_optimizer(net, lr, make_scheduler=None):
    optimizer = torch.optim.SGD(models.param_groups(net, lr), lr=lr, momentum=0.9, weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_ADAMW = '''
def make_optimizer(net, lr, make_scheduler=None):
    # decoupled weight decay: another optimizer than the one asked for
    optimizer = torch.optim.AdamW(models.param_groups(net, lr), weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_GROUP_KEY_BEATS_DEFAULT = '''
def make_optimizer(net, lr, make_scheduler=None):
    # a weight_decay key in every group beats the optimizer's default: no decay at all
    groups = [{**g, "weight_decay": 0.0} for g in models.param_groups(net, lr)]
    optimizer = torch.optim.Adam(groups, weight_decay=1e-4)
    return optimizer, (make_scheduler(optimizer) if make_scheduler else None)
'''
OPT_STEPS_SCHEDULER = '''
def make_optimizer(net, lr, make_scheduler=None):
    # steps the scheduler once "to start it": the first epoch skips the schedule's first value
    optimizer = torch.optim.Adam(models.param_groups(net, lr), weight_decay=1e-4)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    if scheduler is not None:
        optimizer.step()
        scheduler.step()
    return optimizer, scheduler
'''
OPT_HELPER = '''
def make_optimizer(net, lr, make_scheduler=None):
    return recovery.optimizer(net, lr, make_scheduler)
'''

# --- exercise 3: keep the best epoch and restore it -------------------------------------------------
KEEP_LAST = '''
class KeepBest:
    # remembers which epoch was best, but never loads it back: the last model stays
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, copy.deepcopy(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        return self.best_epoch
'''
KEEP_ALIAS = '''
class KeepBest:
    # net.state_dict() itself: the tensors are the network's, the next steps change the "copy"
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, net.state_dict()
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        net.load_state_dict(self.state)
        return self.best_epoch
'''
KEEP_SHALLOW = '''
class KeepBest:
    # dict(...) copies the dictionary, not the tensors
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, dict(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        net.load_state_dict(self.state)
        return self.best_epoch
'''
KEEP_PARAMETERS_ONLY = '''
class KeepBest:
    # parameters only: the BatchNorm statistics of the last epoch stay
    def __init__(self):
        self.best_acc, self.best_epoch, self.params = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch = valid_acc, epoch
            self.params = [p.detach().clone() for p in net.parameters()]
            return True
        return False

    def restore(self, net):
        if self.params is None:
            raise RuntimeError("no update yet")
        with torch.no_grad():
            for p, saved in zip(net.parameters(), self.params):
                p.copy_(saved)
        return self.best_epoch
'''
KEEP_TIES = '''
class KeepBest:
    # >=: a tie replaces the earlier epoch
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc >= self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, copy.deepcopy(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        net.load_state_dict(self.state)
        return self.best_epoch
'''
KEEP_START_AT_ZERO = '''
class KeepBest:
    # starts at 0.0: a first epoch at accuracy 0 is never kept
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = 0.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, copy.deepcopy(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        net.load_state_dict(self.state)
        return self.best_epoch
'''
KEEP_ASSIGN = '''
class KeepBest:
    # assign=True makes the kept tensors the network's parameters: training after a restore changes the copy
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -1.0, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, copy.deepcopy(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is None:
            raise RuntimeError("no update yet")
        net.load_state_dict(self.state, assign=True)
        return self.best_epoch
'''
KEEP_SILENT = '''
class KeepBest:
    # restore before any update silently leaves the network as it is
    def __init__(self):
        self.best_acc, self.best_epoch, self.state = -math.inf, None, None

    def update(self, net, epoch, valid_acc):
        if valid_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.state = valid_acc, epoch, copy.deepcopy(net.state_dict())
            return True
        return False

    def restore(self, net):
        if self.state is not None:
            net.load_state_dict(self.state)
        return self.best_epoch
'''

# --- exercise 4: schedulers ------------------------------------------------------------------------
_SCHED = '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return {cosine}
    if name == "step":
        return {step}
    if name == "plateau":
        return {plateau}
    {other}
'''


def sched(cosine="s.CosineAnnealingLR(optimizer, T_max=epochs)",
          step="s.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)",
          plateau='s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1)',
          other="raise ValueError(name)") -> str:
    return _SCHED.format(cosine=cosine, step=step, plateau=plateau, other=other)


SCHEDULER_PLATEAU_MIN = sched(plateau="s.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)")  # mode="min"
SCHEDULER_DOCUMENT_COSINE = sched(cosine="s.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=1e-6)")
SCHEDULER_PATIENCE_3 = sched(plateau='s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)')
SCHEDULER_PATIENCE_0 = sched(plateau='s.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=0)')
SCHEDULER_STEP_SIZE = sched(step="s.StepLR(optimizer, step_size=epochs // 3 or 3, gamma=0.1)")
SCHEDULER_NO_ERROR = sched(other="return None")
SCHEDULER_HELPER = '''
def make_scheduler(name, optimizer, epochs):
    return recovery.scheduler(name, optimizer, epochs)
'''

# --- exercise 5: distillation loss -----------------------------------------------------------------
_KD = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    soft = {soft}
    return {mix}
'''


def kd(soft='F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), '
            'reduction="batchmean") * T * T',
       mix="alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft") -> str:
    return _KD.format(soft=soft, mix=mix)


KD_NO_T2 = kd(soft='F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), '
                   'reduction="batchmean")')
KD_SWAPPED = kd(soft='F.kl_div(F.log_softmax(teacher_logits / T, dim=1), F.softmax(student_logits / T, dim=1), '
                     'reduction="batchmean") * T * T')
KD_NO_LOG_SOFTMAX = kd(soft='F.kl_div(F.softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), '
                            'reduction="batchmean") * T * T')
KD_MEAN = kd(soft='F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), '
                  'reduction="mean") * T * T')
KD_SUM = kd(soft='F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1), '
                 'reduction="sum") * T * T')
KD_TEACHER_NOT_SOFTENED = kd(soft='F.kl_div(F.log_softmax(student_logits / T, dim=1), '
                                  'F.softmax(teacher_logits, dim=1), reduction="batchmean") * T * T')
KD_ALPHA_SWAPPED = kd(mix="(1 - alpha) * F.cross_entropy(student_logits, targets) + alpha * soft")
KD_DETACHED = kd(mix="torch.tensor(float(alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * soft))")
KD_HELPER = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    return training.distillation_loss(student_logits, teacher_logits, targets, T, alpha)
'''
KD_COURSE_HELPER = '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    return recovery.kd_loss(student_logits, teacher_logits, targets, T, alpha)
'''
KD_HELPER_ALIAS = '''
from helpers.training import distillation_loss as _soft_and_hard  # the helper under another name
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    return _soft_and_hard(student_logits, teacher_logits, targets, T, alpha)
'''

# (answer cell, wrong answer, test cell that must catch it, regex of the message that says why)
WRONG = {
    "clip_per_tensor": ("clip_impl", CLIP_PER_TENSOR, "clip_tests", "one norm for all tensors"),
    "clip_generator_twice": ("clip_impl", CLIP_GENERATOR_TWICE, "clip_tests", "a generator can be iterated only once"),
    "clip_by_value": ("clip_impl", CLIP_BY_VALUE, "clip_tests", "one norm for all tensors"),
    "clip_always_rescale": ("clip_impl", CLIP_ALWAYS_RESCALE, "clip_tests", "below max_norm the gradients must not change"),
    "clip_helper": ("clip_impl", CLIP_HELPER, "clip_tests", "tests block torch.nn.utils.clip_grad_norm_"),
    "clip_helper_imported": ("clip_impl", CLIP_HELPER_IMPORTED, "clip_tests", "tests block torch.nn.utils.clip_grad_norm_"),
    "clip_tensor": ("clip_impl", CLIP_TENSOR, "clip_tests", "as a Python float"),
    "opt_trainable_only": ("optimizer_impl", OPT_TRAINABLE_ONLY, "optimizer_tests", "one named optimizer group per layer group"),
    "opt_add_group_after": ("optimizer_impl", OPT_ADD_GROUP_AFTER, "optimizer_tests", r"epoch 0: every group, frozen or not, follows"),
    "opt_one_group": ("optimizer_impl", OPT_ONE_GROUP, "optimizer_tests", "one named optimizer group per layer group"),
    "opt_unfreezes": ("optimizer_impl", OPT_UNFREEZES, "optimizer_tests", "must not change which groups are trainable"),
    "opt_freezes": ("optimizer_impl", OPT_FREEZES, "optimizer_tests", "must not change which groups are trainable"),
    "opt_sgd": ("optimizer_impl", OPT_SGD, "optimizer_tests", r"use torch\.optim\.Adam"),
    "opt_adamw": ("optimizer_impl", OPT_ADAMW, "optimizer_tests", "not AdamW"),
    "opt_group_key": ("optimizer_impl", OPT_GROUP_KEY_BEATS_DEFAULT, "optimizer_tests", "a group key beats the default"),
    "opt_steps_scheduler": ("optimizer_impl", OPT_STEPS_SCHEDULER, "optimizer_tests", r"epoch 0: every group, frozen or not, follows"),
    "opt_helper": ("optimizer_impl", OPT_HELPER, "optimizer_tests", "write make_optimizer yourself"),
    "keep_last": ("keepbest_impl", KEEP_LAST, "keepbest_tests", "must be epoch 2's"),
    "keep_alias": ("keepbest_impl", KEEP_ALIAS, "keepbest_tests", "must be epoch 2's.*not net.state_dict"),
    "keep_shallow": ("keepbest_impl", KEEP_SHALLOW, "keepbest_tests", "must be epoch 2's"),
    "keep_parameters_only": ("keepbest_impl", KEEP_PARAMETERS_ONLY, "keepbest_tests", "running_(mean|var)|num_batches_tracked"),
    "keep_ties": ("keepbest_impl", KEEP_TIES, "keepbest_tests", "a tie does not"),
    "keep_start_at_zero": ("keepbest_impl", KEEP_START_AT_ZERO, "keepbest_tests", "the first call always counts"),
    "keep_assign": ("keepbest_impl", KEEP_ASSIGN, "keepbest_tests", "into the same parameters, in place"),
    "keep_silent": ("keepbest_impl", KEEP_SILENT, "keepbest_tests", "must raise a RuntimeError"),
    "sched_plateau_min": ("scheduler_impl", SCHEDULER_PLATEAU_MIN, "scheduler_plateau_mode_tests", "mode='max'"),
    "sched_eta_min": ("scheduler_impl", SCHEDULER_DOCUMENT_COSINE, "scheduler_cosine_tests", r"down to exactly 0"),
    "sched_patience_3": ("scheduler_impl", SCHEDULER_PATIENCE_3, "scheduler_plateau_patience_tests", "at least twice"),
    "sched_patience_0": ("scheduler_impl", SCHEDULER_PATIENCE_0, "scheduler_plateau_patience_tests", "must not cut the rate"),
    "sched_step_size": ("scheduler_impl", SCHEDULER_STEP_SIZE, "scheduler_step_tests", "step_size is at least 1"),
    "sched_no_error": ("scheduler_impl", SCHEDULER_NO_ERROR, "scheduler_step_tests", "must raise ValueError"),
    "sched_helper": ("scheduler_impl", SCHEDULER_HELPER, "scheduler_cosine_tests", "write make_scheduler yourself"),
    "kd_no_t2": ("kd_impl", KD_NO_T2, "kd_soft_tests", r"T\^2 \* KL"),
    "kd_swapped": ("kd_impl", KD_SWAPPED, "kd_soft_tests", r"KL\(teacher \|\| student\)"),
    "kd_no_log_softmax": ("kd_impl", KD_NO_LOG_SOFTMAX, "kd_soft_tests", r"KL\(teacher \|\| student\)"),
    "kd_mean": ("kd_impl", KD_MEAN, "kd_soft_tests", "batchmean"),
    "kd_sum": ("kd_impl", KD_SUM, "kd_soft_tests", r"average over the batch \(reduction='batchmean'\)"),
    "kd_teacher_not_softened": ("kd_impl", KD_TEACHER_NOT_SOFTENED, "kd_soft_tests", "temperature on both logits"),
    "kd_alpha_swapped": ("kd_impl", KD_ALPHA_SWAPPED, "kd_mix_tests", "alpha=1: the cross-entropy alone"),
    "kd_detached": ("kd_impl", KD_DETACHED, "kd_mix_tests", "gradients must flow to student_logits"),
    "kd_helper": ("kd_impl", KD_HELPER, "kd_mix_tests", "write the loss yourself"),
    "kd_course_helper": ("kd_impl", KD_COURSE_HELPER, "kd_mix_tests", "write the loss yourself"),
    "kd_helper_alias": ("kd_impl", KD_HELPER_ALIAS, "kd_mix_tests", "write the loss yourself"),
}

# Each batch holds at most one wrong answer per exercise (one kernel run each).
BATCHES = [
    ["clip_per_tensor", "opt_trainable_only", "keep_last", "sched_plateau_min", "kd_no_t2"],
    ["clip_generator_twice", "opt_add_group_after", "keep_alias", "sched_eta_min", "kd_swapped"],
    ["clip_by_value", "opt_one_group", "keep_shallow", "sched_patience_3", "kd_no_log_softmax"],
    ["clip_always_rescale", "opt_unfreezes", "keep_parameters_only", "sched_patience_0", "kd_mean"],
    ["clip_helper", "opt_freezes", "keep_ties", "sched_step_size", "kd_sum"],
    ["clip_helper_imported", "opt_sgd", "keep_start_at_zero", "sched_no_error", "kd_teacher_not_softened"],
    ["clip_tensor", "opt_adamw", "keep_assign", "sched_helper", "kd_alpha_swapped"],
    ["opt_group_key", "keep_silent", "kd_detached"],
    ["kd_helper_alias"],
    ["opt_steps_scheduler", "kd_helper"],
    ["opt_helper", "kd_course_helper"],
]


# mode="min" with an accuracy also cuts the rate on a noisy rise: it fails the patience cell too; a helper
# shortcut fails every cell of its exercise; swapped alpha weights fail the soft term (alpha=0) too
ALSO_FAILS = {"sched_plateau_min": ["scheduler_plateau_patience_tests"], "sched_helper": SCHEDULER_TESTS,
              "kd_alpha_swapped": KD_TESTS, "kd_helper": KD_TESTS, "kd_course_helper": KD_TESTS,
              "kd_helper_alias": KD_TESTS}


def test_every_wrong_answer_is_in_a_batch_once():
    names = [n for batch in BATCHES for n in batch]
    assert sorted(names) == sorted(WRONG) and len(set(names)) == len(names)
    for batch in BATCHES:
        cells = [WRONG[n][0] for n in batch]
        assert len(set(cells)) == len(cells), f"two answers for one exercise in {batch}"


@pytest.mark.parametrize("batch", BATCHES, ids=[b[0] for b in BATCHES])
def test_wrong_answers_are_caught_for_their_reason(batch):
    errors = run_cells(NB, LAST, replace={WRONG[n][0]: WRONG[n][1] for n in batch})
    caught = set()
    for name in batch:
        _, _, test_id, message = WRONG[name]
        assert_caught(errors, test_id, message)
        caught |= {test_id, *ALSO_FAILS.get(name, ())}
    # partial credit: every other cell passes, the other scheduler cells included
    assert_passes(errors, [t for t in TESTS if t not in caught])
