"""helpers.compression: real behaviour on tiny models (fast: a few seconds in all)."""
import logging

import pytest
import torch
import torchvision

from helpers import compression as C
from helpers.grading import tiny_loader, tiny_net
from helpers.models import count_parameters
from helpers.training import train


def _state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pruning_copies_and_keeps_the_original():
    net = tiny_net()
    before = _state(net)
    pruned = C.prune_global_l1(net, 0.6)
    assert _same(before, net.state_dict()) and C.sparsity(net) == 0.0
    assert pruned is not net and abs(C.sparsity(pruned) - 0.6) < 0.01
    assert C.count_nonzero(pruned) < 0.5 * C.count_nonzero(net)
    assert count_parameters(pruned) == count_parameters(net)  # numel does not see pruning
    permanent = C.make_permanent(pruned)
    assert not any(k.endswith("_mask") for k in permanent.state_dict())
    assert abs(C.sparsity(permanent) - C.sparsity(pruned)) < 1e-9
    assert any(k.endswith("_mask") for k in pruned.state_dict())  # make_permanent copied
    assert C.serialized_size(pruned) < 0.75 * C.serialized_size(net)
    assert C.serialized_size(pruned, compress=False) == C.serialized_size(C.clone(net), compress=False)


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.9, 0.99])
def test_pruning_masks_are_torchs_global_l1_masks(amount):
    """The keep-the-largest shortcut of prune_global_l1 gives torch's own global L1 masks, also when
    a pruned model is pruned again (torch's PruningContainer prunes among the weights still there)."""
    from torch.nn.utils import prune

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3),
                              torch.nn.Flatten(), torch.nn.Linear(64, 10), torch.nn.BatchNorm1d(10))

    def torchs(model, a):
        ref = C.clone(model)
        prune.global_unstructured(C.prunable(ref), pruning_method=prune.L1Unstructured, amount=a)
        return ref

    def masks(model):
        return {k: v for k, v in model.state_dict().items() if k.endswith("_mask")}

    ours, ref = C.prune_global_l1(net, amount), torchs(net, amount)
    assert masks(ours).keys() == masks(ref).keys() and len(masks(ours)) == 3  # Conv2d and Linear only
    assert all(torch.equal(masks(ours)[k], masks(ref)[k]) for k in masks(ref))
    assert C.sparsity(ours) == pytest.approx(amount, abs=1e-4)
    again, ref_again = C.prune_global_l1(ours, 0.8), torchs(ref, 0.8)
    assert all(torch.equal(masks(again)[k], masks(ref_again)[k]) for k in masks(ref_again))
    assert C.sparsity(again) == pytest.approx(amount + (1 - amount) * 0.8, abs=1e-4)


