"""Checkers for assignment 09 (fine-tune), graded by inspecting models and optimizers.

Students write ``freeze_backbone(model)``, ``make_optimizer(model, base_lr)`` (the head at 10x
the backbone's learning rate), a ``LoRAConv2d(conv, rank, alpha)`` module (attributes ``conv``,
``lora_A`` (rank, C_in*kh*kw), ``lora_B`` (C_out, rank) zero-initialised, scale alpha/rank) and
``add_lora(model, rank, alpha)``. The checkers build a fresh seeded `conv_course.models.Backbone`
and inspect requires_grad flags, optimizer param groups and outputs.

Each checker is two halves (`._student_side`): a ``*_report`` function that runs the student's
code and returns what it measured as plain data (parameter names and flags, learning rates,
output arrays), and the judgement of that data, which needs no student object, so the trusted
re-check can judge it outside the student's process.
"""

import numpy as np

from ._core import checker, likely_bug, not_implemented
from ._i18n import _
from ._student_side import student_side
from ._torch import seed_all, single_threaded, torch_module

__all__ = ["check_freeze", "check_optimizer", "check_lora_conv", "check_add_lora", "freeze_report",
           "optimizer_report", "lora_report", "add_lora_report"]


def _backbone(hidden, num_classes=10):
    from conv_course import models

    seed_all(9 if hidden else 0)
    return models.Backbone(num_classes=5 if hidden else num_classes).eval()


def _names(names, limit=3):
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return _("{names} and {count} more").format(names=", ".join(names[:limit]), count=len(names) - limit)


def _call(fn, *args, **kwargs):
    name = getattr(fn, "__name__", None) or _("your function")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise not_implemented(name) from None


def _returned_model(result, model, fn_name):
    torch = torch_module()
    if result is None:
        return model
    if not isinstance(result, torch.nn.Module):
        raise AssertionError(_("`{name}` must return the model (an nn.Module); got {type}").format(
            name=fn_name, type=type(result).__name__))
    return result


@student_side
@single_threaded
def freeze_report(freeze_backbone, hidden=False):
    """Student side of `check_freeze`: [name, requires_grad] of the backbone's and the head's parameters."""
    model = _backbone(hidden)
    model = _returned_model(_call(freeze_backbone, model), model, "freeze_backbone")
    return {"features": [[f"features.{n}", bool(p.requires_grad)] for n, p in model.features.named_parameters()],
            "head": [[f"head.{n}", bool(p.requires_grad)] for n, p in model.head.named_parameters()]}


@checker
def check_freeze(freeze_backbone, group="freeze", hidden=False):
    """Check ``freeze_backbone(model)``: every parameter of ``model.features`` frozen, ``model.head`` trainable.

    Raises:
        AssertionError naming the parameters in the wrong state and the likely bug.
    """
    if group != "freeze":
        raise ValueError(f"check_freeze: `group` must be 'freeze'; got {group!r}")
    report = freeze_report(freeze_backbone, hidden)
    feats, heads = report["features"], report["head"]
    loose = [n for n, grad in feats if grad]
    head_frozen = [n for n, grad in heads if not grad]
    if len(loose) == len(feats):
        raise AssertionError(_("no parameter of model.features is frozen.") + " " + likely_bug(
            _("nothing frozen; set `p.requires_grad = False` for every parameter of model.features (torch.no_grad() "
              "or .detach() in a function does not freeze anything)")))
    if loose:
        bn = all(".bn." in n or n.endswith("bias") for n in loose)
        hint = (_("BatchNorm weights/biases (or conv biases) are still trainable: freeze every parameter of "
                  "model.features, not only the conv weights") if bn else
                _("freeze every parameter of model.features"))
        raise AssertionError(_("{loose} of {total} backbone parameters still train: {names}.").format(
            loose=len(loose), total=len(feats), names=_names(loose)) + " " + likely_bug(hint))
    if head_frozen:
        raise AssertionError(_("the head is frozen too ({names}).").format(names=_names(head_frozen)) + " "
                             + likely_bug(_("the head was frozen with the backbone; only model.features is frozen, "
                                            "the new head must train")))


def _all_equal(rates, value):
    """True if the set of learning rates `rates` is exactly one number close to `value`."""
    return len(rates) == 1 and None not in rates and bool(np.isclose(next(iter(rates)), value, rtol=1e-9))


def _base_lr(hidden):
    return 3e-4 if hidden else 1e-3


@student_side
@single_threaded
def optimizer_report(make_optimizer, hidden=False):
    """Student side of `check_optimizer`: [name, learning rate or None] of every parameter."""
    torch = torch_module()
    model = _backbone(hidden)
    opt = _call(make_optimizer, model, _base_lr(hidden))
    if not isinstance(opt, torch.optim.Optimizer):
        raise AssertionError(_("`make_optimizer` must return a torch.optim optimizer; got {type}").format(
            type=type(opt).__name__))
    lr_of = {id(p): float(g["lr"]) for g in opt.param_groups for p in g["params"]}
    return [[n, lr_of.get(id(p))] for n, p in model.named_parameters()]


