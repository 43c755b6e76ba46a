from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision
from torch import nn

from helpers import models, world
from helpers.profile import get_profile


def test_mini_model_has_resnet18_module_names():
    mini = models.source_model(get_profile("fast"))
    ref = torchvision.models.resnet18(weights=None)
    assert [n for n, _ in mini.named_children()] == [n for n, _ in ref.named_children()]
    assert mini.fc.out_features == len(world.SOURCE_CLASSES)
    assert models.MINI_CHECKPOINT.stat().st_size < 5 * 2**20


def test_checkpoint_hash_is_recorded():
    assert hashlib.sha256(models.MINI_CHECKPOINT.read_bytes()).hexdigest() == models.MINI_CHECKPOINT_SHA256


def test_finetune_net_copies_the_body_and_gets_a_new_head():
    p = get_profile("fast")
    src = models.source_model(p)
    net = models.finetune_net(p, 2, source=src)
    assert net.fc.out_features == 2 and net.fc is not src.fc
    for (name, a), (_, b) in zip(net.state_dict().items(), src.state_dict().items()):
        if not name.startswith("fc."):
            assert torch.equal(a, b), name
    w = net.fc.weight
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5  # Xavier uniform
    assert w.abs().max() <= bound and torch.all(net.fc.bias == 0)
    scratch = models.scratch_net(p)
    assert not torch.equal(scratch.conv1.weight, src.conv1.weight)


def test_layer_groups_cover_every_parameter_once():
    net = models.finetune_net(get_profile("fast"))
    ids = [id(p) for g in models.LAYER_GROUPS for p in models.group_parameters(net, g)]
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))
    assert sum(models.group_sizes(net).values()) == models.count_parameters(net)


def test_freeze_and_unfreeze_by_group():
    net = models.finetune_net(get_profile("fast"))
    models.freeze(net)
    assert models.trainable_groups(net) == ["head"]
    assert models.count_parameters(net, trainable_only=True) == 128 * 2 + 2
    models.unfreeze(net, "layer4")
    assert models.trainable_groups(net) == ["layer4", "head"]
    models.unfreeze(net)
    assert models.trainable_groups(net) == list(models.LAYER_GROUPS)
    with pytest.raises(KeyError, match="unknown layer group"):
        models.freeze(net, "layer5")


def test_torchvision_resnet18_groups():
    net = torchvision.models.resnet18(weights=None)
    sizes = models.group_sizes(net)
    assert sum(sizes.values()) == 11_689_512 and sizes["head"] == 513_000


def test_gradual_unfreezer_unfreezes_from_the_head_and_checks_the_optimizer():
    net = models.MiniResNet(2, widths=(4, 8, 8, 16))
    opt = torch.optim.SGD(models.param_groups(net, 0.1), lr=0.1)
    unfreezer = models.GradualUnfreezer(every=2)
    stages = []
    for epoch in range(14):
        unfreezer.on_epoch_start(epoch, net, opt)
        stages.append(models.trainable_groups(net))
    assert stages[:4] == [["head"], ["head"], ["layer4", "head"], ["layer4", "head"]]
    assert stages[10] == stages[13] == list(models.LAYER_GROUPS)
    # an optimizer without layer4's BatchNorm: refused at the epoch layer4 would be unfrozen, nothing changed
    net = models.MiniResNet(2, widths=(4, 8, 8, 16))
    partial = torch.optim.SGD([p for n, p in net.named_parameters() if not n.startswith("layer4.0.bn")], lr=0.1)
    unfreezer = models.GradualUnfreezer()
    unfreezer.on_epoch_start(0, net, partial)
    with pytest.raises(ValueError, match="'layer4' is to be unfrozen"):
        unfreezer.on_epoch_start(1, net, partial)
    assert models.trainable_groups(net) == ["head"]
    with pytest.raises(ValueError, match="every must be >= 1"):
        models.GradualUnfreezer(every=0)


def test_geometric_param_groups_spread_does_not_depend_on_the_number_of_groups():
    net = models.MiniResNet(2, widths=(4, 8, 8, 16))
    models.freeze(net)
    six = models.geometric_param_groups(models.layer_groups(net), 1.0, spread=100)
    assert [g["name"] for g in six] == list(models.LAYER_GROUPS)
    lrs = [g["lr"] for g in six]
    assert lrs[-1] == pytest.approx(1.0) and lrs[0] == pytest.approx(0.01)
    assert all(b / a == pytest.approx(100 ** 0.2) for a, b in zip(lrs, lrs[1:]))
    assert sorted(id(p) for g in six for p in g["params"]) == sorted(id(p) for p in net.parameters())
    three = {"a": [net.conv1, net.bn1, net.layer1, net.layer2], "b": [net.layer3, net.layer4], "head": [net.fc]}
    assert [g["lr"] for g in models.geometric_param_groups(three, 1.0)] == pytest.approx([0.01, 0.1, 1.0])
    with pytest.raises(ValueError, match="spread must be >= 1"):
        models.geometric_param_groups(three, 1.0, spread=0.5)
