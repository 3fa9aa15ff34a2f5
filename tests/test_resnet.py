"""dl_utils.resnet: ResNet-50 against torchvision (parameters, shapes, outputs), the CIFAR ResNet and its plain twin."""

import pytest
import torch
from torchvision.models import resnet50 as tv_resnet50

from dl_utils import resnet


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet50_matches_torchvision_parameter_for_parameter_and_output_for_output():
    ours, theirs = resnet.resnet50(), tv_resnet50(weights=None)
    assert _params(ours) == _params(theirs) == 25_557_032
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in theirs.state_dict().items()]
    ours.load_state_dict(theirs.state_dict())       # torchvision's random weights, in our blocks
    ours.eval()
    theirs.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = ours(x)
        assert out.shape == (2, 1000)
        torch.testing.assert_close(out, theirs(x))


@pytest.mark.parametrize(("depth", "n_convs"), [(8, 7), (20, 19), (56, 55)])
def test_cifar_resnet_has_6n_plus_2_weighted_layers(depth, n_convs):
    net = resnet.cifar_resnet(depth)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == n_convs                      # + the final linear layer: 6n + 2
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet20_has_the_papers_size_and_its_plain_twin_differs_only_by_the_projections():
    res, plain = resnet.cifar_resnet(20), resnet.cifar_resnet(20, residual=False)
    assert 0.26e6 < _params(res) < 0.28e6                 # He et al.: 0.27 M (with projections here)
    projections = sum(_params(m.downsample) for m in res.modules()
                      if isinstance(m, resnet.BasicBlock) and m.downsample is not None)
    assert _params(plain) == _params(res) - projections


def test_the_plain_network_has_no_shortcuts_and_the_residual_one_does():
    x = torch.randn(4, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    block = resnet.BasicBlock(16, 16)
    plain_block = resnet.BasicBlock(16, 16, residual=False)
    plain_block.load_state_dict(block.state_dict())
    for m in (block.bn2, plain_block.bn2):               # zero the residual branch
        torch.nn.init.zeros_(m.weight)
    block.eval()
    plain_block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))          # identity shortcut only
        torch.testing.assert_close(plain_block(x), torch.zeros_like(x))


def test_bad_depth_is_refused():
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet.cifar_resnet(21)


def test_layer_gradient_norms_cover_every_3x3_convolution_in_order():
    torch.manual_seed(0)
    net = resnet.cifar_resnet(14)
    norms = resnet.layer_gradient_norms(net, torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    assert len(norms) == 13 and list(norms)[0] == "stem.0"
    assert all(v > 0 for v in norms.values())
    assert all(p.grad is None for p in net.parameters())     # the model is left as it was