@checker
def check_optimizer(make_optimizer, group="lrs", hidden=False):
    """Check ``make_optimizer(model, base_lr)``: the backbone at base_lr, the head at 10 * base_lr.

    Args:
        group: "coverage" (every parameter in exactly one param group) or "lrs" (the rates).
    Raises:
        AssertionError naming the parameters or rates that are wrong and the likely bug.
    """
    if group not in ("coverage", "lrs"):
        raise ValueError(f"check_optimizer: `group` must be 'coverage' or 'lrs'; got {group!r}")
    base_lr = _base_lr(hidden)
    named = optimizer_report(make_optimizer, hidden)
    if group == "coverage":
        missing = [n for n, lr in named if lr is None]
        if missing:
            bug = (_("the head left out of the optimizer, so they never change") if all(
                n.startswith("head.") for n in missing) else
                _("some parameters left out of the optimizer, so they never change"))
            raise AssertionError(_("{count} parameters are in no param group: {names}.").format(
                count=len(missing), names=_names(missing)) + " " + likely_bug(bug))
        return
    head = {lr for n, lr in named if n.startswith("head.")}
    body = {lr for n, lr in named if not n.startswith("head.")}
    want_head, want_body = 10 * base_lr, base_lr
    if _all_equal(head, want_head) and _all_equal(body, want_body):
        return
    got = _("backbone lr {body}, head lr {head} (base_lr={base_lr:g})").format(
        body=_names(sorted(map(str, body))), head=_names(sorted(map(str, head))), base_lr=base_lr)
    if _all_equal(head, want_body) and _all_equal(body, want_head):
        bug = _("the rates are swapped: the head gets 10 * base_lr, the backbone base_lr")
    elif _all_equal(head, base_lr):
        bug = _("the head learns at the backbone's rate; discriminative fine-tuning gives the new head 10 * base_lr")
    elif _all_equal(head, base_lr / 10):
        bug = _("the head's rate is base_lr / 10: multiply by 10, do not divide")
    elif None in head or None in body:
        bug = _("some parameters are in no param group")
    else:
        bug = _("the backbone must use base_lr and the head 10 * base_lr")
    raise AssertionError(_("wrong learning rates: expected backbone {body:g}, head {head:g}; got {got}.").format(
        body=want_body, head=want_head, got=got) + " " + likely_bug(bug))


def _lora_conv(hidden):
    torch = torch_module()
    seed_all(19 if hidden else 10)
    if hidden:
        return torch.nn.Conv2d(2, 5, (3, 2), stride=2, padding=1, dilation=1, bias=True)
    return torch.nn.Conv2d(3, 4, 3, stride=1, padding=1, bias=True)


def _lora_parts(lora, conv, rank):
    """Check the attribute contract; returns (A, B)."""
    torch = torch_module()
    c_out, c_in, kh, kw = conv.weight.shape
    want = {"lora_A": (rank, c_in * kh * kw), "lora_B": (c_out, rank)}
    for name, shape in want.items():
        p = getattr(lora, name, None)
        if not isinstance(p, torch.nn.Parameter):
            raise AssertionError(_("`LoRAConv2d` needs an nn.Parameter `{name}` of shape {shape}; got {got}").format(
                name=name, shape=shape, got=type(p).__name__ if p is not None else _("no such attribute")))
        if tuple(p.shape) != shape:
            raise AssertionError(_("`LoRAConv2d.{name}` must have shape {shape} for conv weight {weight_shape} and "
                                   "rank={rank}; got {got}").format(name=name, shape=shape, rank=rank,
                                                                    weight_shape=tuple(conv.weight.shape),
                                                                    got=tuple(p.shape)))
    if getattr(lora, "conv", None) is not conv:
        raise AssertionError(_("`LoRAConv2d` must keep the wrapped conv as `self.conv` (the same module)"))
    return lora.lora_A, lora.lora_B


def _lora_forward(lora, conv, x, want_shape):
    """``lora(x)``; a shape error or a wrong output shape is named as ignored conv geometry."""
    hint = likely_bug(_("the low-rank path ignores the wrapped conv's stride/padding/dilation"))
    try:
        got = lora(x)
    except RuntimeError as err:
        raise AssertionError(_("LoRAConv2d fails on a conv with stride={stride}, padding={padding}: {error}.").format(
            stride=conv.stride, padding=conv.padding, error=err) + " " + hint) from None
    if not isinstance(got, torch_module().Tensor) or tuple(got.shape) != tuple(want_shape):
        shape = tuple(got.shape) if isinstance(got, torch_module().Tensor) else type(got).__name__
        raise AssertionError(_("output shape {shape}, expected {expected} for conv stride={stride}, "
                               "padding={padding}.").format(shape=shape, expected=tuple(want_shape),
                                                            stride=conv.stride, padding=conv.padding) + " " + hint)
    return got


