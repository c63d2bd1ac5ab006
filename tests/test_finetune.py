"""conv_course.finetune: freezing, parameter groups, LoRA for convolutions."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conv_course import finetune as ft
from conv_course import models, train
from conv_course.data import ImageDataset


@pytest.fixture
def net():
    torch.manual_seed(0)
    return models.Backbone(num_classes=4)


def _tiny_data(n=16):
    g = torch.Generator().manual_seed(0)
    return ImageDataset(torch.rand(n, 1, 28, 28, generator=g), torch.arange(n) % 4)


def _one_step(model, lr=0.1):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    model.train()
    ft._sync_bn_modes(model)
    x, y = _tiny_data().tensors
    F.cross_entropy(model(x), y).backward()
    opt.step()


def test_freeze_by_name_stops_gradients_and_updates(net):
    ft.freeze(net, "features")
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    _one_step(net)
    for n, p in net.named_parameters():
        if n.startswith("features."):
            assert not p.requires_grad and p.grad is None and torch.equal(p, before[n]), n
        else:
            assert not torch.equal(p, before[n]), n


def test_frozen_batchnorm_stays_in_eval_and_keeps_statistics(net):
    ft.freeze(net, "features")
    bn = net.features.block2.bn
    mean = bn.running_mean.clone()
    train.fit(net, _tiny_data(), epochs=1, batch_size=8, progress=False)
    assert torch.equal(bn.running_mean, mean)
    net.train()
    ft.freeze(net, "features.block1")
    assert not net.features.block1.bn.training


def test_freeze_by_depth_counts_stages(net):
    assert [n for n, _ in ft.blocks(net)] == ["features.block1", "features.block2", "features.block3",
                                               "features.block4", "head"]
    ft.freeze(net, depth=2)
    frozen = {n.split(".")[1] for n, p in net.named_parameters() if not p.requires_grad}
    assert frozen == {"block1", "block2"}
    ft.unfreeze(net, depth=1)
    assert net.features.block1.conv.weight.requires_grad and not net.features.block2.conv.weight.requires_grad


def test_freeze_all_then_unfreeze_the_head(net):
    ft.unfreeze(ft.freeze(net), "head")
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]


def test_freeze_rejects_unknown_names_and_depths(net):
    with pytest.raises(ValueError, match="'featurez' is not a module"):
        ft.freeze(net, "featurez")
    with pytest.raises(ValueError, match=r"`depth` must be an integer in \[0, 5\]"):
        ft.freeze(net, depth=6)
    with pytest.raises(ValueError, match="not both"):
        ft.freeze(net, "head", depth=1)


def test_param_groups_give_the_head_ten_times_the_rate(net):
    groups = ft.param_groups(net, base_lr=1e-3)
    assert [(g["name"], g["lr"]) for g in groups] == [("body", 1e-3), ("head", 1e-2)]
    head_ids = {id(p) for p in net.head.parameters()}
    assert {id(p) for p in groups[1]["params"]} == head_ids
    all_ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(all_ids) == sorted(id(p) for p in net.parameters())  # each parameter once


def test_param_groups_skip_frozen_parameters_and_accept_head_lr(net):
    ft.freeze(net, depth=3)
    groups = ft.param_groups(net, base_lr=2e-4, head_lr=5e-3)
    assert groups[1]["lr"] == 5e-3
    n_body = sum(p.numel() for g in groups[:1] for p in g["params"])
    assert n_body == sum(p.numel() for p in net.features.block4.parameters())
    opt = torch.optim.SGD(groups, lr=1.0)
    assert [g["lr"] for g in opt.param_groups] == [2e-4, 5e-3]
    with pytest.raises(ValueError, match="`head`='classifier'"):
        ft.param_groups(net, 1e-3, head="classifier")
    with pytest.raises(ValueError, match="`base_lr`"):
        ft.param_groups(net, -1.0)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(padding=2, dilation=2),
                                dict(groups=2, padding=1)])
def test_lora_starts_equal_to_the_frozen_conv(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, **kw)
    lora = ft.LoRAConv2d(conv, rank=2, alpha=4)
    x = torch.rand(2, 4, 9, 9)
    torch.testing.assert_close(lora(x), conv(x))


def test_lora_adds_scaled_low_rank_kernel_update():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    lora = ft.LoRAConv2d(conv, rank=2, alpha=6)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.rand(2, 3, 7, 7)
    delta = (6 / 2) * torch.einsum("or,rk->ok", lora.lora_B, lora.lora_A).reshape(5, 3, 3, 3)
    want = F.conv2d(x, conv.weight + delta, conv.bias, padding=1)
    torch.testing.assert_close(lora(x), want)
    assert lora.lora_A.shape == (2, 3 * 3 * 3) and lora.lora_B.shape == (5, 2)


def test_lora_trains_only_the_adapters():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3)
    lora = ft.LoRAConv2d(conv, rank=2)
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    w, b = conv.weight.detach().clone(), conv.bias.detach().clone()
    opt = torch.optim.SGD([p for p in lora.parameters() if p.requires_grad], lr=0.1)
    lora(torch.rand(2, 3, 6, 6)).square().mean().backward()
    opt.step()
    assert torch.equal(conv.weight, w) and torch.equal(conv.bias, b)
    assert lora.lora_B.abs().sum() > 0  # B moved off zero


def test_lora_merged_equals_unmerged_and_unmerge_restores():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
    original = conv.weight.detach().clone()
    lora = ft.LoRAConv2d(conv, rank=2)
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.rand(2, 3, 8, 8)
    unmerged = lora(x)
    lora.merge().merge()  # idempotent
    torch.testing.assert_close(lora(x), unmerged, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(conv(x), unmerged, atol=1e-5, rtol=1e-5)
    lora.unmerge().unmerge()
    torch.testing.assert_close(conv.weight, original, atol=1e-6, rtol=0)


def test_lora_rejects_bad_arguments():
    with pytest.raises(TypeError, match="nn.Conv2d; got Linear"):
        ft.LoRAConv2d(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="`rank`"):
        ft.LoRAConv2d(nn.Conv2d(1, 1, 3), rank=0)
    with pytest.raises(ValueError, match="padding_mode"):
        ft.LoRAConv2d(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect"))


def test_add_lora_wraps_every_conv_and_keeps_the_output(net):
    net.eval()
    x = torch.rand(2, 1, 28, 28)
    before = net(x)
    ft.add_lora(ft.freeze(net), rank=4, alpha=4)
    ft.unfreeze(net, "head")
    wrapped = [m for m in net.modules() if isinstance(m, ft.LoRAConv2d)]
    assert len(wrapped) == 4
    bare = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d) and not n.endswith(".conv.conv")]
    assert bare == []
    torch.testing.assert_close(net(x), before)
    lora_params = sum(4 * (m.conv.out_channels + m.conv.weight[0].numel()) for m in wrapped)
    assert models.count_parameters(net, trainable_only=True) == lora_params + 256 * 4 + 4


def test_merge_lora_keeps_a_trained_model_output(net):
    ft.add_lora(ft.freeze(net), rank=2)
    train.fit(net, _tiny_data(), epochs=1, batch_size=8, lr=0.05, schedule="constant", progress=False)
    x = torch.rand(3, 1, 28, 28)
    out = net(x)
    ft.merge_lora(net)
    torch.testing.assert_close(net(x), out, atol=1e-4, rtol=1e-4)
    ft.unmerge_lora(net)
    torch.testing.assert_close(net(x), out, atol=1e-4, rtol=1e-4)


def test_parameter_table_counts_trainable_and_total(net):
    ft.freeze(net, "features")
    rows = ft.parameter_table(net)
    total = rows[-1]
    assert total["layer"] == "total" and total["total"] == models.count_parameters(net)
    assert total["trainable"] == 256 * 4 + 4
    by_layer = {r["layer"]: r for r in rows}
    assert by_layer["features.block1.conv"]["total"] == 32 * 9 and by_layer["features.block1.conv"]["trainable"] == 0
    text = ft.format_parameter_table(net)
    assert "features.block4.conv" in text and "1,028" in text


class _FlatNet(nn.Module):
    """features = flatten (N, 1, 1, D) -> (N, D); an nn.Linear head: the means are the raw inputs."""

    def __init__(self, d, num_classes):
        super().__init__()
        self.features, self.head = nn.Flatten(), nn.Linear(d, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def _points(rows, labels):
    return ImageDataset(torch.tensor(rows, dtype=torch.float32).view(len(rows), 1, 1, -1), labels)


def test_imprint_head_writes_the_nearest_mean_classifier():
    # class 0: (0, 0) and (2, 0) -> mean (1, 0); class 1: (0, 2) -> mean (0, 2)
    net = ft.imprint_head(_FlatNet(2, 2), _points([[0, 0], [2, 0], [0, 2]], [0, 0, 1]), scale=5.0)
    tau = 5.0 / ((1 + 4) / 2)  # scale / mean squared norm of the means
    torch.testing.assert_close(net.head.weight, tau * torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    torch.testing.assert_close(net.head.bias, -tau / 2 * torch.tensor([1.0, 4.0]))


def test_imprinted_head_predicts_the_class_of_the_nearest_mean():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 1, 1, 5, generator=g), torch.arange(30) % 3
    net = ft.imprint_head(_FlatNet(5, 3), ImageDataset(x, y))
    means = torch.stack([x[y == c].flatten(1).mean(0) for c in range(3)])
    queries = torch.randn(50, 1, 1, 5, generator=g)
    want = torch.cdist(queries.flatten(1), means).argmin(1)
    assert torch.equal(net(queries).argmax(1), want)


def test_imprint_head_uses_running_statistics_and_restores_the_mode(net):
    net.train()
    bn = net.features.block1.bn
    mean = bn.running_mean.clone()
    ft.imprint_head(net, _tiny_data())
    assert net.training and torch.equal(bn.running_mean, mean)


def test_imprint_head_rejects_missing_classes_and_bad_scale():
    with pytest.raises(ValueError, match=r"classes \[2\] missing"):
        ft.imprint_head(_FlatNet(2, 3), _points([[0, 0], [1, 1]], [0, 1]))
    with pytest.raises(ValueError, match="`scale`"):
        ft.imprint_head(_FlatNet(2, 2), _points([[0, 0], [1, 1]], [0, 1]), scale=0)
    with pytest.raises(ValueError, match="nn.Linear `head`"):
        ft.imprint_head(nn.Linear(2, 2), _points([[0, 0], [1, 1]], [0, 1]))
