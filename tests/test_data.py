from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import data, world
from helpers.data import ImageReadError, load_rgb
from helpers.profile import get_profile


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "CMYK", "RGB", "I;16"])
def test_every_image_mode_becomes_rgb(tmp_path, mode):
    img = Image.new("RGB", (12, 9), (200, 30, 60)).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        img = Image.new("I;16", (12, 9), 1000)
    path = tmp_path / f"x.{'tiff' if mode in ('CMYK', 'I;16', 'LA') else 'png'}"
    img.save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.size == (12, 9)


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img.save(tmp_path / "t.png")
    assert load_rgb(tmp_path / "t.png").getpixel((0, 0)) == (255, 255, 255)


def test_truncated_or_garbage_files_raise_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    bad = tmp_path / "truncated.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image")
    for path in (bad, junk):
        with pytest.raises(ImageReadError, match=path.name):
            load_rgb(path)


def test_an_unreadable_file_in_a_dataset_is_named(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / cls / "ok.png")
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    ds = data.image_folder(tmp_path)
    with pytest.raises(ImageReadError, match="broken.png"):
        [ds[i] for i in range(len(ds))]


def test_transforms_follow_the_hotdog_chapter():
    p = get_profile("full")
    img = Image.new("RGB", (500, 300), (124, 116, 104))  # ~ the ImageNet mean
    x = data.test_transform(p)(img)
    assert x.shape == (3, 224, 224) and x.abs().max() < 0.05
    assert data.train_transform(p)(img).shape == (3, 224, 224)
    names = [type(t).__name__ for t in data.train_transform(p).transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert [type(t).__name__ for t in data.test_transform(p).transforms][:2] == ["Resize", "CenterCrop"]
    assert data.test_transform(p).transforms[0].size == 256
    assert torch.allclose(data.denormalize(x), torch.tensor([124, 116, 104]).div(255).view(3, 1, 1)
                          .expand(3, 224, 224), atol=0.01)


def test_mini_hotdog_layout_and_loaders(tmp_path):
    root = world.ensure_target_dataset(tmp_path)
    for split, n in world.TARGET_SPLITS.items():
        for label in ("hotdog", "not-hotdog"):
            assert len(list((root / split / label).glob("*.jpg"))) == n
    p = get_profile("fast")
    train_ds = data.image_folder(root / "train", data.train_transform(p))
    assert train_ds.classes == ["hotdog", "not-hotdog"]
    X, y = train_ds[0]
    assert X.shape == (3, p.image_size, p.image_size) and y == 0


def test_world_is_deterministic_and_generation_is_atomic(tmp_path):
    a = np.asarray(world.render("hotdog", 123, "target"))
    b = np.asarray(world.render("hotdog", 123, "target"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, np.asarray(world.render("pizza", 123, "target")))
    world.ensure_target_dataset(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"mini-hotdog-v{world.WORLD_VERSION}"]


def test_half_the_target_not_hotdogs_are_foods_the_source_never_saw(tmp_path):
    assert not set(world.UNSEEN_CLASSES) & set(world.SOURCE_CLASSES)
    foods = [world.not_hotdog_class(i) for i in range(world.TARGET_SPLITS["train"])]
    unseen = [f for f in foods if f in world.UNSEEN_CLASSES]
    assert len(unseen) == len(foods) // 2 and set(unseen) == set(world.UNSEEN_CLASSES)
    assert set(foods) - set(unseen) == set(world.SOURCE_CLASSES) - {"hotdog"}
    with pytest.raises(KeyError, match="unknown class 'tofu'"):
        world.render("tofu", 0, "target")


def test_source_classes_are_sorted_like_imagefolder():
    assert list(world.SOURCE_CLASSES) == sorted(world.SOURCE_CLASSES) and "hotdog" in world.SOURCE_CLASSES


def test_caching_gives_the_same_batches_and_decodes_each_file_once(tmp_path, monkeypatch):
    p = get_profile("fast")
    monkeypatch.setattr(data, "hotdog_dir", lambda profile: world.ensure_target_dataset(tmp_path))
    reads = []
    real = data.load_rgb
    monkeypatch.setattr(data, "load_rgb", lambda path: reads.append(path) or real(path))

    def epochs(cache):
        train_ds, valid_ds, test_ds = data.hotdog_datasets(p, cache=cache)
        train_iter, valid_iter, test_iter = data.loaders(train_ds, valid_ds, p, seed=3, test_ds=test_ds)
        torch.manual_seed(0)  # the random crops and flips draw from the global generator
        return [[b for b in it] for it in (train_iter, valid_iter, test_iter, train_iter, valid_iter, test_iter)]

    plain = epochs(cache=False)
    n_files = 2 * sum(world.TARGET_SPLITS.values())  # train/ (train + valid views) and test/
    assert len(reads) == 2 * n_files  # two epochs
    reads.clear()
    cached = epochs(cache=True)
    assert len(reads) == n_files  # each file decoded once over two epochs
    assert len(reads) == len(set(reads))
    for a, b in zip(plain, cached):
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(cached[0][0][0], cached[3][0][0])  # training batches still re-augmented


def test_a_custom_test_transform_is_never_memoized():
    p = get_profile("fast")
    _, _, test_ds = data.hotdog_datasets(p, test_tf=data.train_transform(p), cache=True)
    assert not isinstance(test_ds, data.Memoized)
    torch.manual_seed(0)
    assert not torch.equal(test_ds[0][0], test_ds[0][0])


def test_seed_everything_fixes_the_batch_order_and_the_crops_of_a_run(tmp_path, monkeypatch):
    from helpers import seed_everything

    p = get_profile("fast")
    monkeypatch.setattr(data, "hotdog_dir", lambda profile: world.ensure_target_dataset(tmp_path))
    train_iter, _, _ = data.hotdog_loaders(p)

    def first_epoch():
        return [(X, y) for X, y in train_iter]

    seed_everything(0)
    a = first_epoch()
    b = first_epoch()  # not re-seeded: another order and other crops
    seed_everything(0)
    c = first_epoch()  # re-seeded: the same batches as the first run
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, c, strict=True))
    assert not all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(a, b))


