"""Run a configured compression workflow on copies of a baseline and measure every result."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from helpers.compression.config import Step, WorkflowConfig
from helpers.compression.measure import measure
from helpers.compression.pruning import clone, count_nonzero, prune_global_l1, sparsity
from helpers.compression.quantization import convert_qat, prepare_qat, quantize_static
from helpers.models import MiniResNet
from helpers.profile import seed_everything
from helpers.training import DistillationLoss, train

logger = logging.getLogger("helpers.compression")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | Path, level: int = logging.INFO) -> logging.Logger:
    """Send the ``helpers.compression`` logger to the file ``path`` (timestamp, level, logger name,
    message) at ``level``, and return it. The file handlers of earlier calls are removed and closed
    first: a re-run cell must not add one more handler (every line would be written twice, three
    times, ...)."""
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            logger.removeHandler(handler)
            handler.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _finetune(net: nn.Module, train_iter: Iterable, eval_iter: Iterable, epochs: int, lr: float,
              loss: nn.Module | None = None) -> nn.Module:
    if epochs > 0:
        opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=lr, momentum=0.9)
        train(net, train_iter, None, opt, epochs, loss=loss, progress=False)  # no per-epoch evaluation
    return net


def apply_step(step: Step, net: nn.Module, baseline: nn.Module, train_iter: Iterable,
               eval_iter: Iterable) -> nn.Module:
    """One configured step on a copy of ``net`` (``baseline`` is the distillation teacher)."""
    ft = step.finetuning
    if step.method == "pruning":
        out = _finetune(prune_global_l1(net, step.sparsity), train_iter, eval_iter, ft.epochs, ft.lr)
    elif step.method == "quantization":
        if ft.epochs > 0:
            out = convert_qat(_finetune(prepare_qat(net), train_iter, eval_iter, ft.epochs, ft.lr))
        else:
            out = quantize_static(net, train_iter, step.calibration_batches)
    else:
        device = next((p.device for p in baseline.parameters()), torch.device("cpu"))
        student = (MiniResNet(baseline.fc.out_features, step.student_widths).to(device)  # a new model: ours
                   if step.student_widths else clone(net))
        teacher = clone(baseline).eval()
        out = _finetune(student, train_iter, eval_iter, ft.epochs, ft.lr,
                        DistillationLoss(teacher, step.temperature, step.alpha))
    logger.info("  %s done: sparsity %.3f, nonzero %d", step.method, sparsity(out), count_nonzero(out))
    return out


def run_workflow(config: WorkflowConfig, baseline: nn.Module, train_iter: Iterable, eval_iter: Iterable,
                 profile: Any = None, example_batch: torch.Tensor | None = None,
                 keep_models: dict[str, nn.Module] | None = None) -> list[dict[str, Any]]:
    """Measure the baseline, then run every experiment of ``config`` on a **copy** of it (steps in
    order, each with its fine-tuning) and measure the result. Returns one row per model, baseline
    first. ``baseline`` is checked to be unchanged at the end. ``keep_models`` (a dict) receives
    the compressed models by name. Progress is logged on the ``helpers.compression`` logger.
    Everything runs where ``baseline`` is (it is never moved): pruning, fine-tuning and distillation
    on its device, int8 on the CPU (the only place int8 runs), latency on the CPU for every row."""
    if example_batch is None:
        example_batch = next(iter(eval_iter))[0][:8]
    before, was_training = _state(baseline), baseline.training
    logger.info("baseline: measuring")
    rows = [measure(baseline, eval_iter, example_batch, method="baseline")]
    logger.info("baseline: accuracy %.3f, %d bytes", rows[0]["accuracy"], rows[0]["size_bytes"])
    for exp in config.experiments:
        seed_everything(config.seed)
        logger.info("%s: %d step(s)", exp.name, len(exp.steps))
        start, net = time.perf_counter(), baseline
        for step in exp.steps:
            net = apply_step(step, net, baseline, train_iter, eval_iter)
        row = measure(net, eval_iter, example_batch, method=exp.name,
                      seconds=time.perf_counter() - start)
        logger.info("%s: accuracy %.3f, sparsity %.3f, %d bytes, %.2f ms", exp.name, row["accuracy"],
                    row["sparsity"], row["size_bytes"], row["latency_ms"])
        rows.append(row)
        if keep_models is not None:
            keep_models[exp.name] = net
    after = baseline.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before), \
        "run_workflow changed the baseline: a compression step worked in place"
    baseline.train(was_training)
    return rows