_RANK, _ALPHA = 2, 6.0


def _lora_input(conv, hidden):
    torch = torch_module()
    return torch.randn(2, conv.in_channels, 7, 6, generator=torch.Generator().manual_seed(5 if hidden else 4))


def _lora_weights(conv, hidden):
    """The random lora_A, lora_B that the "forward" group loads into the adapter."""
    torch = torch_module()
    c_out, c_in, kh, kw = conv.weight.shape
    gen = torch.Generator().manual_seed(7 if hidden else 6)
    return torch.randn((_RANK, c_in * kh * kw), generator=gen), torch.randn((c_out, _RANK), generator=gen)


@student_side
@single_threaded
def lora_report(LoRAConv2d, group="init", hidden=False):
    """Student side of `check_lora_conv`: the adapter's trainable parameters, its output on a seeded
    input (at initialisation, or with seeded lora_A, lora_B loaded) and which gradients it sets."""
    torch = torch_module()
    conv = _lora_conv(hidden)
    lora = _call(LoRAConv2d, conv, rank=_RANK, alpha=_ALPHA)
    A, B = _lora_parts(lora, conv, _RANK)
    x = _lora_input(conv, hidden)
    with torch.no_grad():
        want_shape = conv(x).shape
    if group == "init":
        with torch.no_grad():
            got = _lora_forward(lora, conv, x, want_shape)
        return {"trainable": sorted(n for n, p in lora.named_parameters() if p.requires_grad),
                "output": got.numpy(), "A_zero": bool(A.detach().abs().sum() == 0),
                "B_zero": bool(B.detach().abs().sum() == 0)}
    with torch.no_grad():
        a, b = _lora_weights(conv, hidden)
        A.copy_(a)
        B.copy_(b)
    got = _lora_forward(lora, conv, x, want_shape)
    out = got.detach().numpy().copy()
    got.sum().backward()
    return {"output": out, "grads": [A.grad is not None, B.grad is not None, conv.weight.grad is not None]}


@checker
def check_lora_conv(LoRAConv2d, group="init", hidden=False):
    """Check a student's ``LoRAConv2d(conv, rank=4, alpha=4)``.

    Args:
        group: "init" (shapes, only lora_A/lora_B trainable, starts equal to the frozen conv) or
            "forward" (output = conv with weight W + alpha/rank * (B @ A).reshape(W.shape), keeping
            the conv's stride, padding, dilation and bias; gradients reach A and B only).
    Raises:
        AssertionError naming the problem and the likely bug.
    """
    torch = torch_module()
    F = torch.nn.functional
    if group not in ("init", "forward"):
        raise ValueError(f"check_lora_conv: `group` must be 'init' or 'forward'; got {group!r}")
    report = lora_report(LoRAConv2d, group, hidden)
    conv = _lora_conv(hidden)
    x = _lora_input(conv, hidden)
    got = torch.as_tensor(report["output"])
    if group == "init":
        trainable = set(report["trainable"])
        if trainable != {"lora_A", "lora_B"}:
            extra = sorted(trainable - {"lora_A", "lora_B"})
            bug = (_("the wrapped conv is not frozen ({names} train)").format(names=_names(extra)) if extra
                   else _("lora_A and lora_B must be trainable"))
            raise AssertionError(_("trainable parameters are {names}; expected ['lora_A', 'lora_B'].").format(
                names=sorted(trainable)) + " " + likely_bug(bug))
        with torch.no_grad():
            want = conv(x)
        if not torch.allclose(got, want, atol=1e-5):
            bug = (_("lora_B is not zero at the start; initialise B to zeros so the wrapped conv starts unchanged")
                   if not report["B_zero"] else _("the output must equal the frozen conv's output at the start"))
            raise AssertionError(_("at initialisation LoRAConv2d(conv)(x) differs from conv(x) by up to "
                                   "{diff:.3g}.").format(diff=(got - want).abs().max().item()) + " " + likely_bug(bug))
        if report["A_zero"]:
            raise AssertionError(_("lora_A and lora_B are both zero, so neither ever gets a gradient.") + " "
                                 + likely_bug(_("initialise lora_A randomly (e.g. small normal values) and only "
                                                "lora_B at zero")))
        return
    A, B = _lora_weights(conv, hidden)
    with torch.no_grad():
        delta = (B @ A).reshape(conv.weight.shape)
        geometry = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
        want = F.conv2d(x, conv.weight + _ALPHA / _RANK * delta, conv.bias, **geometry)
        unscaled = F.conv2d(x, conv.weight + delta, conv.bias, **geometry)
    if not torch.allclose(got, want, atol=1e-4):
        bug = (_("the update is not scaled by alpha / rank") if torch.allclose(got, unscaled, atol=1e-4)
               else _("the output must be conv2d with weight W + (alpha / rank) * (lora_B @ lora_A).reshape(W.shape)"))
        diff = (got - want).abs().max().item()
        raise AssertionError(_("with random lora_A, lora_B the output differs from the expected by up to {diff:.3g} "
                               "(rank={rank}, alpha={alpha:g}).").format(diff=diff, rank=_RANK, alpha=_ALPHA)
                             + " " + likely_bug(bug))
    a_grad, b_grad, w_grad = report["grads"]
    if not a_grad or not b_grad or w_grad:
        raise AssertionError(_("after backward, lora_A.grad and lora_B.grad must be set and conv.weight.grad None.")
                             + " " + likely_bug(_("the adapters are detached from the output, or the conv is not "
                                                  "frozen")))


