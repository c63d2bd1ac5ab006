"""Fine-tuning tools: freeze layers, give layers their own learning rates, LoRA for convs.

A typical run (Backbone from `pretrained.load_backbone`)::

    model = load_backbone(num_classes=10)
    freeze(model, "features")                    # feature extraction: only the head learns
    unfreeze(model); groups = param_groups(model, base_lr=1e-3)   # discriminative: head x10
    add_lora(freeze(model), rank=4); unfreeze(model, "head")      # LoRA: adapters + head learn
    imprint_head(model, train)                   # any of them: start the head at the class means
    fit(model, train, params=groups)

Frozen BatchNorm layers are put in eval mode (`freeze` does it, and `train.fit` keeps them
there every epoch), so their running statistics stay those of pretraining.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .train import as_tensors

__all__ = ["freeze", "unfreeze", "blocks", "param_groups", "imprint_head", "LoRAConv2d", "add_lora", "merge_lora",
           "unmerge_lora", "parameter_table", "format_parameter_table"]


def blocks(model):
    """The model's stages in order: the children of ``model.features`` that hold parameters,
    then the model's other parameterised children (e.g. ``head``); as (name, module) pairs.
    Without a ``features`` attribute: the model's parameterised children."""
    out = []
    for name, child in model.named_children():
        if name == "features" and isinstance(child, nn.Sequential):
            out += [(f"features.{n}", m) for n, m in child.named_children() if any(True for _ in m.parameters())]
        elif any(True for _ in child.parameters()):
            out.append((name, child))
    return out


def _select(fn_name, model, names, depth):
    if names is not None and depth is not None:
        raise ValueError(f"{fn_name}: give `names` or `depth`, not both")
    if depth is not None:
        stages = blocks(model)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= len(stages):
            raise ValueError(f"{fn_name}: `depth` must be an integer in [0, {len(stages)}] "
                             f"(stages {[n for n, _ in stages]}); got {depth!r}")
        prefixes = [n for n, _ in stages[:depth]]
    elif names is None:
        return [p for _, p in model.named_parameters()]
    else:
        prefixes = [names] if isinstance(names, str) else list(names)
        known = dict(model.named_modules())
        for prefix in prefixes:
            if prefix not in known:
                raise ValueError(f"{fn_name}: `names` entry {prefix!r} is not a module of the model; "
                                 f"top-level modules are {[n for n, _ in model.named_children()]}")
    return [p for n, p in model.named_parameters()
            if any(n == pre or n.startswith(pre + ".") for pre in prefixes)]


