"""Chapter 2 (hotdog fine-tuning): the test cells of exercises 1 (``hotdog_head``) and 2
(``predict``) catch the classic wrong answers, each with the check meant for it.

Each run stops at ``predict_mode_tests``, before any training, and replaces one answer of each
exercise (the exercises are independent): it asserts that the cell meant to catch each wrong answer
failed with an ``AssertionError`` whose message names the property, and that every other graded
cell passed (a ``NameError`` or another exercise's failure does not count as caught)."""
from __future__ import annotations

import pytest

from tests.nbrun import assert_caught, assert_passes, run_cells

NB = "solutions/ch2_hotdog/ch2_hotdog.ipynb"
LAST = "predict_mode_tests"
GRADED = ["hotdog_head_tests", "hotdog_head_copy_tests", "predict_tests", "predict_mode_tests"]


# --- exercise 1: hotdog_head
def _head(index: str = 'list(categories).index("hotdog")', row1: str = "W[others].mean(0)",
          bias1: str = "b[others].mean()", order: str = "[W[i], {row1}]", border: str = "[b[i], {bias1}]",
          others: str = "[k for k in range(W.shape[0]) if k != i]", after: str = "") -> str:
    return f'''
def hotdog_head(source_net, categories):
    i = {index}
    W, b = source_net.fc.weight.detach(), source_net.fc.bias.detach()
    others = {others}
    head = nn.Linear(W.shape[1], 2)
    with torch.no_grad():
        head.weight.copy_(torch.stack({order.format(row1=row1)}))
        head.bias.copy_(torch.stack({border.format(bias1=bias1)}))
    {after}
    return head
'''


BY_NAME = "look 'hotdog' up by name"
HEADS = {  # name: (source, the cell that must catch it, what its message must say)
    "index 713 (d2l's MXNet tab)": (_head("713"), "hotdog_head_tests", BY_NAME),
    "index 934 hard-coded (wrong for the mini source model)": (_head("934"), "hotdog_head_tests", BY_NAME),
    "the mini model's index hard-coded": (_head("5"), "hotdog_head_tests", "row 0 must be output 934"),
    "rows swapped": (_head(order="[{row1}, W[i]]", border="[{bias1}, b[i]]"), "hotdog_head_tests",
                     "row 0 must be the source's 'hotdog' row"),
    "random not-hotdog row": (_head(row1="torch.randn(W.shape[1]) * 0.1"), "hotdog_head_tests",
                              r"row 1 \(not-hotdog\) must be the mean"),
    "zero biases": (_head(border="[b[i] * 0, b[i] * 0]"), "hotdog_head_tests", "bias 0 must be the source's"),
    "not-hotdog row averages every class, hotdog included": (
        _head(others="list(range(W.shape[0]))"), "hotdog_head_tests", "mean of the rows of all the other classes"),
    "not-hotdog bias left at nn.Linear's random init": (
        _head(border="[b[i], head.bias[1]]"), "hotdog_head_tests", "bias 1 .* mean of the biases"),
    "head returned frozen": (_head(after="head.requires_grad_(False)"), "hotdog_head_copy_tests",
                             "the new head must be trainable"),
}


# --- exercise 2: predict
def _predict(before: str = "net.eval()", context: str = "torch.inference_mode()",
             after: str = "net.train(was_training)", out: str = "torch.softmax(net(X), dim=1)",
             label: str = "y") -> str:
    return f'''
import contextlib
def predict(net, data_iter):
    was_training = net.training
    {before}
    probs, labels = [], []
    with {context}:
        for X, y in data_iter:
            probs.append({out})
            labels.append({label})
    {after}
    return torch.cat(probs), torch.cat(labels)
'''


PREDICTS = {
    "no eval() (BatchNorm on batch statistics, running stats overwritten)": (
        _predict(before="pass"), "predict_tests", "running statistics changed"),
    "mode not restored": (_predict(after="pass"), "predict_mode_tests", "leave it in train mode"),
    "always back to train mode": (_predict(after="net.train()"), "predict_mode_tests", "leave it in eval mode"),
    "gradients tracked": (_predict(context="contextlib.nullcontext()"), "predict_tests", "gradients were tracked"),
    "logits, not probabilities": (_predict(out="net(X)"), "predict_tests", "probabilities"),
    "softmax over the batch (dim=0)": (_predict(out="torch.softmax(net(X), dim=0)"), "predict_tests",
                                       "probabilities .*summing to 1"),
    "eval() on the top module, BatchNorm put back in train mode": (
        _predict(before="net.eval(); [m.train() for m in net.modules() if isinstance(m, nn.BatchNorm2d)]"),
        "predict_tests", "running statistics changed"),
    "predicted classes returned as labels": (
        _predict(label="net(X).argmax(1)"), "predict_tests", "must be the true labels"),
    "only the top module's flag restored": (
        _predict(after="net.training = was_training"), "predict_mode_tests", "restore the mode of the whole net"),
}
PREDICT_HELPER = '''
def predict(net, data_iter):
    return training.predict(net, data_iter)
'''

# one run per pair: the two exercises are independent, so each run checks one wrong answer of each
_heads, _predicts = list(HEADS), list(PREDICTS)
PAIRS = [(_heads[i] if i < len(_heads) else None, _predicts[i] if i < len(_predicts) else None)
         for i in range(max(len(_heads), len(_predicts)))]


@pytest.mark.parametrize("head_case,predict_case", PAIRS, ids=[f"{h} / {p}" for h, p in PAIRS])
def test_wrong_answers_are_caught_by_their_check(head_case, predict_case):
    replace, caught = {}, {}
    if head_case:
        src, cell, message = HEADS[head_case]
        replace["hotdog_head_impl"], caught[cell] = src, message
    if predict_case:
        src, cell, message = PREDICTS[predict_case]
        replace["predict_impl"], caught[cell] = src, message
    errors = run_cells(NB, LAST, replace=replace)
    for cell, message in caught.items():
        assert_caught(errors, cell, message)
    assert_passes(errors, [c for c in GRADED if c not in caught])


PREDICT_HELPER_ALIAS = '''
from helpers.training import predict as course_predict  # the helper under another name
def predict(net, data_iter):
    return course_predict(net, data_iter)
'''


@pytest.mark.parametrize("source", [PREDICT_HELPER, PREDICT_HELPER_ALIAS], ids=["helper", "helper by another name"])
def test_calling_the_course_helper_scores_nothing(source):
    """``training.predict`` is what the exercise asks to write: both of its cells refuse it, by any name."""
    errors = run_cells(NB, LAST, replace={"predict_impl": source})
    assert_caught(errors, "predict_tests", "write predict yourself")
    assert_caught(errors, "predict_mode_tests", "write predict yourself")
    assert_passes(errors, ["hotdog_head_tests", "hotdog_head_copy_tests"])


def test_reference_solutions_pass():
    errors = run_cells(NB, LAST)
    assert_passes(errors, GRADED)
