"""Chapter 2 (hotdog fine-tuning): correct answers written differently from the reference solutions
get full points, i.e. pass every graded cell of their exercise.

The exercises are independent, so one notebook run checks one alternative answer of each."""
from __future__ import annotations

import pytest

from tests.nbrun import assert_passes, run_cells

NB = "solutions/ch2_hotdog/ch2_hotdog.ipynb"
LAST = "predict_mode_tests"
GRADED = ["hotdog_head_tests", "hotdog_head_copy_tests", "predict_tests", "predict_mode_tests"]

# a loop over the names, the other rows' mean as (sum - hotdog row) / (n - 1), load_state_dict
HEAD_SUM_MINUS_ROW = '''
def hotdog_head(source_net, categories):
    i = next(k for k, name in enumerate(categories) if name == "hotdog")
    W, b = source_net.fc.weight.detach(), source_net.fc.bias.detach()
    n = W.shape[0]
    head = nn.Linear(source_net.fc.in_features, 2)
    head.load_state_dict({"weight": torch.stack([W[i], (W.sum(0) - W[i]) / (n - 1)]).clone(),
                          "bias": torch.stack([b[i], (b.sum() - b[i]) / (n - 1)]).clone()})
    return head
'''

# a boolean mask, new Parameters assigned to the layer (built on the source's device)
HEAD_MASK = '''
def hotdog_head(source_net, categories):
    i = list(categories).index("hotdog")
    keep = torch.ones(len(categories), dtype=torch.bool)
    keep[i] = False
    fc = source_net.fc
    head = nn.Linear(fc.in_features, 2).to(fc.weight.device)
    with torch.no_grad():
        head.weight = nn.Parameter(torch.cat([fc.weight[i:i + 1], fc.weight[keep].mean(0, keepdim=True)]))
        head.bias = nn.Parameter(torch.stack([fc.bias[i], fc.bias[keep].mean()]))
    return head
'''

# torch.no_grad instead of inference_mode, try/finally, nn.functional.softmax, a list comprehension
PREDICT_NO_GRAD = '''
import torch.nn.functional as F

def predict(net, data_iter):
    device = next(net.parameters()).device
    mode = net.training
    net.eval()
    try:
        with torch.no_grad():
            pairs = [(F.softmax(net(X.to(device)), dim=-1).cpu(), y) for X, y in data_iter]
    finally:
        net.train(mode)
    return torch.cat([p for p, _ in pairs]), torch.cat([y for _, y in pairs])
'''

# another reading of "leave the net in the mode it found it in": every submodule's own flag restored
PREDICT_PER_MODULE = '''
def predict(net, data_iter):
    modes = {m: m.training for m in net.modules()}
    net.eval()
    device = next(net.parameters()).device
    probs, labels = [], []
    with torch.inference_mode():
        for X, y in data_iter:
            logits = net(X.to(device))
            probs.append(logits.softmax(1).to("cpu"))
            labels.append(y.to("cpu"))
    for m, was_training in modes.items():
        m.training = was_training
    return torch.cat(probs), torch.cat(labels)
'''


@pytest.mark.parametrize("head_src,predict_src", [(HEAD_SUM_MINUS_ROW, PREDICT_NO_GRAD),
                                                  (HEAD_MASK, PREDICT_PER_MODULE)],
                         ids=["sum-minus-row / no_grad", "mask / per-module modes"])
def test_other_correct_answers_get_full_points(head_src, predict_src):
    errors = run_cells(NB, LAST, replace={"hotdog_head_impl": head_src, "predict_impl": predict_src})
    assert_passes(errors, GRADED)
