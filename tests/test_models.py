"""conv_course.models: output shapes, parameter counts written as arithmetic, input checks."""

import pytest
import torch

from conv_course import models


@pytest.mark.parametrize("cls", [models.LeNet5, models.LeNetBN, models.SeedConvNet, models.Backbone])
def test_image_models_map_digits_to_ten_logits(cls):
    torch.manual_seed(0)
    out = cls().eval()(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10) and out.dtype == torch.float32


@pytest.mark.parametrize("cls", [models.LeNet5, models.LeNetBN, models.SeedConvNet])
def test_image_models_name_the_wrong_input_shape(cls):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        cls()(torch.rand(2, 3, 28, 28))


def test_lenet5_parameter_count():
    conv1 = 6 * 1 * 5 * 5 + 6
    conv2 = 16 * 6 * 5 * 5 + 16
    fcs = (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert models.count_parameters(models.LeNet5()) == conv1 + conv2 + fcs


def test_seed_convnet_flatten_size_follows_the_conv_arithmetic():
    # two unpadded 3x3 convs: 28 - 2 - 2 = 24 per side
    assert models.SeedConvNet().fc1.in_features == 64 * 24 * 24
    assert models.SeedConvNet(pool=True).fc1.in_features == 64 * 12 * 12
    assert models.SeedConvNet(pool=True)(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_backbone_features_and_replaceable_head():
    torch.manual_seed(0)
    net = models.Backbone(num_classes=58).eval()
    x = torch.rand(2, 1, 28, 28)
    feats = net.features(x)
    assert feats.shape == (2, 256)
    before = {k: v.clone() for k, v in net.features.state_dict().items()}
    assert net.replace_head(10) is net
    assert net(x).shape == (2, 10)
    assert all(torch.equal(before[k], v) for k, v in net.features.state_dict().items())
    assert [n for n, _ in net.features.named_children()] == ["block1", "block2", "block3", "block4", "pool", "flatten"]


def test_backbone_has_a_few_hundred_thousand_parameters():
    convs = 9 * (1 * 32 + 32 * 64 + 64 * 128 + 128 * 256)
    bns = 2 * (32 + 64 + 128 + 256)
    head = 256 * 10 + 10
    assert models.count_parameters(models.Backbone(10)) == convs + bns + head
    assert 200_000 < convs < 1_000_000


def test_count_parameters_trainable_only():
    net = models.LeNet5()
    for p in net.features.parameters():
        p.requires_grad_(False)
    assert models.count_parameters(net, trainable_only=True) == models.count_parameters(net.classifier)


def test_conv1d_net_on_signals_and_tokens():
    torch.manual_seed(0)
    signal = models.Conv1dNet(num_classes=5, in_channels=3).eval()
    assert signal(torch.rand(2, 3, 50)).shape == (2, 5)
    text = models.Conv1dNet(num_classes=4, vocab_size=100).eval()
    assert text(torch.randint(0, 100, (2, 40))).shape == (2, 4)
    with pytest.raises(ValueError, match=r"\(N, L\); got torch.float32 \(2, 40\)"):
        text(torch.rand(2, 40))
    with pytest.raises(ValueError, match=r"\(N, C, L\); got \(2, 50\)"):
        signal(torch.rand(2, 50))


def test_conv1d_net_ignores_where_a_pattern_sits():
    # global max pooling over positions: moving a pattern along a zero signal keeps the output
    torch.manual_seed(0)
    net = models.Conv1dNet(num_classes=3, in_channels=1).eval()
    a, b = torch.zeros(1, 1, 64), torch.zeros(1, 1, 64)
    a[0, 0, 20:24] = torch.tensor([1.0, -2.0, 3.0, 0.5])
    b[0, 0, 40:44] = torch.tensor([1.0, -2.0, 3.0, 0.5])
    torch.testing.assert_close(net(a), net(b))


def test_residual_block_keeps_the_shape():
    torch.manual_seed(0)
    block = models.ResidualBlock(8).eval()
    assert block(torch.rand(2, 8, 7, 5)).shape == (2, 8, 7, 5)


def test_residual_block_is_the_identity_when_its_branch_is_zeroed():
    # bn2's scale and shift at zero make the branch output 0; relu(x + 0) = x for x >= 0
    torch.manual_seed(0)
    block = models.ResidualBlock(4).eval()
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    x = torch.relu(torch.randn(3, 4, 6, 6))
    torch.testing.assert_close(block(x), x)
    block.skip = False                          # the plain block passes nothing on
    assert torch.count_nonzero(block(x)) == 0


def test_resnet_digits_parameter_count_does_not_depend_on_the_skip():
    width, blocks = 16, 3
    stem = 9 * width + 2 * width
    block = 2 * (9 * width * width + 2 * width)
    head = width * 10 + 10
    for skip in (True, False):
        net = models.ResNetDigits(width=width, blocks=blocks, skip=skip)
        assert models.count_parameters(net) == stem + blocks * block + head


def test_resnet_digits_maps_digits_to_logits_and_the_skip_changes_them():
    torch.manual_seed(0)
    res = models.ResNetDigits(num_classes=7, blocks=2).eval()
    plain = models.ResNetDigits(num_classes=7, blocks=2, skip=False).eval()
    plain.load_state_dict(res.state_dict())     # same weights, only the additions differ
    x = torch.rand(3, 1, 28, 28)
    assert res(x).shape == plain(x).shape == (3, 7)
    assert not torch.allclose(res(x), plain(x))


def test_resnet_digits_names_the_wrong_input():
    with pytest.raises(ValueError, match=r"ResNetDigits: input must have shape \(N, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        models.ResNetDigits()(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"ResidualBlock: input must have shape \(N, 8, H, W\); got \(2, 4, 5, 5\)"):
        models.ResidualBlock(8)(torch.rand(2, 4, 5, 5))
    with pytest.raises(ValueError, match="`blocks` must be a non-negative integer; got -1"):
        models.ResNetDigits(blocks=-1)