def test_validation_split_is_stratified_seeded_and_disjoint():
    p = get_profile("fast")
    train, valid, test = data.hotdog_datasets(p)
    n = 2 * world.TARGET_SPLITS["train"]
    assert len(train) + len(valid) == n and len(valid) == round(n * p.valid_frac) >= 200  # 1 image <= 0.5 point
    assert sorted(set(train.indices) | set(valid.dataset.indices)) == list(range(n))
    assert not set(train.indices) & set(valid.dataset.indices)
    assert valid.dataset.targets.count(0) == valid.dataset.targets.count(1) == len(valid) // 2
    assert len(test) == 2 * world.TARGET_SPLITS["test"] >= 200
    assert get_profile("full").valid_frac == 0.2  # the real data: 400 of its 2,000 training images
    assert data.stratified_split([0, 0, 1, 1, 1, 1], 0.5, seed=1) == data.stratified_split([0, 0, 1, 1, 1, 1], 0.5, seed=1)
    assert data.stratified_split(list(range(2)) * 50, 0.2, 0) != data.stratified_split(list(range(2)) * 50, 0.2, 1)
    with pytest.raises(ValueError, match="valid_frac"):
        data.stratified_split([0, 1], 1.0)


def test_subset_knob_limits_images_per_class(monkeypatch):
    monkeypatch.setenv("COURSE_SUBSET", "5")
    monkeypatch.setenv("COURSE_MAX_EPOCHS", "2")
    p = get_profile("fast")
    assert p.epochs(10) == 2 and p.epochs(1) == 1 and list(p.seeds(5)) == [0]
    train, valid, test = data.hotdog_datasets(p)
    assert len(train) + len(valid) == 10 and len(test) == 10
    monkeypatch.setenv("COURSE_SUBSET", "zero")
    with pytest.raises(ValueError, match="COURSE_SUBSET"):
        get_profile("fast")


def test_seeds_repeat_only_outside_grading(monkeypatch):
    monkeypatch.delenv("COURSE_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    assert list(get_profile("fast").seeds(3)) == [0, 1, 2]
    monkeypatch.setenv("COURSE_GRADING", "1")
    assert list(get_profile("fast").seeds(3)) == [0]


def test_grading_caps_epochs_and_turns_the_lessons_figure_checks_off(monkeypatch):
    from helpers.profile import GRADING_MAX_EPOCHS
    monkeypatch.delenv("COURSE_MAX_EPOCHS", raising=False)
    monkeypatch.delenv("COURSE_GRADING", raising=False)
    p = get_profile("fast")
    assert p.epochs(8) == 8 and p.checks and not p.smoke  # as students run it: every epoch, figures checked
    monkeypatch.setenv("COURSE_GRADING", "1")
    p = get_profile("fast")
    assert p.epochs(8) == GRADING_MAX_EPOCHS < 8 and p.epochs(1) == 1 and not p.checks
    monkeypatch.setenv("COURSE_MAX_EPOCHS", "3")  # the smaller cap wins
    assert get_profile("fast").epochs(8) == min(3, GRADING_MAX_EPOCHS)
    monkeypatch.delenv("COURSE_GRADING")
    assert get_profile("fast").epochs(8) == 3 and not get_profile("fast").checks  # a smoke run
    assert get_profile("fast").smoke and get_profile("full").smoke and len(get_profile("fast").seeds(3)) == 1
    assert not get_profile("full").checks


@pytest.mark.parametrize("value,expected", [(0, 0), (32768, 128), (65535, 255)])
def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped(tmp_path, value, expected):
    path = tmp_path / "gray16.png"
    Image.fromarray(np.full((6, 5), value, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")  # Pillow reads it as I;16 (or I)
    rgb = np.asarray(load_rgb(path))
    assert rgb.shape == (6, 5, 3) and np.abs(rgb.astype(int) - expected).max() <= 1  # mid-gray stays mid-gray
    wide = tmp_path / "gray32.tif"  # 32-bit integer holding 8-bit values: kept as they are
    Image.fromarray(np.full((4, 4), 100, np.int32), "I").save(wide)
    assert np.asarray(load_rgb(wide)).mean() == pytest.approx(100)
