"""Models: the pretrained source model, the fine-tuning target, named layer groups, freezing.

Both profiles use the module names of torchvision's ResNet-18 (``conv1``, ``bn1``, ``layer1`` ..
``layer4``, ``fc``), so every chapter and exercise runs unchanged on the mini model (fast profile)
and on the real ImageNet ResNet-18 (full profile).
"""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any, Mapping

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

from helpers.profile import Profile

LAYER_GROUPS: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
ASSETS = Path(__file__).resolve().parent / "assets"
MINI_CHECKPOINT = ASSETS / "mini_resnet_source.pt"
# sha256 of the committed checkpoint; rebuild with `python sourcemodel/build_source_model.py`.
MINI_CHECKPOINT_SHA256 = "3a673dd3c222d4905c327210401820f903d4d116eed72b68ad089c63994f40d2"


class MiniResNet(nn.Module):
    """A small ResNet (one BasicBlock per stage) with torchvision ResNet-18's module names.

    For 32x32 inputs: 3x3 stem at stride 1, a 2x2 max-pool, then four stages of widths ``widths``.
    """

    def __init__(self, num_classes: int, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
                 block: type[nn.Module] = BasicBlock) -> None:
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = self._make_layer(block, widths[0], 1)
        self.layer2 = self._make_layer(block, widths[1], 2)
        self.layer3 = self._make_layer(block, widths[2], 2)
        self.layer4 = self._make_layer(block, widths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type[nn.Module], planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layer = nn.Sequential(block(self.inplanes, planes, stride, downsample))
        self.inplanes = planes
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_categories(profile: Profile) -> list[str]:
    """Class names of the source model's output layer (ImageNet's 1,000, or the mini world's)."""
    if profile.fast:
        from helpers.world import SOURCE_CLASSES

        return list(SOURCE_CLASSES)
    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def source_model(profile: Profile, url: str | None = None) -> nn.Module:
    """The pretrained source model: torchvision's ResNet-18 with ``IMAGENET1K_V1`` weights (full),
    or the mini ResNet pretrained on the mini source dataset (fast). ``url`` overrides the weights'
    address (tests use a local server)."""
    if profile.fast:
        from helpers.world import SOURCE_CLASSES

        if not MINI_CHECKPOINT.exists():
            raise FileNotFoundError(f"{MINI_CHECKPOINT} is missing; rebuild it with "
                                    "`python sourcemodel/build_source_model.py`.")
        if MINI_CHECKPOINT_SHA256 != "UNSET" and _sha256(MINI_CHECKPOINT) != MINI_CHECKPOINT_SHA256:
            raise RuntimeError(f"{MINI_CHECKPOINT} does not match its recorded SHA-256; restore it "
                               "with `git checkout helpers/assets` or rebuild it with "
                               "`python sourcemodel/build_source_model.py`.")
        net = MiniResNet(len(SOURCE_CLASSES))
        net.load_state_dict(torch.load(MINI_CHECKPOINT, map_location="cpu", weights_only=True))
        return net
    from helpers.download import load_state_dict

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    net = torchvision.models.resnet18(weights=None)
    net.load_state_dict(load_state_dict(url or weights.url))
    return net


def new_head(net: nn.Module, num_classes: int) -> nn.Module:
    """Replace ``net.fc`` by a fresh Xavier-initialised ``Linear`` with ``num_classes`` outputs."""
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    nn.init.xavier_uniform_(net.fc.weight)
    nn.init.zeros_(net.fc.bias)
    return net


def finetune_net(profile: Profile, num_classes: int = 2, source: nn.Module | None = None) -> nn.Module:
    """The target model: a copy of the pretrained source model with a new output layer."""
    net = copy.deepcopy(source) if source is not None else source_model(profile)
    return new_head(net, num_classes)


def scratch_net(profile: Profile, num_classes: int = 2) -> nn.Module:
    """The same architecture as :func:`finetune_net`, every parameter randomly initialised."""
    if profile.fast:
        from helpers.world import SOURCE_CLASSES

        net: nn.Module = MiniResNet(len(SOURCE_CLASSES))
    else:
        net = torchvision.models.resnet18(weights=None)
    return new_head(net, num_classes)


def layer_groups(net: nn.Module) -> dict[str, list[nn.Module]]:
    """Named layer groups, input to output: stem, layer1..layer4, head."""
    return {"stem": [net.conv1, net.bn1], "layer1": [net.layer1], "layer2": [net.layer2],
            "layer3": [net.layer3], "layer4": [net.layer4], "head": [net.fc]}


def group_parameters(net: nn.Module, group: str) -> list[nn.Parameter]:
    """All parameters of one named group (trainable or not)."""
    groups = layer_groups(net)
    if group not in groups:
        raise KeyError(f"unknown layer group {group!r}; use one of {list(groups)}")
    return [p for module in groups[group] for p in module.parameters()]


def set_trainable(net: nn.Module, groups: list[str] | tuple[str, ...] | str, trainable: bool) -> None:
    """Set ``requires_grad`` on every parameter of the named groups."""
    for group in [groups] if isinstance(groups, str) else groups:
        for p in group_parameters(net, group):
            p.requires_grad_(trainable)


def freeze(net: nn.Module, groups: list[str] | tuple[str, ...] | str = LAYER_GROUPS[:-1]) -> None:
    """Freeze the named groups (default: everything but the head)."""
    set_trainable(net, groups, False)


def unfreeze(net: nn.Module, groups: list[str] | tuple[str, ...] | str = LAYER_GROUPS) -> None:
    """Unfreeze the named groups (default: all)."""
    set_trainable(net, groups, True)


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` if ``trainable_only``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def group_sizes(net: nn.Module, trainable_only: bool = False) -> dict[str, int]:
    """Parameter count of each layer group."""
    return {g: sum(p.numel() for p in group_parameters(net, g) if p.requires_grad or not trainable_only)
            for g in LAYER_GROUPS}


def trainable_groups(net: nn.Module) -> list[str]:
    """The groups whose parameters are all trainable."""
    return [g for g in LAYER_GROUPS if all(p.requires_grad for p in group_parameters(net, g))]


def param_groups(net: nn.Module, lr: float, lr_mult: Mapping[str, float] | None = None,
                 weight_decay: float | None = None) -> list[dict[str, Any]]:
    """One optimizer group per layer group, *all registered up front*, frozen ones included.

    Registering every group (as fastai does) means a group unfrozen later is trained by the same
    optimizer and scheduler; frozen parameters have no gradient, so the optimizer skips them.
    ``lr_mult`` maps group name -> multiplier of ``lr`` (default 1). Each group keeps its ``name``.

    ``weight_decay`` is written into the groups only when given: a key in a group beats the
    optimizer's own default, so ``SGD(param_groups(net, lr), weight_decay=5e-4)`` decays every group
    (with ``"weight_decay": 0.0`` in each group it would silently train without any decay).
    """
    lr_mult = dict(lr_mult or {})
    unknown = set(lr_mult) - set(LAYER_GROUPS)
    if unknown:
        raise KeyError(f"unknown layer groups {sorted(unknown)}; use {list(LAYER_GROUPS)}")
    extra = {} if weight_decay is None else {"weight_decay": weight_decay}
    return [{"params": group_parameters(net, g), "lr": lr * lr_mult.get(g, 1.0), "name": g, **extra}
            for g in LAYER_GROUPS]


def discriminative_mult(factor: float = 2.6, top: str = "head") -> dict[str, float]:
    """Learning-rate multipliers divided by ``factor`` per group going down from ``top`` (ULMFiT)."""
    order = list(reversed(LAYER_GROUPS))
    start = order.index(top)
    return {g: factor ** -max(0, i - start) for i, g in enumerate(order)}


class GradualUnfreezer:
    """The reference gradual unfreezer (ULMFiT), a ``helpers.training.train`` callback: at the start
    of epoch ``e`` the top ``1 + e // every`` groups of :func:`layer_groups` are trainable (the head
    first, then toward the input) and the others frozen. Raises ``ValueError``, before changing
    anything, when a group to be made trainable has parameters the optimizer does not know."""

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1 (epochs per stage), got {every}")
        self.every = every

    def on_epoch_start(self, epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        names = list(layer_groups(net))
        trainable = names[len(names) - min(len(names), 1 + epoch // self.every):]
        known = {id(p) for g in optimizer.param_groups for p in g["params"]}
        for name in trainable:
            if any(id(p) not in known for p in group_parameters(net, name)):
                raise ValueError(f"group {name!r} is to be unfrozen but the optimizer does not know its "
                                 "parameters: register every group when you build the optimizer")
        freeze(net, [n for n in names if n not in trainable])
        unfreeze(net, trainable)


def geometric_param_groups(groups: Mapping[str, list[nn.Module]], max_lr: float,
                           spread: float = 100.0) -> list[dict[str, Any]]:
    """One optimizer group per layer group of ``groups`` (input to output, e.g. :func:`layer_groups`),
    all registered, frozen ones included: the last group (the head) gets ``max_lr``, the first
    ``max_lr / spread``, the others rates spaced geometrically in between (fastai's
    ``slice(max_lr / spread, max_lr)``). The factor per group is ``spread ** (1 / (n - 1))``: it
    depends on how many groups the network is cut into; the spread does not."""
    if spread < 1:
        raise ValueError(f"spread must be >= 1 (the head's rate over the first group's), got {spread}")
    names = list(groups)
    n = len(names)
    return [{"params": [p for m in groups[name] for p in m.parameters()],
             "lr": max_lr / spread ** ((n - 1 - i) / max(1, n - 1)), "name": name}
            for i, name in enumerate(names)]
