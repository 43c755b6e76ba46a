"""Chapter 2 (hotdog fine-tuning): the tests of exercises 1 (``hotdog_head``) and 2 (``predict``)
catch the classic wrong answers, and the reference solutions pass. Each run stops at
``predict_tests``, before any real training; a run replaces one answer of each exercise."""
from __future__ import annotations

import pytest

from tests.nbrun import run_until

NB = "solutions/ch2_hotdog/ch2_hotdog.ipynb"
LAST = "predict_tests"


# --- exercise 1: hotdog_head
def _head(index: str, row1: str = "W[others].mean(0)", bias1: str = "b[others].mean()",
          order: str = "[W[i], {row1}]", border: str = "[b[i], {bias1}]") -> str:
    return f'''
def hotdog_head(source_net, categories):
    i = {index}
    W, b = source_net.fc.weight.detach(), source_net.fc.bias.detach()
    others = [k for k in range(W.shape[0]) if k != i]
    head = nn.Linear(W.shape[1], 2)
    with torch.no_grad():
        head.weight.copy_(torch.stack({order.format(row1=row1)}))
        head.bias.copy_(torch.stack({border.format(bias1=bias1)}))
    return head
'''


HEAD_713 = _head("713")  # the MXNet tab's index
HEAD_934 = _head("934")  # torchvision's ImageNet index, hard-coded: wrong for the mini source model
HEAD_MINI_5 = _head("5")  # the mini source model's index, hard-coded: passes the visible test only
HEAD_SWAPPED = _head('list(categories).index("hotdog")', order="[{row1}, W[i]]", border="[{bias1}, b[i]]")
HEAD_RANDOM_ROW1 = _head('list(categories).index("hotdog")', row1="torch.randn(W.shape[1]) * 0.1")
HEAD_ZERO_BIAS = _head('list(categories).index("hotdog")', border="[b[i] * 0, b[i] * 0]")


# --- exercise 2: predict
def _predict(before: str = "net.eval()", context: str = "torch.inference_mode()", after: str = "net.train(was_training)",
             out: str = "torch.softmax(net(X), dim=1)") -> str:
    return f'''
def predict(net, data_iter):
    was_training = net.training
    {before}
    probs, labels = [], []
    with {context}:
        for X, y in data_iter:
            probs.append({out})
            labels.append(y)
    {after}
    return torch.cat(probs), torch.cat(labels)
'''


PRED_NO_EVAL = _predict(before="pass")  # BatchNorm in train mode: batch statistics, running stats overwritten
PRED_NOT_RESTORED = _predict(after="pass")  # leaves a training net in eval mode
PRED_ALWAYS_TRAIN = _predict(after="net.train()")  # a net found in eval mode comes back in train mode
PRED_WITH_GRAD = _predict(context="contextlib.nullcontext()").replace("def predict", "import contextlib\ndef predict")
PRED_LOGITS = _predict(out="net(X)")  # logits, not probabilities
PRED_ONLY_BN_EVAL = _predict(  # eval on the top module only, then train() on every child: BatchNorm back in train mode
    before="net.eval(); [m.train() for m in net.modules() if isinstance(m, nn.BatchNorm2d)]")

CASES = {
    "index 713 / no eval()": (HEAD_713, PRED_NO_EVAL),
    "hard-coded 934 / mode not restored": (HEAD_934, PRED_NOT_RESTORED),
    "hard-coded mini index / always back to train": (HEAD_MINI_5, PRED_ALWAYS_TRAIN),
    "rows swapped / gradients tracked": (HEAD_SWAPPED, PRED_WITH_GRAD),
    "random not-hotdog row / logits": (HEAD_RANDOM_ROW1, PRED_LOGITS),
    "zero biases / BatchNorm left in train mode": (HEAD_ZERO_BIAS, PRED_ONLY_BN_EVAL),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_answers_fail(case):
    head_src, predict_src = CASES[case]
    failed = run_until(NB, LAST, replace={"hotdog_head_impl": head_src, "predict_impl": predict_src})
    assert failed["hotdog_head_tests"], f"{case}: hotdog_head_tests should fail"
    assert failed["predict_tests"], f"{case}: predict_tests should fail"


def test_reference_solutions_pass():
    failed = run_until(NB, LAST)
    assert not any(failed.values()), failed
