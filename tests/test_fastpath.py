"""The GPU-style input pipeline (helpers.fastpath) against torchvision's semantics, on the CPU."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from helpers import fastpath as fp
from helpers import data as hdata
from helpers.data import IMAGENET_MEAN, IMAGENET_STD, ImageReadError, load_rgb
from helpers.grading import tiny_net
from helpers.profile import Profile
from helpers.training import train

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def _photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth, photo-like RGB image (a blown-up random 6x6 image plus mild noise)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((6, 6, 3)) * 255).astype("uint8")).resize((w, h), Image.BICUBIC)
    a = np.asarray(small).astype(np.int16) + rng.integers(-8, 9, (h, w, 3))
    return Image.fromarray(a.clip(0, 255).astype("uint8"))


def _ramps(h: int, w: int) -> torch.Tensor:
    """(1, 3, h, w) float image: channel 0 = column index, channel 1 = row index, channel 2 = 0."""
    cols = torch.arange(w, dtype=torch.float32).expand(h, w)
    rows = torch.arange(h, dtype=torch.float32).view(h, 1).expand(h, w)
    return torch.stack([cols, rows, torch.zeros(h, w)]).unsqueeze(0)


# ----------------------------------------------------------------------------- crop parameters
@pytest.mark.parametrize("hw,scale", [((256, 256), (0.08, 1.0)), ((160, 240), (0.08, 1.0)),
                                      ((36, 36), (0.35, 1.0))])
def test_crop_boxes_lie_inside_and_respect_scale_and_ratio(hw, scale):
    h_in, w_in = hw
    boxes = fp.sample_crop_boxes(20000, h_in, w_in, scale, generator=torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert boxes.dtype == torch.int64 and boxes.shape == (20000, 4)
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= h_in).all() and (left + w <= w_in).all()
    # sides are rounded from sqrt(area * r), sqrt(area / r): allow half a pixel on each side
    area_hi = (w + 0.5) * (h + 0.5) / (h_in * w_in)
    area_lo = (w - 0.5) * (h - 0.5) / (h_in * w_in)
    assert (area_hi >= scale[0]).all() and (area_lo <= scale[1]).all()
    assert ((w + 0.5) / (h - 0.5) >= 3 / 4).all() and ((w - 0.5) / (h + 0.5) <= 4 / 3).all()


def test_crop_boxes_follow_torchvision_distribution():
    n = 4000
    ours = fp.sample_crop_boxes(n, 256, 256, (0.08, 1.0), generator=torch.Generator().manual_seed(1))
    torch.manual_seed(1)
    ref = torch.tensor([T.RandomResizedCrop.get_params(torch.empty(3, 256, 256), [0.08, 1.0], [3 / 4, 4 / 3])
                        for _ in range(n)])
    for boxes in (ours, ref):
        boxes[:, :] = boxes.float().round().long()
    stats = lambda b: torch.stack([(b[:, 2] * b[:, 3] / 256**2).float().mean(),  # noqa: E731
                                   (b[:, 3] / b[:, 2]).float().log().mean(),
                                   (b[:, 3] / b[:, 2]).float().log().std(),
                                   b[:, 0].float().mean() / 256, b[:, 1].float().mean() / 256])
    assert torch.allclose(stats(ours), stats(ref), atol=0.02), (stats(ours), stats(ref))


def test_crop_boxes_fallback_is_torchvisions_central_crop():
    # on a 100x300 image no crop of >= 90 % area has a ratio <= 4/3: every try fails
    boxes = fp.sample_crop_boxes(5, 100, 300, (0.9, 1.0), generator=torch.Generator().manual_seed(0))
    ref = T.RandomResizedCrop.get_params(torch.empty(3, 100, 300), [0.9, 1.0], [3 / 4, 4 / 3])
    assert boxes.tolist() == [list(ref)] * 5 == [[0, 83, 100, 133]] * 5
    tall = fp.sample_crop_boxes(2, 300, 100, (0.9, 1.0), generator=torch.Generator().manual_seed(0))
    ref = T.RandomResizedCrop.get_params(torch.empty(3, 300, 100), [0.9, 1.0], [3 / 4, 4 / 3])
    assert tall.tolist() == [list(ref)] * 2


# ----------------------------------------------------------------------------- the crop itself
@pytest.mark.parametrize("flip", [False, True])
def test_output_is_the_sampled_box_resized(flip):
    """A crop of an image whose pixels hold their own coordinates gives back the box exactly."""
    h_in, w_in, out = 160, 240, 48
    x = _ramps(h_in, w_in).expand(64, -1, -1, -1)
    boxes = fp.sample_crop_boxes(64, h_in, w_in, (0.08, 1.0), generator=torch.Generator().manual_seed(3))
    y = fp.random_resized_crop_batch(x, out, boxes=boxes, flip=torch.full((64,), flip), mean=None)
    k = torch.arange(out, dtype=torch.float32) + 0.5
    for (top, left, h, w), img in zip(boxes.tolist(), y):
        # output pixel k samples input coordinate start + (k + 0.5) * size / out - 0.5 (pixel centres)
        cols = (left + k * w / out - 0.5).clamp(0, w_in - 1)
        rows = (top + k * h / out - 0.5).clamp(0, h_in - 1)
        if flip:
            cols = cols.flip(0)
        torch.testing.assert_close(img[0], cols.expand(out, out), atol=2e-3, rtol=0)
        torch.testing.assert_close(img[1], rows.view(-1, 1).expand(out, out), atol=2e-3, rtol=0)


def test_full_crop_without_flip_is_identity_and_flip_mirrors():
    x = torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8)
    full = torch.tensor([[0, 0, 40, 40]] * 3)
    same = fp.random_resized_crop_batch(x, 40, boxes=full, flip=torch.zeros(3, dtype=torch.bool), mean=None)
    torch.testing.assert_close(same, x.float(), atol=1e-3, rtol=0)
    mirrored = fp.random_resized_crop_batch(x, 40, boxes=full, flip=torch.tensor([True, False, True]),
                                            mean=None)
    torch.testing.assert_close(mirrored[[0, 2]], x[[0, 2]].flip(-1).float(), atol=1e-3, rtol=0)
    torch.testing.assert_close(mirrored[1], x[1].float(), atol=1e-3, rtol=0)
    normed = fp.random_resized_crop_batch(x, 40, boxes=full, flip=torch.zeros(3, dtype=torch.bool))
    torch.testing.assert_close(normed, (x.float() / 255 - MEAN) / STD, atol=1e-4, rtol=0)


def test_random_batch_shapes_ranges_and_flip_rate():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 64, 64), dtype=torch.uint8)
    y = fp.random_resized_crop_batch(x, 56, (0.08, 1.0), generator=g)
    assert y.shape == (64, 3, 56, 56) and y.dtype == torch.float32
    lo, hi = (0 - MEAN) / STD, (1 - MEAN) / STD
    assert (y >= lo - 1e-4).all() and (y <= hi + 1e-4).all()
    ramp = _ramps(64, 64).expand(2000, -1, -1, -1)
    z = fp.random_resized_crop_batch(ramp, 8, generator=g, mean=None)
    flipped = (z[:, 0, 0, -1] < z[:, 0, 0, 0]).float().mean().item()
    assert 0.45 < flipped < 0.55


def test_same_generator_seed_gives_same_batch():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    a = fp.random_resized_crop_batch(x, 24, generator=torch.Generator().manual_seed(5))
    b = fp.random_resized_crop_batch(x, 24, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- decoding, test transform
def _write_split(root, sizes, fmt="JPEG"):
    paths = []
    for k, (w, h) in enumerate(sizes):
        cls = root / ("hotdog" if k % 2 else "not-hotdog")
        cls.mkdir(parents=True, exist_ok=True)
        p = cls / f"{k:03d}.{'jpg' if fmt == 'JPEG' else 'png'}"
        _photo(w, h, k).save(p, fmt, quality=90) if fmt == "JPEG" else _photo(w, h, k).save(p, fmt)
        paths.append(p)
    return paths


def test_center_crop_equals_torchvision_resize_and_center_crop(tmp_path):
    sizes = [(300, 200), (200, 300), (400, 257), (256, 256), (601, 240), (230, 599)]
    _write_split(tmp_path, sizes)
    images, labels, classes = fp.decode_folder(tmp_path, 256, workers=2)
    assert images.shape == (6, 3, 256, 256) and images.dtype == torch.uint8
    assert classes == ["hotdog", "not-hotdog"]
    ds_paths, ds_labels, _ = fp.image_files(tmp_path)
    assert labels.tolist() == ds_labels
    ours = fp.center_crop_batch(images, 256, 224)
    profile = Profile("full", torch.device("cpu"), tmp_path, image_size=224, resize_size=256,
                      batch_size=8, num_workers=0)
    tf = hdata.test_transform(profile)
    ref = torch.stack([tf(load_rgb(p)) for p in ds_paths])  # PIL decode + PIL resize, as d2l
    assert ours.shape == ref.shape == (6, 3, 224, 224)
    diff = (ours - ref).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.25, (diff.mean(), diff.max())
    # on the same decoded tensor, torchvision's (v2, uint8) tensor transforms agree exactly
    from torchvision.transforms import v2

    exact = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224)])
    for p, mine in zip(ds_paths, images):
        want = exact(fp.read_rgb(p))
        torch.testing.assert_close(mine[:, 16:240, 16:240], want, atol=0, rtol=0)
    # a different stored size is resized first: 64 px squares -> Resize(36) + CenterCrop(32)
    small = torch.stack([fp.resize_square(fp.read_rgb(p), 64) for p in ds_paths])
    got = fp.center_crop_batch(small, 36, 32, mean=None)
    want = torch.stack([T.CenterCrop(32)(T.Resize(36, antialias=True)(s.float())) for s in small])
    assert got.shape == (6, 3, 32, 32) and (got - want).abs().max() < 1.0


def test_decode_handles_modes_and_names_broken_files(tmp_path):
    d = tmp_path / "cls"
    d.mkdir()
    base = _photo(120, 80, 0)
    base.convert("L").save(d / "gray.jpg", quality=95)
    base.convert("CMYK").save(d / "cmyk.jpg", quality=95)
    rgba = base.convert("RGBA")
    rgba.putpixel((0, 0), (10, 20, 30, 0))  # fully transparent -> white, as load_rgb
    rgba.save(d / "rgba.png")
    base.convert("LA").save(d / "la.png")
    base.convert("P").save(d / "palette.png")
    base.save(d / "rgb.bmp")
    images, labels, classes = fp.decode_folder(tmp_path, 64, workers=2)
    assert images.shape == (6, 3, 64, 64) and labels.tolist() == [0] * 6 and classes == ["cls"]
    for name in ("gray.jpg", "cmyk.jpg", "rgba.png", "la.png", "palette.png", "rgb.bmp"):
        ours = fp.read_rgb(d / name)
        ref = torch.from_numpy(np.asarray(load_rgb(d / name)).copy()).permute(2, 0, 1)
        assert ours.shape == ref.shape == (3, 80, 120), name
        assert (ours.float() - ref.float()).abs().mean() < 2.0, name
    assert fp.read_rgb(d / "rgba.png")[:, 0, 0].tolist() == [255, 255, 255]
    gray = fp.read_rgb(d / "gray.jpg")
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 50)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        fp.decode_folder(tmp_path, 64, workers=2)


# ----------------------------------------------------------------------------- loader and training
def test_tensor_loader_shapes_len_order_and_determinism():
    n = 50
    images = torch.randint(0, 256, (n, 3, 20, 20), dtype=torch.uint8)
    ids = torch.arange(n)
    tr = fp.TensorLoader(images, ids, 16, train=True, image_size=16, seed=3)
    assert len(tr) == 4 and len(fp.TensorLoader(images, ids, 16, train=True, image_size=16,
                                                drop_last=True)) == 3
    epoch1 = list(tr)
    assert [tuple(X.shape) for X, _ in epoch1] == [(16, 3, 16, 16)] * 3 + [(2, 3, 16, 16)]
    assert all(X.dtype == torch.float32 and y.dtype == torch.int64 for X, y in epoch1)
    seen = torch.cat([y for _, y in epoch1])
    assert sorted(seen.tolist()) == list(range(n)) and seen.tolist() != list(range(n))
    epoch2 = list(tr)
    assert torch.cat([y for _, y in epoch2]).tolist() != seen.tolist()  # a new order each epoch
    again = fp.TensorLoader(images, ids, 16, train=True, image_size=16, seed=3)
    for (a, ya), (b, yb) in zip(epoch1 + epoch2, list(again) + list(again)):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    te = fp.TensorLoader(images, ids, 16, train=False, image_size=16, resize_size=20)
    X, y = next(iter(te))
    assert y.tolist() == list(range(16))
    torch.testing.assert_close(X, fp.center_crop_batch(images[:16], 20, 16))
    cl = fp.TensorLoader(images, ids, 16, train=False, image_size=16, channels_last=True)
    assert next(iter(cl))[0].is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="uint8"):
        fp.TensorLoader(images.float(), ids, 16, train=True, image_size=16)


def test_tiny_training_run_through_the_course_loop():
    torch.manual_seed(0)
    n, size = 64, 20
    y = torch.arange(n) % 2
    images = torch.randint(40, 200, (n, 3, size, size), dtype=torch.uint8)
    images[y == 1, 0] += 50  # class 1 is redder, class 0 bluer: survives any crop and flip
    images[y == 0, 2] += 50
    tr = fp.TensorLoader(images, y, 16, train=True, image_size=16, scale=(0.35, 1.0), seed=0)
    te = fp.TensorLoader(images, y, 32, train=False, image_size=16, resize_size=18)
    net = tiny_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    history = train(net, tr, te, opt, 4, progress=False, amp=True, channels_last=True)
    losses = history["train_loss"]
    assert len(history) == 4 and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0] / 3
    assert history.final["valid_acc"] >= 0.9


def test_fast_loaders_on_the_fast_profile():
    from helpers.profile import get_profile

    profile = get_profile("fast")
    tr, te = fp.fast_loaders(profile, workers=2)
    X, y = next(iter(tr))
    assert X.shape == (profile.batch_size, 3, 32, 32) and set(y.tolist()) <= {0, 1}
    assert len(tr) == math.ceil(len(tr.labels) / profile.batch_size) and len(te.labels) > 0
    assert next(iter(te))[0].shape[-1] == 32


def test_tensor_loader_epochs_follow_seed_everything_like_the_data_loader():
    from helpers import seed_everything

    x = torch.randint(0, 256, (40, 3, 20, 20), dtype=torch.uint8)
    y = torch.arange(40)
    loader = fp.TensorLoader(x, y, 8, train=True, image_size=16)

    def epoch():
        return [(X, t) for X, t in loader]

    seed_everything(0)
    a, b = epoch(), epoch()
    seed_everything(0)
    c = epoch()
    assert all(torch.equal(X1, X2) and torch.equal(t1, t2) for (X1, t1), (X2, t2) in zip(a, c, strict=True))
    assert not all(torch.equal(t1, t2) for (_, t1), (_, t2) in zip(a, b))  # a new order every epoch
    own = fp.TensorLoader(x, y, 8, train=True, image_size=16, seed=3)
    first = torch.cat([t for _, t in own])
    seed_everything(0)  # a loader with its own seed ignores the global generator
    same = torch.cat([t for _, t in fp.TensorLoader(x, y, 8, train=True, image_size=16, seed=3)])
    other = torch.cat([t for _, t in fp.TensorLoader(x, y, 8, train=True, image_size=16, seed=4)])
    assert torch.equal(first, same) and not torch.equal(first, other)


def test_read_rgb_names_an_empty_file_and_scales_16_bit_grayscale(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png"):
        fp.read_rgb(empty)
    gray = tmp_path / "gray16.png"
    Image.fromarray(np.full((6, 5), 32768, np.uint16)).save(gray)
    img = fp.read_rgb(gray)
    assert img.shape == (3, 6, 5) and img.dtype == torch.uint8 and int(img.float().mean()) == 128