def _sync_bn_modes(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None:
            if not m.weight.requires_grad:
                m.eval()
            elif model.training:
                m.train()


def freeze(model, names=None, *, depth=None):
    """Stop gradients for part of `model`; returns `model`.

    Args:
        names: None (everything), or a module name / list of names (``"features"``,
            ``"features.block1"``): every parameter under those modules.
        depth: instead of names, the first `depth` stages of `blocks(model)`.
    Frozen BatchNorm layers switch to eval mode, keeping their pretrained statistics.
    """
    for p in _select("freeze", model, names, depth):
        p.requires_grad_(False)
    _sync_bn_modes(model)
    return model


def unfreeze(model, names=None, *, depth=None):
    """Let gradients flow again for part of `model` (same arguments as `freeze`); returns `model`."""
    for p in _select("unfreeze", model, names, depth):
        p.requires_grad_(True)
    _sync_bn_modes(model)
    return model


def param_groups(model, base_lr, head_lr=None, head="head"):
    """Optimizer parameter groups for discriminative learning rates.

    Args:
        base_lr: learning rate of every trainable parameter outside the head.
        head_lr: learning rate of the head; default 10 * base_lr (the new head starts random, or
            imprinted: a rough start either way, which must move further than the pretrained body).
        head: name of the head module.
    Returns:
        list of {"name", "params", "lr"} dicts (empty groups left out), for torch.optim or `train.fit`.
    """
    if not any(n == head for n, _ in model.named_modules()):
        raise ValueError(f"param_groups: `head`={head!r} is not a module of the model")
    for name, lr in (("base_lr", base_lr), ("head_lr", head_lr)):
        if lr is not None and not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
            raise ValueError(f"param_groups: `{name}` must be a positive number; got {lr!r}")
    head_lr = 10 * base_lr if head_lr is None else head_lr
    body, top = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (top if n.startswith(head + ".") else body).append(p)
    groups = [{"name": "body", "params": body, "lr": base_lr}, {"name": "head", "params": top, "lr": head_lr}]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def imprint_head(model, dataset, scale=10.0, batch_size=512):
    """Initialise ``model.head`` from the class means of the labelled features ("weight imprinting").

    A new head usually starts random, so the first steps of fine-tuning only undo its noise.
    Imprinting (Qi et al., 2018) starts it as a nearest-class-mean classifier instead. With
    features f = ``model.features(x)`` (N, D) and class means mu_c (D,), the squared distance
    ||f - mu_c||^2 = ||f||^2 - 2 mu_c . f + ||mu_c||^2, and ||f||^2 is the same for every class:
    so "nearest mean" is the linear layer W_c = tau * mu_c, b_c = -tau * ||mu_c||^2 / 2.
    tau = scale / mean_c ||mu_c||^2 sets how confident the start is (a feature equal to its
    class mean scores about scale / 2 above the zero feature); training goes on from there.

    Args:
        model: nn.Module with ``features`` ((B, 1, H, W) -> (B, D)) and an nn.Linear ``head``
            (D -> num_classes), e.g. `models.Backbone`. Features are computed in eval mode
            (BatchNorm with its running statistics); the model's mode is restored.
        dataset: (image, label) pairs with labels in [0, num_classes), every class present,
            e.g. `data.few_shot(train, k)`.
        scale: positive number, the confidence of the start (see above).
        batch_size: images per forward pass.
    Returns:
        `model`, whose head now predicts the class of the nearest mean feature.
    Raises:
        ValueError if the model lacks ``features``/an nn.Linear ``head``, `scale` is not
        positive, or a class of the head has no example in `dataset`.
    """
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear) or not isinstance(getattr(model, "features", None), nn.Module):
        raise ValueError(f"imprint_head: `model` needs a `features` module and an nn.Linear `head`; "
                         f"got {type(model).__name__} with head {type(head).__name__}")
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"imprint_head: `scale` must be a positive number; got {scale!r}")
    device = head.weight.device
    x, y = as_tensors(dataset, device)
    was_training = model.training
    model.eval()
    feats = torch.cat([model.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    missing = [c for c in range(head.out_features) if not (y == c).any()]
    if missing or feats.shape[1] != head.in_features:
        raise ValueError(f"imprint_head: `dataset` must give {head.in_features}-d features with every class "
                         f"0..{head.out_features - 1}; features are {feats.shape[1]}-d, classes {missing} missing")
    means = torch.stack([feats[y == c].mean(0) for c in range(head.out_features)])   # (num_classes, D)
    sq = (means * means).sum(1)                                                         # (num_classes,)
    tau = scale / sq.mean().clamp_min(1e-12)
    head.weight.copy_(tau * means)
    head.bias.copy_(-0.5 * tau * sq)
    return model


class LoRAConv2d(nn.Module):
    """A frozen nn.Conv2d plus a trainable low-rank update of its kernel (LoRA, Hu et al. 2021).

    The kernel W (C_out, C_in/groups, kh, kw) is read as a matrix (C_out, C_in/groups*kh*kw).
    The update is delta_W = (alpha / rank) * B @ A with A (rank, C_in/groups*kh*kw) and
    B (C_out, rank), reshaped back to W's shape, and the layer computes
    conv2d(x, W + delta_W, bias) with the wrapped conv's stride, padding, dilation and groups.
    B starts at zero, so the layer starts exactly equal to the frozen conv; A starts random
    (Kaiming uniform) so gradients reach B. Only A and B train: rank*(C_out + C_in/groups*kh*kw)
    parameters instead of C_out*C_in/groups*kh*kw. `merge()` adds delta_W into the conv's
    weight for inference (then the layer is a plain conv); `unmerge()` takes it out again.
    """

    def __init__(self, conv, rank=4, alpha=4):
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"LoRAConv2d: `conv` must be an nn.Conv2d; got {type(conv).__name__}")
        if conv.padding_mode != "zeros":
            raise ValueError(f"LoRAConv2d: `conv` must use padding_mode='zeros'; got {conv.padding_mode!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"LoRAConv2d: `rank` must be a positive integer; got {rank!r}")
        if not (isinstance(alpha, (int, float)) and alpha > 0):
            raise ValueError(f"LoRAConv2d: `alpha` must be a positive number; got {alpha!r}")
        self.conv = conv
        for p in conv.parameters():
            p.requires_grad_(False)
        c_out, fan_in = conv.weight.shape[0], conv.weight[0].numel()
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        w = conv.weight
        self.lora_A = nn.Parameter(torch.empty(rank, fan_in, device=w.device, dtype=w.dtype))
        self.lora_B = nn.Parameter(torch.zeros(c_out, rank, device=w.device, dtype=w.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.merged = False

    def delta_weight(self):
        """delta_W = (alpha / rank) * B @ A, shaped like the conv's weight (C_out, C_in/groups, kh, kw)."""
        return (self.scaling * self.lora_B @ self.lora_A).view_as(self.conv.weight)

    def forward(self, x):
        if self.merged:
            return self.conv(x)
        c = self.conv
        return F.conv2d(x, c.weight + self.delta_weight(), c.bias, c.stride, c.padding, c.dilation, c.groups)

    @torch.no_grad()
    def merge(self):
        """Fold delta_W into the frozen weight: one plain conv at inference. Idempotent."""
        if not self.merged:
            self.conv.weight += self.delta_weight()
            self.merged = True
        return self

    @torch.no_grad()
    def unmerge(self):
        """Undo `merge` (to train the adapters further). Idempotent."""
        if self.merged:
            self.conv.weight -= self.delta_weight()
            self.merged = False
        return self

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}"


def add_lora(model, rank=4, alpha=4):
    """Wrap every nn.Conv2d in `model` (in place) in a `LoRAConv2d`; returns `model`.

    Wrapped convs are frozen; other parameters keep their requires_grad, so freeze the model
    first and unfreeze the head to train only adapters and head.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Conv2d):
            setattr(model, name, LoRAConv2d(child, rank, alpha))
        elif not isinstance(child, LoRAConv2d):
            add_lora(child, rank, alpha)
    return model


def merge_lora(model):
    """`merge()` every LoRAConv2d in `model`; returns `model`."""
    for m in model.modules():
        if isinstance(m, LoRAConv2d):
            m.merge()
    return model


def unmerge_lora(model):
    """`unmerge()` every LoRAConv2d in `model`; returns `model`."""
    for m in model.modules():
        if isinstance(m, LoRAConv2d):
            m.unmerge()
    return model


def parameter_table(model):
    """One row per module that owns parameters: {"layer", "type", "trainable", "total"},
    plus a final "total" row. Parameters are counted in scalars."""
    rows = []
    for name, m in model.named_modules():
        own = list(m.parameters(recurse=False))
        if own:
            rows.append({"layer": name, "type": type(m).__name__, "total": sum(p.numel() for p in own),
                         "trainable": sum(p.numel() for p in own if p.requires_grad)})
    rows.append({"layer": "total", "type": "", "total": sum(r["total"] for r in rows),
                 "trainable": sum(r["trainable"] for r in rows)})
    return rows


def format_parameter_table(model):
    """`parameter_table` as aligned text, with the trainable share of each layer."""
    from .tables import format_table

    rows = [dict(r, share=r["trainable"] / r["total"]) for r in parameter_table(model)]
    return format_table(rows, [("layer", "layer", "{}"), ("type", "type", "{}"), ("trainable", "trainable", "{:,}"),
                               ("total", "total", "{:,}"), ("share", "trainable share", "{:.1%}")])
