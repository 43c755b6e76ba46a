"""Chapter 2 (hotdog fine-tuning): the tests of exercises 3 and 4 catch the classic wrong answers,
and the reference solutions pass. Each run stops at ``hotdog_head_tests``, before any real training."""
from __future__ import annotations

import pytest

from tests.nbrun import run_until

NB = "solutions/ch2_hotdog/ch2_hotdog.ipynb"
LAST = "hotdog_head_tests"

# --- exercise 3: frozen_feature_extractor
FROZEN_NOTHING = '''
def frozen_feature_extractor(net):
    return net  # forgets to freeze the backbone
'''
FROZEN_ONLY_HEAD_ON = '''
def frozen_feature_extractor(net):
    for p in net.fc.parameters():  # the head is trainable... and so is everything else
        p.requires_grad = True
    return net
'''
FROZEN_HEAD_TOO = '''
def frozen_feature_extractor(net):
    for param in net.parameters():  # the source text's snippet: freezes the new head as well
        param.requires_grad = False
    return net
'''


# --- exercise 4: hotdog_head
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

CASES = {
    "no freezing, index 713": (FROZEN_NOTHING, HEAD_713),
    "head frozen too, hard-coded 934": (FROZEN_HEAD_TOO, HEAD_934),
    "backbone left trainable, hard-coded mini index": (FROZEN_ONLY_HEAD_ON, HEAD_MINI_5),
    "rows swapped": (None, HEAD_SWAPPED),
    "random not-hotdog row": (None, HEAD_RANDOM_ROW1),
    "zero biases": (None, HEAD_ZERO_BIAS),
}


@pytest.mark.parametrize("case", list(CASES))
def test_wrong_answers_fail(case):
    frozen_src, head_src = CASES[case]
    replace = {"hotdog_head_impl": head_src}
    if frozen_src is not None:
        replace["frozen_impl"] = frozen_src
    failed = run_until(NB, LAST, replace=replace)
    assert failed["hotdog_head_tests"], f"{case}: hotdog_head_tests should fail"
    assert failed["frozen_tests"] == (frozen_src is not None), f"{case}: frozen_tests {failed['frozen_tests']}"


def test_reference_solutions_pass():
    failed = run_until(NB, LAST)
    assert not any(failed.values()), failed
