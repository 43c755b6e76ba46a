"""Every solution notebook runs in the full profile (CPU, ``COURSE_MAX_EPOCHS=1``) against
stand-ins for the real downloads: a tiny hotdog-layout folder and random ResNet-18 weights behind
the real download code (see :mod:`tests.fullprofile`). No cell may fail."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from helpers import data, download, models
from helpers.profile import get_profile
from tests.fullprofile import make_standins, run_notebook

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (REPO / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> dict[str, str]:
    return make_standins(tmp_path_factory.mktemp("full_profile"))


def test_standins_go_through_the_real_download_code(standins, monkeypatch):
    for k, v in standins.items():
        monkeypatch.setenv(k, v)
    profile = get_profile()
    assert profile.name == "full" and profile.image_size == 224 and profile.max_epochs == 1
    folder = download.download_extract("hotdog")
    assert folder == Path(standins["COURSE_DATA_DIR"]) / "hotdog"
    train, valid, test = data.hotdog_datasets(profile)
    assert train.classes == ["hotdog", "not-hotdog"] and len(train) + len(valid) == 16 and len(test) == 16
    assert train[0][0].shape == (3, 224, 224)
    net = models.source_model(profile)  # download.load_state_dict -> torch hub's cache
    cached = torch.load(Path(standins["TORCH_HOME"]) / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    assert torch.equal(net.conv1.weight, cached["conv1.weight"]) and net.fc.out_features == 1000
    assert isinstance(net, torchvision.models.ResNet)


@pytest.mark.full_profile
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_notebook_runs_in_full_profile(path, standins):
    errors, seconds = run_notebook(path, standins)
    print(f"{path.parent.name}: {seconds:.1f} s in the full profile (stand-ins, CPU, 1 epoch)")
    assert not errors, f"{path.relative_to(REPO)} fails in the full profile:\n" + "\n".join(errors)
