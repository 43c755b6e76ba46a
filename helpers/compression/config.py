"""The YAML workflow config: parsed into dataclasses, validated with errors that name the entry and the fix."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

METHODS = ("pruning", "quantization", "distillation")


class ConfigError(ValueError):
    """A workflow configuration is invalid; the message says where and what to change."""


@dataclass
class Finetuning:
    epochs: int = 0
    lr: float = 0.01


@dataclass
class Step:
    method: str
    sparsity: float | None = None  # pruning
    calibration_batches: int = 4  # quantization
    temperature: float = 4.0  # distillation
    alpha: float = 0.5
    student_widths: tuple[int, int, int, int] | None = None  # None: the previous step's model
    finetuning: Finetuning = field(default_factory=Finetuning)


@dataclass
class Experiment:
    name: str
    steps: list[Step]


@dataclass
class WorkflowConfig:
    experiments: list[Experiment]
    seed: int = 0


_PARAMS = {"pruning": {"sparsity"}, "quantization": {"dtype", "calibration_batches"},
           "distillation": {"temperature", "alpha", "student_widths"}}


def _num(value: Any, where: str, kind: type = float) -> Any:
    ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{where}: expected a{'n integer' if kind is int else ' number'}, got "
                          f"{value!r} ({type(value).__name__})")
    return kind(value)


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping (key: value lines), got {type(value).__name__}")
    return dict(value)


def _step(raw: Any, where: str, previous: list[Step]) -> Step:
    raw = _mapping(raw, where)
    unknown = set(raw) - {"method", "params", "finetuning", "name"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; use method, params, finetuning")
    if "method" not in raw:
        raise ConfigError(f"{where}: missing key 'method' (one of {list(METHODS)})")
    method = raw["method"]
    if method not in METHODS:
        raise ConfigError(f"{where}.method: unknown method {method!r}; use one of {list(METHODS)}")
    if previous and previous[-1].method == "quantization":
        raise ConfigError(f"{where}: nothing can follow quantization (an int8 model has no float "
                          "weights to prune or train); put quantization last")
    params = _mapping(raw.get("params"), f"{where}.params")
    unknown = set(params) - _PARAMS[method]
    if unknown:
        raise ConfigError(f"{where}.params: unknown keys {sorted(unknown)} for {method}; "
                          f"use {sorted(_PARAMS[method])}")
    step = Step(method)
    if method == "pruning":
        if "sparsity" not in params:
            raise ConfigError(f"{where}.params: missing key 'sparsity' (fraction of weights to remove, "
                              "e.g. 0.5)")
        step.sparsity = _num(params["sparsity"], f"{where}.params.sparsity")
        if not 0 < step.sparsity < 1:
            raise ConfigError(f"{where}.params.sparsity: {step.sparsity} is not in (0, 1); it is the "
                              "fraction of weights set to zero, e.g. 0.5")
    elif method == "quantization":
        if params.get("dtype", "qint8") != "qint8":
            raise ConfigError(f"{where}.params.dtype: only 'qint8' (static int8) is supported, got "
                              f"{params['dtype']!r}")
        step.calibration_batches = _num(params.get("calibration_batches", 4),
                                        f"{where}.params.calibration_batches", int)
    else:
        step.temperature = _num(params.get("temperature", 4.0), f"{where}.params.temperature")
        step.alpha = _num(params.get("alpha", 0.5), f"{where}.params.alpha")
        if step.temperature <= 0:
            raise ConfigError(f"{where}.params.temperature: must be > 0, got {step.temperature}")
        if not 0 <= step.alpha <= 1:
            raise ConfigError(f"{where}.params.alpha: must be in [0, 1], got {step.alpha}")
        widths = params.get("student_widths")
        if widths is not None:
            if not isinstance(widths, (list, tuple)) or len(widths) != 4:
                raise ConfigError(f"{where}.params.student_widths: expected a list of 4 integers, "
                                  f"e.g. [8, 16, 32, 64], got {widths!r}")
            step.student_widths = tuple(_num(w, f"{where}.params.student_widths", int) for w in widths)
        elif not previous:
            raise ConfigError(f"{where}: distillation needs a student: give params.student_widths, or "
                              "put it after another step (the student is then that step's model)")
    ft = _mapping(raw.get("finetuning"), f"{where}.finetuning")
    unknown = set(ft) - {"epochs", "lr"}
    if unknown:
        raise ConfigError(f"{where}.finetuning: unknown keys {sorted(unknown)}; use epochs, lr")
    step.finetuning = Finetuning(_num(ft.get("epochs", 0), f"{where}.finetuning.epochs", int),
                                 _num(ft.get("lr", 0.01), f"{where}.finetuning.lr"))
    if step.finetuning.epochs < 0 or step.finetuning.lr <= 0:
        raise ConfigError(f"{where}.finetuning: need epochs >= 0 and lr > 0, got {ft}")
    if method == "distillation" and step.finetuning.epochs == 0:
        raise ConfigError(f"{where}.finetuning.epochs: distillation trains the student, give epochs >= 1")
    return step


def load_config(source: str | Path | Mapping) -> WorkflowConfig:
    """Parse and validate a workflow config: a path to a YAML file, YAML text, or a dict.

    ``compression`` is a list of entries; an entry is one step (``method``, ``params``,
    ``finetuning``) or a named chain ``{name: ..., steps: [step, step, ...]}`` applied in order.
    Raises :class:`ConfigError` naming the entry and the fix."""
    import yaml

    if isinstance(source, Mapping):
        raw: Any = dict(source)
    else:
        text = str(source)
        if "\n" not in text and Path(text).suffix in (".yaml", ".yml"):
            if not Path(text).exists():
                raise ConfigError(f"config file {text} does not exist")
            text = Path(text).read_text()
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"not valid YAML: {err}") from err
    raw = _mapping(raw, "config")
    unknown = set(raw) - {"compression", "seed", "model", "data"}
    if unknown:
        raise ConfigError(f"config: unknown top-level keys {sorted(unknown)}; use compression (and seed)")
    entries = raw.get("compression")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("config: missing or empty 'compression' list (one '- method: ...' per entry)")
    experiments, names = [], set()
    for i, entry in enumerate(entries):
        where = f"compression[{i}]"
        entry = _mapping(entry, where)
        if "steps" in entry:
            if not isinstance(entry["steps"], list) or not entry["steps"]:
                raise ConfigError(f"{where}.steps: expected a non-empty list of steps")
            steps: list[Step] = []
            for j, s in enumerate(entry["steps"]):
                steps.append(_step(s, f"{where}.steps[{j}]", steps))
            name = entry.get("name") or "+".join(s.method for s in steps)
        else:
            steps = [_step(entry, where, [])]
            name = entry.get("name") or _label(steps[0])
        if name in names:
            raise ConfigError(f"{where}: duplicate name {name!r}; give each entry a unique 'name'")
        names.add(name)
        experiments.append(Experiment(str(name), steps))
    return WorkflowConfig(experiments, _num(raw.get("seed", 0), "config.seed", int))


def _label(step: Step) -> str:
    if step.method == "pruning":
        return f"pruning {step.sparsity:.0%}"
    return {"quantization": "int8", "distillation": "distillation"}[step.method]


# --- epoch caps ---
def cap_epochs(config: WorkflowConfig, profile: Any) -> WorkflowConfig:
    """A copy of ``config`` whose fine-tuning epochs go through ``profile.epochs`` (capped by
    ``COURSE_MAX_EPOCHS`` in smoke runs). Zero stays zero: a quantization step without epochs must
    not become quantization-aware training."""
    import copy

    out = copy.deepcopy(config)
    for exp in out.experiments:
        for step in exp.steps:
            if step.finetuning.epochs > 0:
                step.finetuning.epochs = profile.epochs(step.finetuning.epochs)
    return out
