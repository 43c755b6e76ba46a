"""Chapter 3: correct answers written differently from the solution score full points, and the lesson
cells run on with the course's reference functions when the exercises are left as stubs.

One notebook run holds one alternative answer per exercise (the exercises are independent): every test cell
must pass, hidden tests included, so each alternative gets all the exercise's points.
"""
from __future__ import annotations

import os

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.nbrun import REPO, assert_passes, grade_id, run_cells

NB = "solutions/ch3_unfreezing/ch3_unfreezing.ipynb"
TESTS = ["layer_groups_tests", "freeze_tests", "discriminative_tests", "unfreezer_schedule_tests",
         "unfreezer_optimizer_tests", "unfreezer_training_tests", "warmup_tests"]

# exercise 1: find the stages first, then split the other children around them
GROUPS_TWO_PASSES = '''
def get_layer_groups(net):
    children = list(net.named_children())
    idx = [i for i, (n, _) in enumerate(children) if n.startswith("layer")]
    has_params = lambda m: len(list(m.parameters())) > 0
    groups = {"stem": [m for _, m in children[:idx[0]] if has_params(m)]}
    groups.update({n: [m] for n, m in children[idx[0]:idx[-1] + 1]})
    groups["head"] = [m for _, m in children[idx[-1] + 1:] if has_params(m)]
    return groups
'''
# exercise 2: Module.requires_grad_ and Module.apply; the group's modules themselves put in eval mode
FREEZE_APPLY = '''
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

def freeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(False)
        layer.eval()          # every sub-module, BatchNorm included (no dropout in these groups)

def unfreeze_group(group_layers):
    for layer in group_layers:
        layer.requires_grad_(True)
        layer.apply(lambda m: m.train() if isinstance(m, BN_TYPES) else None)

def bn_freeze(net):
    for name, m in net.named_modules():
        if isinstance(m, BN_TYPES) and all(not p.requires_grad for p in m.parameters(recurse=False)):
            m.train(False)
'''
# exercise 3: a loop from the head down, the factor from logarithms
DISC_LOOP = '''
def discriminative_param_groups(groups, max_lr, spread=100.0):
    if not spread >= 1:
        raise ValueError("the head's rate must be at least the first group's")
    names = list(groups)
    step = math.exp(math.log(spread) / (len(names) - 1))
    out, lr = [], max_lr
    for name in reversed(names):
        out.append({"name": name, "lr": lr, "params": list(nn.ModuleList(groups[name]).parameters())})
        lr /= step
    return out[::-1]
'''
# exercise 4: stateful, with the student's own groups and freezing functions
UNFREEZER_STATEFUL = '''
class GradualUnfreezer:
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
# exercise 5: LinearLR + CosineAnnealingLR in a SequentialLR
WARMUP_SEQUENTIAL = '''
def warmup_cosine_scheduler(optimizer, warmup_steps, total_steps, start_factor=0.1):
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
    warmup = LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    cosine = CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=0.0)
    return SequentialLR(optimizer, schedulers=[warmup, cosine], milestones=[warmup_steps])
'''

STUB = "def {name}(*args, **kwargs):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
STUBS = {
    "layer_groups_impl": STUB.format(name="get_layer_groups"),
    "freeze_impl": "".join(STUB.format(name=n) for n in ("freeze_group", "unfreeze_group", "bn_freeze")),
    "discriminative_impl": STUB.format(name="discriminative_param_groups"),
    "unfreezer_impl": "class GradualUnfreezer:\n    def __init__(self, every=1):\n        self.every = every\n\n"
                      "    def on_epoch_start(self, epoch, net, optimizer):\n        raise NotImplementedError()\n",
    "warmup_impl": STUB.format(name="warmup_cosine_scheduler"),
}


def test_other_correct_answers_get_full_points():
    errors = run_cells(NB, TESTS[-1], replace={"layer_groups_impl": GROUPS_TWO_PASSES, "freeze_impl": FREEZE_APPLY,
                                               "discriminative_impl": DISC_LOOP,
                                               "unfreezer_impl": UNFREEZER_STATEFUL,
                                               "warmup_impl": WARMUP_SEQUENTIAL})
    assert_passes(errors, TESTS)


def test_lessons_run_on_the_reference_functions_when_every_exercise_is_a_stub():
    """The released notebook with nothing written: each test cell fails with NotImplementedError, every
    other cell runs (the lesson cells fall back to the course's functions and say so)."""
    path = REPO / NB
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if grade_id(cell) in STUBS:
            cell.source = STUBS[grade_id(cell)]
    # as autograding runs it (COURSE_GRADING=1: every lesson on one seed), where a stub matters most
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(Path(path).parent)}}).execute(
        env={**os.environ, "COURSE_GRADING": "1"})
    failed = {}
    for i, cell in enumerate(nb.cells):
        err = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if err:
            failed[grade_id(cell) or f"cell {i}"] = err["ename"]
    assert failed == {t: "NotImplementedError" for t in TESTS}, failed
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for fn in ("get_layer_groups", "bn_freeze", "discriminative_param_groups", "on_epoch_start",
               "warmup_cosine_scheduler"):
        assert f"[course] {fn} raised NotImplementedError" in text, fn
