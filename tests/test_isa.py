"""Regression test for issue 9: the course's own training path on AVX2-only x86 CPUs.

oneDNN's AVX2 1x1-convolution backward corrupts the heap for NHWC inputs with fewer input channels
than its block (uxlfoundation/oneDNN#6035); ``grading.tiny_net()`` has such a convolution (layer2's
4-channel stride-2 downsample). ``ONEDNN_MAX_CPU_ISA=AVX2`` makes an AVX-512 machine dispatch the
AVX2 kernels, and ``OMP_NUM_THREADS=1`` turns the corruption into an abort (with more threads it
hangs or gives different weights; one thread also keeps the test cheap and free of OpenMP
oversubscription on a busy 2-core CI machine). Each run is a fresh process: a corrupted heap cannot leak into
the next check. Before the fix this test aborted (or timed out); now both runs finish and agree.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The course's path: train() with its defaults on tiny_net(), then a hidden-test-like call
# (frozen backbone, optimizer groups, unfreezing callback, evaluate, a QAT copy fine-tuned).
SCRIPT = r"""
import hashlib, torch
from helpers import grading, models, seed_everything, training
from helpers import compression as C

def digest(net):
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode()); h.update(v.detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]

seed_everything(0)
net = grading.tiny_net()
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
training.train(net, grading.tiny_loader(), grading.tiny_loader(), opt, 3, progress=False)
print("train", digest(net))

seed_everything(1)
net = grading.tiny_net(seed=1)
models.freeze(net)
opt = torch.optim.SGD(models.param_groups(net, 0.05, models.discriminative_mult()), lr=0.05, momentum=0.9)
class Unfreeze:
    def on_epoch_start(self, epoch, net, optimizer):
        models.unfreeze(net, ["head", "layer4", "layer3", "layer2", "layer1", "stem"][:2 + 2 * epoch])
h = training.train(net, grading.tiny_loader(n=64), grading.tiny_loader(), opt, 3,
                   callbacks=[Unfreeze()], restore_best=True, progress=False)
print("hidden", digest(net), training.evaluate(net, grading.tiny_loader()))
qat = C.prepare_qat(net)
training.train(qat, grading.tiny_loader(), None, torch.optim.SGD(qat.parameters(), lr=0.01), 1, progress=False)
print("qat", digest(qat), C.sparsity(C.convert_qat(qat)))
"""


def run_fresh(env_extra: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COURSE_PROFILE": "fast", **env_extra}
    try:
        return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:  # two threads on a corrupted heap hang
        pytest.fail(f"the course's training path hung for {timeout} s with {env_extra}: {err.stderr!r}")


def test_course_training_path_is_safe_and_repeatable_on_avx2():
    env = {"ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    runs = [run_fresh(env) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, (f"the course's training path crashed (exit {r.returncode}) with {env}: "
                                   f"{r.stderr[-2000:]}")
    assert runs[0].stdout.count("\n") == 3 and runs[0].stdout == runs[1].stdout, \
        f"two identically seeded runs disagree with {env}:\n{runs[0].stdout}\n{runs[1].stdout}"
