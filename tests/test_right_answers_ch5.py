"""Chapter 5: correct answers written differently from the solution get full points.

Each run swaps in one alternative answer per exercise (the exercises are independent) and executes the notebook up
to the last autograded test cell; every test cell must pass.
"""
from __future__ import annotations

import pytest

from tests.nbrun import assert_passes, run_cells

NB = "solutions/ch5_recovery/ch5_recovery.ipynb"
LAST = "kd_mix_tests"
TESTS = ["clip_tests", "optimizer_tests", "keepbest_tests", "scheduler_cosine_tests", "scheduler_step_tests",
         "scheduler_plateau_mode_tests", "scheduler_plateau_patience_tests", "kd_soft_tests",
         "kd_mix_tests"]

RIGHT = {
    "a": {
        # a loop over floats, the generator materialised once
        "clip_impl": '''
def clip_gradients(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    total = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params))
    if total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.grad.mul_(scale)
    return total
''',
        # the natural answer: weight decay as the optimizer's default (no weight_decay key in the groups)
        "optimizer_impl": '''
def make_optimizer(net, lr, make_scheduler=None):
    optimizer = torch.optim.Adam(models.param_groups(net, lr), weight_decay=1e-4)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    return optimizer, scheduler
''',
        # tensors cloned one by one, loaded back with copy_
        "keepbest_impl": '''
class KeepBest:
    def __init__(self):
        self.best = None  # (accuracy, epoch, state)

    def update(self, net, epoch, valid_acc):
        if self.best is not None and valid_acc <= self.best[0]:
            return False
        self.best = (valid_acc, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
        return True

    def restore(self, net):
        if self.best is None:
            raise RuntimeError("KeepBest.restore called before any update")
        with torch.no_grad():
            for k, v in net.state_dict().items():
                v.copy_(self.best[2][k])
        return self.best[1]
''',
        # LambdaLR for cosine and step; another valid plateau: factor 0.3, patience growing with the run
        "scheduler_impl": '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    if name == "cosine":
        return s.LambdaLR(optimizer, lambda e: 0.5 * (1 + math.cos(math.pi * e / epochs)))
    if name == "step":
        return s.LambdaLR(optimizer, lambda e: 0.1 ** (e // max(1, epochs // 3)))
    if name == "plateau":
        return s.ReduceLROnPlateau(optimizer, "max", factor=0.3, patience=max(1, epochs // 6))
    raise ValueError(f"unknown scheduler {name}")
''',
        # the loss module, dim=-1, probabilities as exp(log_softmax)
        "kd_impl": '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    kl = nn.KLDivLoss(reduction="batchmean")
    soft = kl(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits / T, dim=-1).exp())
    return alpha * nn.CrossEntropyLoss()(student_logits, targets) + (1 - alpha) * (T ** 2) * soft
''',
    },
    "b": {
        # torch.linalg norms of each gradient, then of the stacked norms; an explicit 0.0 for no gradient
        "clip_impl": '''
def clip_gradients(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    if len(grads) == 0:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()
    factor = max_norm / (total + 1e-6)
    if factor < 1:
        for g in grads:
            g.copy_(g * factor)
    return float(total)
''',
        # groups written out by hand, weight decay as a group key, lr as the default
        "optimizer_impl": '''
def make_optimizer(net, lr, make_scheduler=None):
    groups = [{"params": models.group_parameters(net, g), "name": g, "weight_decay": 1e-4}
              for g in models.LAYER_GROUPS]
    optimizer = torch.optim.Adam(groups, lr=lr)
    scheduler = None
    if make_scheduler is not None:
        scheduler = make_scheduler(optimizer)
    return optimizer, scheduler
''',
        # a deep copy of the whole module, loaded back with load_state_dict
        "keepbest_impl": '''
class KeepBest:
    def __init__(self):
        self.model, self.epoch, self.acc = None, None, float("-inf")

    def update(self, net, epoch, valid_acc):
        improved = self.model is None or valid_acc > self.acc
        if improved:
            self.model, self.epoch, self.acc = copy.deepcopy(net), epoch, valid_acc
        return improved

    def restore(self, net):
        if self.model is None:
            raise RuntimeError("no best epoch yet: call update() after each epoch")
        net.load_state_dict(self.model.state_dict())
        return self.epoch
''',
        # a dict of factories; plateau with patience=1, factor=0.2 and an absolute threshold of 0
        "scheduler_impl": '''
def make_scheduler(name, optimizer, epochs):
    s = torch.optim.lr_scheduler
    factories = {
        "cosine": lambda: s.CosineAnnealingLR(optimizer, epochs),
        "step": lambda: s.StepLR(optimizer, epochs // 3 if epochs >= 3 else 1, 0.1),
        "plateau": lambda: s.ReduceLROnPlateau(optimizer, mode="max", factor=0.2, patience=1,
                                               threshold=0.0, threshold_mode="abs"),
    }
    if name not in factories:
        raise ValueError(f"{name!r}: expected one of {sorted(factories)}")
    return factories[name]()
''',
        # the formula written out: sum p_t (log p_t - log q_s), log_target
        "kd_impl": '''
def kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.5):
    log_q = F.log_softmax(student_logits / T, dim=1)
    log_p = F.log_softmax(teacher_logits / T, dim=1)
    soft = F.kl_div(log_q, log_p, reduction="sum", log_target=True) / student_logits.shape[0]
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * T * T * soft
''',
    },
}


def test_reference_solution_gets_full_points():
    assert_passes(run_cells(NB, LAST), TESTS)


@pytest.mark.parametrize("answers", sorted(RIGHT))
def test_other_correct_answers_get_full_points(answers):
    assert_passes(run_cells(NB, LAST, replace=RIGHT[answers]), TESTS)
