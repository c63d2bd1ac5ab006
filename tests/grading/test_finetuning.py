"""Checkers of assignment 09: correct fine-tuning code passes, each known bug is named."""

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from conv_course.grading.finetuning import check_add_lora, check_freeze, check_lora_conv, check_optimizer


def freeze_backbone(model):
    for p in model.features.parameters():
        p.requires_grad = False
    return model


def make_optimizer(model, base_lr, head_factor=10.0, skip_head=False):
    groups = [{"params": list(model.features.parameters()), "lr": base_lr}]
    if not skip_head:
        groups.append({"params": list(model.head.parameters()), "lr": head_factor * base_lr})
    return torch.optim.AdamW(groups, lr=base_lr)


class LoRAConv2d(nn.Module):
    def __init__(self, conv, rank=4, alpha=4, scale=True, zero_b=True, keep_geometry=True):
        super().__init__()
        self.conv, self.rank = conv, rank
        self.scale = alpha / rank if scale else 1.0
        self.keep_geometry = keep_geometry
        for p in conv.parameters():
            p.requires_grad = False
        c_out, c_in, kh, kw = conv.weight.shape
        self.lora_A = nn.Parameter(torch.randn(rank, c_in * kh * kw) * 0.01)
        self.lora_B = nn.Parameter(torch.zeros(c_out, rank) if zero_b else torch.randn(c_out, rank))

    def forward(self, x):
        delta = (self.lora_B @ self.lora_A).reshape(self.conv.weight.shape) * self.scale
        geometry = dict(stride=self.conv.stride, padding=self.conv.padding, dilation=self.conv.dilation)
        return self.conv(x) + F.conv2d(x, delta, **(geometry if self.keep_geometry else {}))


def add_lora(model, rank=4, alpha=4, recurse=True, freeze_head=False):
    for p in model.parameters():
        p.requires_grad = False

    def wrap(module):
        for name, child in module.named_children():
            if isinstance(child, nn.Conv2d):
                setattr(module, name, LoRAConv2d(child, rank, alpha))
            elif recurse:
                wrap(child)
    wrap(model)
    for p in model.head.parameters():
        p.requires_grad = not freeze_head
    return model


@pytest.mark.parametrize("hidden", [False, True])
def test_correct_fine_tuning_code_passes(hidden):
    check_freeze(freeze_backbone, hidden=hidden)
    for group in ("coverage", "lrs"):
        check_optimizer(make_optimizer, group=group, hidden=hidden)
    for group in ("init", "forward"):
        check_lora_conv(LoRAConv2d, group=group, hidden=hidden)
    for group in ("wrap", "trainable"):
        check_add_lora(add_lora, group=group, hidden=hidden)


def _freeze_bug(bug):
    def wrong(model):
        for name, p in model.named_parameters():
            if bug == "all" or (bug == "weights_only" and name.startswith("features") and name.endswith("conv.weight")):
                p.requires_grad = False
        return model
    return wrong


@pytest.mark.parametrize("fn, message", [
    (_freeze_bug("all"), "the head was frozen with the backbone"),
    (_freeze_bug("weights_only"), "BatchNorm weights/biases"),
    (lambda model: model, "nothing frozen"),
])
def test_freeze_bugs_are_named(fn, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_freeze(fn)


@pytest.mark.parametrize("kwargs, group, message", [
    ({"head_factor": 1.0}, "lrs", "learns at the backbone's rate"),
    ({"head_factor": 0.1}, "lrs", "base_lr / 10"),
    ({"skip_head": True}, "coverage", "the head left out of the optimizer"),
])
def test_optimizer_bugs_are_named(kwargs, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_optimizer(lambda m, lr: make_optimizer(m, lr, **kwargs), group=group)


def test_swapped_rates_are_named():
    def swapped(model, base_lr):
        return torch.optim.SGD([{"params": model.features.parameters(), "lr": 10 * base_lr},
                                {"params": model.head.parameters(), "lr": base_lr}], lr=base_lr)

    with pytest.raises(AssertionError, match="rates are swapped"):
        check_optimizer(swapped, group="lrs")


@pytest.mark.parametrize("kwargs, group, message", [
    ({"scale": False}, "forward", "not scaled by alpha / rank"),
    ({"zero_b": False}, "init", "lora_B is not zero"),
    ({"keep_geometry": False}, "forward", "ignores the wrapped conv's stride"),
])
def test_lora_conv_bugs_are_named(kwargs, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_lora_conv(lambda conv, rank=4, alpha=4: LoRAConv2d(conv, rank, alpha, **kwargs), group=group,
                        hidden=True)


def test_unfrozen_lora_conv_is_named():
    class Unfrozen(LoRAConv2d):
        def __init__(self, conv, rank=4, alpha=4):
            super().__init__(conv, rank, alpha)
            conv.weight.requires_grad = True

    with pytest.raises(AssertionError, match="the wrapped conv is not frozen"):
        check_lora_conv(Unfrozen, group="init")


@pytest.mark.parametrize("kwargs, group, message", [
    ({"recurse": False}, "wrap", "only direct children were replaced"),
    ({"freeze_head": True}, "trainable", "the head is frozen"),
])
def test_add_lora_bugs_are_named(kwargs, group, message):
    with pytest.raises(AssertionError, match="Likely bug: .*" + message):
        check_add_lora(lambda m, rank=4, alpha=4: add_lora(m, rank, alpha, **kwargs), group=group)


def test_the_course_finetune_module_passes_the_checkers():
    """The student contract matches conv_course.finetune: its own tools get full marks."""
    from conv_course import finetune

    def course_add_lora(model, rank=4, alpha=4):
        finetune.freeze(model)
        finetune.add_lora(model, rank, alpha)
        finetune.unfreeze(model, ["head"])
        return model

    def course_optimizer(model, base_lr):
        return torch.optim.AdamW(finetune.param_groups(model, base_lr), lr=base_lr)

    for hidden in (False, True):
        check_freeze(lambda model: finetune.freeze(model, "features"), hidden=hidden)
        for group in ("init", "forward"):
            check_lora_conv(finetune.LoRAConv2d, group=group, hidden=hidden)
        for group in ("wrap", "trainable"):
            check_add_lora(course_add_lora, group=group, hidden=hidden)
        for group in ("coverage", "lrs"):
            check_optimizer(course_optimizer, group=group, hidden=hidden)


def test_lora_that_ignores_padding_is_named_already_at_init():
    with pytest.raises(AssertionError, match="Likely bug: the low-rank path ignores the wrapped conv's stride"):
        check_lora_conv(lambda conv, rank=4, alpha=4: LoRAConv2d(conv, rank, alpha, keep_geometry=False),
                        group="init")