def test_sparsity_survives_masked_finetuning_but_not_after_remove():
    loader = tiny_loader()
    pruned = C.prune_global_l1(tiny_net(), 0.7)
    s0 = C.sparsity(pruned)
    opt = torch.optim.SGD(pruned.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    train(pruned, loader, None, opt, 2, progress=False)
    assert C.sparsity(pruned) == pytest.approx(s0, abs=1e-9)
    C.clone(pruned)  # a trained masked model can still be copied
    removed = C.make_permanent(C.prune_global_l1(tiny_net(), 0.7))
    opt = torch.optim.SGD(removed.parameters(), lr=0.05, momentum=0.9)
    train(removed, loader, None, opt, 2, progress=False)
    assert C.sparsity(removed) < 0.5  # the document's mistake: weights grow back


def test_static_quantization_quantizes_convolutions_and_shrinks():
    net, loader = tiny_net(), tiny_loader()
    before = _state(net)
    q = C.quantize_static(net, loader, num_batches=2)
    assert _same(before, net.state_dict())
    layers = C.quantized_layers(q)
    assert "net.fc" in layers and sum("conv" in n or "downsample" in n for n in layers) >= 9
    assert C.serialized_size(q, compress=False) < C.serialized_size(net, compress=False)
    x = next(iter(loader))[0]
    assert q(x).shape == (8, 2) and C.latency_ms(q, x, repeats=2) > 0
    assert C.count_nonzero(q) > 0.9 * C.count_nonzero(net)
    dyn = C.quantize_dynamic(net)
    assert list(C.quantized_layers(dyn)) == ["fc"]  # dynamic quantization skips convolutions


def test_static_quantization_works_on_torchvision_resnet18():
    net = torchvision.models.resnet18(num_classes=2).eval()
    q = C.quantize_static(net, [(torch.randn(1, 3, 64, 64), None)], num_batches=1)
    assert len(C.quantized_layers(q)) == 21  # 20 convolutions + fc
    assert q(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_qat_trains_float_weights_then_converts():
    net, loader = tiny_net(), tiny_loader()
    qat = C.prepare_qat(net)
    assert count_parameters(qat, trainable_only=True) > 0
    train(qat, loader, None, torch.optim.SGD(qat.parameters(), lr=0.01), 1, progress=False)
    q = C.convert_qat(qat)
    assert "net.fc" in C.quantized_layers(q) and C.accuracy(q, loader) >= 0.0


def test_qat_after_pruning_keeps_the_masks_and_the_sparsity():
    loader = tiny_loader()
    pruned = C.prune_global_l1(tiny_net(), 0.7)
    s0 = C.sparsity(pruned)
    qat = C.prepare_qat(pruned)
    assert C.is_pruned(qat) and C.sparsity(qat) == pytest.approx(s0, abs=1e-9)
    opt = torch.optim.SGD(qat.parameters(), lr=0.05, momentum=0.9)
    train(qat, loader, None, opt, 2, progress=False)
    assert C.sparsity(qat) == pytest.approx(s0, abs=1e-9)  # no pruned weight grew back
    q = C.convert_qat(qat)
    assert C.sparsity(q) >= s0 - 1e-9  # pruned weights are int8 zeros (rounding may add a few)
    assert len(C.quantized_layers(q)) >= 10 and C.is_pruned(qat)  # qat itself is not changed


GOOD = """
seed: 0
compression:
  - method: pruning
    params: {sparsity: 0.5}
    finetuning: {epochs: 1, lr: 0.01}
  - method: quantization
  - name: chain
    steps:
      - method: pruning
        params: {sparsity: 0.5}
      - method: distillation
        params: {temperature: 2.0, alpha: 0.5}
        finetuning: {epochs: 1, lr: 0.01}
      - method: quantization
"""


def test_config_parses():
    cfg = C.load_config(GOOD)
    assert [e.name for e in cfg.experiments] == ["pruning 50%", "int8", "chain"]
    assert cfg.experiments[0].steps[0].finetuning.epochs == 1
    assert [s.method for s in cfg.experiments[2].steps] == ["pruning", "distillation", "quantization"]


@pytest.mark.parametrize("text, words", [
    ("compression:\n  - method: pruneing\n    params: {sparsity: 0.5}", ["unknown method", "pruneing", "pruning"]),
    ("compression:\n  - method: pruning\n    params: {sparsity: 1.5}", ["sparsity", "(0, 1)"]),
    ("compression:\n  - method: pruning", ["missing", "sparsity"]),
    ("compression:\n  - params: {sparsity: 0.5}", ["missing", "method"]),
    ("compression:\n  - method: pruning\n    params: {sparsity: '0.5'}", ["sparsity", "number"]),
    ("compression:\n  - method: pruning\n    params: {sparsity: 0.5}\n    finetuning: {epochs: 1.5}",
     ["epochs", "integer"]),
    ("compression:\n  - method: distillation\n    finetuning: {epochs: 1}", ["student"]),
    ("compression:\n  - steps:\n    - method: quantization\n    - method: pruning\n      params: {sparsity: 0.5}",
     ["quantization last"]),
    ("model: resnet18", ["compression"]),
    ("compresion: []", ["unknown top-level", "compresion"]),
])
def test_config_errors_say_what_to_fix(text, words):
    with pytest.raises(C.ConfigError) as err:
        C.load_config(text)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_run_workflow_keeps_the_baseline(caplog):
    net, loader = tiny_net(), tiny_loader()
    before = _state(net)
    cfg = C.load_config(GOOD)
    models = {}
    with caplog.at_level(logging.INFO, logger="helpers.compression"):
        rows = C.run_workflow(cfg, net, loader, loader, keep_models=models)
    assert _same(before, net.state_dict())
    assert [r["method"] for r in rows] == ["baseline", "pruning 50%", "int8", "chain"]
    assert rows[1]["sparsity"] == pytest.approx(0.5, abs=0.01)
    assert rows[3]["sparsity"] >= 0.45  # distillation of the pruned student kept its mask
    assert C.quantized_layers(models["chain"])
    assert "chain: accuracy" in caplog.text
    assert "method" in C.format_table(rows)


# ----------------------------------------------------------------------------- devices (issue 9)
def test_compression_never_moves_the_callers_model(monkeypatch):
    """``.to()``, ``.cpu()`` and ``.cuda()`` all go through ``Module._apply``: any call on the caller's
    model (or one of its modules) fails. Before issue 9, measure/quantize_static/prepare_qat/
    run_workflow called ``net.cpu()`` on it, so a CUDA baseline silently moved to the CPU."""
    net, loader = tiny_net(), tiny_loader()
    mine = {id(m) for m in net.modules()}
    real = torch.nn.Module._apply

    def guarded(self, fn, *args, **kwargs):
        assert id(self) not in mine, f"a helper moved the caller's model ({type(self).__name__})"
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "_apply", guarded)
    before = _state(net)
    x = next(iter(loader))[0]
    row = C.measure(net, loader, x, method="baseline")
    assert 0 <= row["accuracy"] <= 1 and row["latency_ms"] > 0
    int8 = C.quantize_static(net, loader, 1)
    assert C.quantized_layers(int8) and all(p.device.type == "cpu" for p in int8.state_dict().values()
                                            if torch.is_tensor(p))
    qat = C.prepare_qat(net)
    train(qat, loader, None, torch.optim.SGD(qat.parameters(), lr=0.01), 1, progress=False)
    C.convert_qat(qat)
    config = C.load_config("compression:\n  - method: pruning\n    params: {sparsity: 0.5}\n"
                           "    finetuning: {epochs: 1}\n  - method: quantization\n"
                           "  - method: distillation\n    params: {student_widths: [4, 8, 8, 16]}\n"
                           "    finetuning: {epochs: 1}\n")
    rows = C.run_workflow(config, net, loader, loader)
    assert len(rows) == 4 and _same(before, net.state_dict())


def test_quantization_engine_follows_the_platform():
    assert C.quantization_engine("x86_64", ["none", "onednn", "x86", "fbgemm", "qnnpack"]) == "x86"
    assert C.quantization_engine("arm64", ["none", "qnnpack"]) == "qnnpack"  # Apple silicon
    assert C.quantization_engine("aarch64", ["none", "x86", "qnnpack"]) == "qnnpack"
    assert C.quantization_engine("x86_64", ["none", "fbgemm"]) == "fbgemm"  # older builds
    with pytest.raises(RuntimeError, match="no quantized engine"):
        C.quantization_engine("riscv64", ["none"])
    assert C.quantization_engine() in torch.backends.quantized.supported_engines


# --- per-layer sparsity, latency comparison, epoch caps ---
def _row(method, nonzero, size_bytes, latency_ms, accuracy=0.5, sparsity=0.0):
    return {"method": method, "accuracy": accuracy, "nonzero": nonzero, "sparsity": sparsity,
            "size_bytes": size_bytes, "latency_ms": latency_ms}


def test_format_table_never_runs_columns_together():
    rows = [_row("baseline", 11_177_538, 44_700_000, 1234.5), _row("pruned 90%", 1_117_754, 9_000_000, 95.25, 0.9, 0.9),
            _row("int8", 2_000, 11_000_000, 20.0)]
    lines = C.format_table(rows).splitlines()
    assert "0.500  11,177,538" in lines[1]  # the earlier table printed 0.50011,177,538
    for line, method in zip(lines[1:], ["baseline", "pruned 90%", "int8"]):
        assert line.startswith(method) and len(line.removeprefix(method).split()) == 6, line
    assert len({len(line) for line in lines}) == 1  # aligned


def test_layer_sparsity_shows_where_global_pruning_takes_its_zeros():
    net = tiny_net()
    assert set(C.layer_sparsity(net).values()) == {0.0}
    pruned = C.prune_global_l1(net, 0.6)
    per_layer = C.layer_sparsity(pruned)
    assert list(per_layer)[0] == "conv1" and "fc" in per_layer and len(per_layer) == 13
    sizes = {n: m.weight.numel() for n, m in net.named_modules() if isinstance(m, C.PRUNABLE)}
    weighted = sum(per_layer[n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert weighted == pytest.approx(C.sparsity(pruned), abs=1e-6)
    assert max(per_layer.values()) - min(per_layer.values()) > 0.05  # one global threshold, unequal layers
    q = C.layer_sparsity(C.quantize_static(pruned, tiny_loader(), num_batches=1))  # int8: names under "net."
    assert len(q) == 13 and all(q["net." + n] >= per_layer[n] - 1e-6 for n in per_layer)  # zeros stay zero


def test_compare_latency_restores_threads_and_ranks_models():
    small, big = tiny_net(), torchvision.models.resnet18(num_classes=2).eval()
    threads = torch.get_num_threads()
    ms = C.compare_latency({"small": small, "big": big}, torch.randn(1, 3, 64, 64), repeats=2, rounds=2)
    assert torch.get_num_threads() == threads and set(ms) == {"small", "big"}
    assert 0 < ms["small"] < ms["big"]


class CountingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.fc(x)


def test_smoke_runs_time_one_pass_and_one_round(monkeypatch):
    """COURSE_MAX_EPOCHS (a smoke run: no figure means anything) times one pass after one warm-up and
    measures one round; otherwise the requested repeats, warm-up passes and rounds all run."""
    x = torch.randn(2, 4)
    monkeypatch.delenv("COURSE_MAX_EPOCHS", raising=False)
    net = CountingNet()
    C.latency_ms(net, x, repeats=5, warmup=2)
    assert net.calls == 7
    C.compare_latency({"a": net}, x, repeats=3, rounds=2)
    assert net.calls == 7 + 2 * (3 + 1)
    monkeypatch.setenv("COURSE_MAX_EPOCHS", "1")
    net = CountingNet()
    assert C.latency_ms(net, x, repeats=5, warmup=2) > 0 and net.calls == 2
    C.compare_latency({"a": net}, x, repeats=3, rounds=2)
    assert net.calls == 2 + 2
    C.latency_ms(net, x, repeats=1, warmup=0)
    assert net.calls == 4 + 1  # never more than asked


def test_cap_epochs_caps_positive_epochs_only():
    class Capped:
        def epochs(self, n):
            return min(n, 1)
    cfg = C.load_config(GOOD)
    capped = C.cap_epochs(cfg, Capped())
    epochs = [s.finetuning.epochs for e in capped.experiments for s in e.steps]
    assert epochs == [1, 0, 0, 1, 0]  # quantization without fine-tuning stays static, not QAT
    assert cfg.experiments[0].steps[0].finetuning.epochs == 1 and C.cap_epochs(cfg, Capped()) is not cfg


def test_prune_channels_removes_inner_channels_and_keeps_the_original():
    net = tiny_net().eval()
    before = _state(net)
    slim = C.prune_channels(net, 0.5).eval()
    assert _same(before, net.state_dict())
    assert slim.layer4[0].conv1.out_channels == 8 and slim.layer4[0].conv2.in_channels == 8
    assert slim.layer4[0].bn1.num_features == 8 and slim.layer4[0].conv2.out_channels == 16  # residual width kept
    assert count_parameters(slim) < 0.7 * count_parameters(net)  # removed, not zeroed
    kept = net.layer4[0].conv1.weight.abs().sum(dim=(1, 2, 3)).topk(8).indices.sort().values
    assert torch.equal(slim.layer4[0].conv1.weight, net.layer4[0].conv1.weight[kept])  # the largest L1 filters
    assert torch.equal(slim.layer4[0].conv2.weight, net.layer4[0].conv2.weight[:, kept])
    assert torch.equal(slim.layer4[0].bn1.running_var, net.layer4[0].bn1.running_var[kept])
    x = next(iter(tiny_loader()))[0]
    assert slim(x).shape == (8, 2)
    assert torch.allclose(C.prune_channels(net, 0.0)(x), net(x), atol=1e-6)  # amount 0: the same function
    # it trains, quantizes (static int8) and measures like any model
    train(slim, tiny_loader(), None, torch.optim.SGD(slim.parameters(), lr=0.05), 1, progress=False)
    q = C.quantize_static(slim, tiny_loader(), num_batches=1)
    assert "net.layer4.0.conv1" in C.quantized_layers(q) and q(x).shape == (8, 2)


def test_prune_channels_says_what_it_needs():
    with pytest.raises(ValueError, match="amount must be in"):
        C.prune_channels(tiny_net(), 1.0)
    with pytest.raises(TypeError, match="BasicBlocks"):
        C.prune_channels(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), 0.5)


def test_prune_channels_on_resnet18_is_faster():
    net = torchvision.models.resnet18(weights=None).eval()
    slim = C.prune_channels(net, 0.5).eval()
    assert slim.layer1[0].conv1.out_channels == 32 and slim.layer4[1].conv2.in_channels == 256
    assert count_parameters(slim) < 0.6 * count_parameters(net)


def test_affine_qparams_match_pytorch_observer():
    x = torch.tensor([-1.0, 0.0, 0.5, 2.0])
    scale, zp = C.affine_qparams(x)
    obs = torch.ao.quantization.MinMaxObserver(dtype=torch.qint8)
    obs(x)
    s_ref, zp_ref = obs.calculate_qparams()
    assert scale == pytest.approx(float(s_ref), rel=1e-6) and zp == int(zp_ref)
    q = C.quantize_affine(x, scale, zp)
    assert q.dtype == torch.int8 and q[0] == -128 and q[-1] == 127
    assert torch.equal(q, torch.quantize_per_tensor(x, scale, zp, torch.qint8).int_repr())
    assert C.dequantize_affine(q, scale, zp)[1] == 0.0  # zero is exact
    assert (C.dequantize_affine(q, scale, zp) - x).abs().max() <= scale / 2 + 1e-7
    assert C.quantize_affine(torch.tensor([10.0]), scale, zp).item() == 127  # clamped, not wrapped
    assert C.affine_qparams(torch.zeros(3))[0] > 0  # a constant tensor: no division by zero


def test_per_channel_qparams_match_pytorch_and_beat_per_tensor():
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3) * torch.tensor([0.01, 0.1, 1.0, 3.0]).view(4, 1, 1, 1)
    scales, zps = C.per_channel_qparams(w)
    assert scales.shape == zps.shape == (4, 1, 1, 1)
    ref = torch.quantize_per_channel(w, scales.flatten(), zps.flatten(), 0, torch.qint8)
    assert torch.equal(C.quantize_affine(w, scales, zps), ref.int_repr())
    err_c = (C.dequantize_affine(C.quantize_affine(w, scales, zps), scales, zps) - w).abs()[0].max()
    s, z = C.affine_qparams(w)
    err_t = (C.dequantize_affine(C.quantize_affine(w, s, z), s, z) - w).abs()[0].max()
    assert err_c < err_t / 10  # the small channel keeps its precision


def test_log_to_file_never_duplicates_lines(tmp_path):
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    log = C.log_to_file(first)
    C.log_to_file(first)
    log.info("once")
    C.log_to_file(second, level=logging.WARNING)
    log.info("not written")
    log.warning("twice?")
    assert first.read_text().count("once") == 1 and "twice?" not in first.read_text()
    assert second.read_text().count("twice?") == 1 and "not written" not in second.read_text()
    assert " WARNING helpers.compression: twice?" in second.read_text()
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def test_multiply_adds_see_removed_channels_not_zeros():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 2))
    x = torch.randn(2, 3, 5, 5)
    assert C.multiply_adds(net, x) == 2 * (4 * 5 * 5 * 3 * 9 + 2 * 100)
    tiny = tiny_net()
    x = next(iter(tiny_loader()))[0]
    dense = C.multiply_adds(tiny, x)
    assert C.multiply_adds(C.prune_global_l1(tiny, 0.9), x) == dense  # zeros are still multiplied
    assert C.multiply_adds(C.prune_channels(tiny, 0.5), x) < 0.8 * dense
    assert not any(m._forward_hooks for m in tiny.modules())  # hooks only on a copy