@student_side
@single_threaded
def add_lora_report(add_lora, group="wrap", hidden=False):
    """Student side of `check_add_lora`: the convs, which are wrapped, and the outputs before and
    after ("wrap") or every parameter's requires_grad ("trainable")."""
    torch = torch_module()
    model = _backbone(hidden)
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = model(x).numpy()
    model = _returned_model(_call(add_lora, model, rank=4, alpha=4), model, "add_lora").eval()
    wrappers = {n: m for n, m in model.named_modules() if hasattr(m, "lora_A") and hasattr(m, "lora_B")}
    inner = {id(getattr(m, "conv", None)) for m in wrappers.values()}
    report = {"convs": convs, "wrappers": sorted(wrappers),
              "bare": [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and id(m) not in inner]}
    if group == "wrap":
        try:
            with torch.no_grad():
                report["after"] = model(x).numpy()
        except RuntimeError as err:
            raise AssertionError(_("after add_lora the model fails on a (2, 1, 28, 28) batch: {error}.").format(
                error=err) + " " + likely_bug(_("LoRAConv2d must keep the wrapped conv's stride/padding/"
                                                      "dilation"))) from None
        report["before"] = before
    else:
        report["params"] = [[n, bool(p.requires_grad)] for n, p in model.named_parameters()]
    return report


@checker
def check_add_lora(add_lora, group="wrap", hidden=False):
    """Check ``add_lora(model, rank=4, alpha=4)`` on a fresh Backbone.

    Args:
        group: "wrap" (every nn.Conv2d wrapped, the output unchanged at the start) or
            "trainable" (only the adapters' lora_A/lora_B and the head train).
    Raises:
        AssertionError naming the modules or parameters in the wrong state and the likely bug.
    """
    if group not in ("wrap", "trainable"):
        raise ValueError(f"check_add_lora: `group` must be 'wrap' or 'trainable'; got {group!r}")
    report = add_lora_report(add_lora, group, hidden)
    wrappers, bare, convs = report["wrappers"], report["bare"], report["convs"]
    if group == "wrap":
        if bare or len(wrappers) != len(convs):
            raise AssertionError(_("{wrapped} of the {total} convs are wrapped; still plain nn.Conv2d: "
                                   "{names}.").format(wrapped=len(wrappers), total=len(convs),
                                                      names=_names(bare) or _("none"))
                                 + " " + likely_bug(_("only direct children were replaced; recurse into submodules "
                                                      "(named_children) or walk named_modules()")))
        if not np.allclose(report["before"], report["after"], atol=1e-5):
            raise AssertionError(_("after add_lora the model's output changed.") + " " + likely_bug(
                _("the wrapped model must start equal to the original (lora_B zero, the conv's weights kept)")))
        return
    allowed = {f"{w}.{p}" if w else p for w in wrappers for p in ("lora_A", "lora_B")}
    allowed |= {n for n, _ in report["params"] if n.startswith("head.")}
    trainable = {n for n, grad in report["params"] if grad}
    if trainable != allowed:
        extra, missing = sorted(trainable - allowed), sorted(allowed - trainable)
        if missing and all(n.startswith("head.") for n in missing):
            bug = _("the head is frozen: the new head trains together with the adapters")
        elif extra:
            bug = _("freeze every original parameter (convs, BatchNorm); only lora_A, lora_B and the head train")
        else:
            bug = _("every adapter's lora_A and lora_B must train")
        raise AssertionError(_("wrong trainable parameters: extra {extra}; frozen but should train {missing}.").format(
            extra=_names(extra) or _("none"), missing=_names(missing) or _("none")) + " " + likely_bug(bug))
