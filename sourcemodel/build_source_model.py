"""Rebuild the mini source model of the fast profile (``helpers/assets/mini_resnet_source.pt``).

Generates the mini source data set (helpers.world), pretrains ``MiniResNet`` on it with the course's
own training loop, writes the checkpoint atomically and prints its SHA-256, which goes into
``helpers/models.py`` (``MINI_CHECKPOINT_SHA256``). Run: ``python sourcemodel/build_source_model.py``.
About two minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import hashlib

import torch

import helpers
from helpers import data, models, training, world
from helpers.profile import get_profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", default=str(models.MINI_CHECKPOINT))
    args = ap.parse_args()
    profile = get_profile("fast")
    torch.set_num_threads(2)
    helpers.seed_everything(0)
    root = world.ensure_source_dataset(profile.data_dir)
    train_ds = data.image_folder(root / "train", data.train_transform(profile))
    test_ds = data.image_folder(root / "test", data.test_transform(profile))
    assert train_ds.classes == sorted(world.SOURCE_CLASSES) == list(world.SOURCE_CLASSES)
    train_iter, test_iter = data.loaders(train_ds, test_ds, profile, batch_size=64)
    net = models.MiniResNet(len(world.SOURCE_CLASSES))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    steps = args.epochs * len(train_iter)
    sched = training.warmup_cosine(opt, len(train_iter), steps)
    hist = training.train(net, train_iter, test_iter, opt, args.epochs, scheduler=sched,
                          scheduler_interval="batch", desc="pretrain source")
    print(hist)
    training.atomic_save(net.state_dict(), args.out)
    digest = hashlib.sha256(open(args.out, "rb").read()).hexdigest()
    print(f"wrote {args.out} ({models.count_parameters(net):,} parameters), sha256 {digest}")


if __name__ == "__main__":
    main()
