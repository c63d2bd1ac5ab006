"""Checkers for assignment 08 (train a CNN), graded by training the student's model.

Students write ``build_model()`` (an nn.Module mapping (N, 1, 28, 28) images to (N, 10) logits)
and ``train_model(model, train_set)``. `run_training` builds and trains once per pair of
functions (seeded, timed by process CPU time: every thread of the process counts), evaluates on
the 1,000 test digits of `conv_course.data.mnist_subset`, and caches the result so several test
cells share one training run. Targets: ``TARGET_ACCURACY`` within ``CPU_BUDGET_S`` CPU seconds.
Training runs with one torch thread: on a busy machine, idle threads spinning in OpenMP would
otherwise multiply the CPU time measured by ten. Assignment 09's checkers are in `finetuning`.
"""

import time

from ._torch import one_thread, seed_all, single_threaded, torch_module

__all__ = ["TARGET_ACCURACY", "CPU_BUDGET_S", "run_training", "check_cnn_architecture", "check_training"]

TARGET_ACCURACY = 0.97   # on the 1,000 test digits of mnist_subset(); the solution reaches 0.972-0.976 (seeds 0-2)
MIN_ACCURACY = 0.90      # the "it learns" part
CPU_BUDGET_S = 30.0      # process CPU seconds for train_model (all threads); the solution needs about 0.7
_cache = {}


def _build(build_model):
    try:
        model = build_model()
    except NotImplementedError:
        raise AssertionError("`build_model` is not implemented yet: replace `raise NotImplementedError()` "
                             "with your code") from None
    if not isinstance(model, torch_module().nn.Module):
        raise AssertionError(f"`build_model()` must return an nn.Module; got {type(model).__name__}")
    return model


def _linear_diagnosis(model, x):
    """Run `model(x)`; on a shape error name the nn.Linear whose input size is wrong."""
    torch = torch_module()
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, inp, name=name: seen.append((name, m, inp[0].shape)))
             for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    try:
        with torch.no_grad():
            return model(x)
    except RuntimeError as err:
        for name, layer, shape in seen:
            if shape[-1] != layer.in_features:
                raise AssertionError(
                    f"`build_model()`: layer `{name}` = nn.Linear({layer.in_features}, {layer.out_features}) "
                    f"receives {shape[-1]} features per image (input shape {tuple(shape)}). Likely bug: wrong "
                    f"flatten size; compute it from the last feature map, C x H_out x W_out, with "
                    f"H_out = (H + 2*P - K) // S + 1 after each conv and pool") from None
        raise AssertionError(f"`build_model()`'s model fails on a (2, 1, 28, 28) batch: "
                             f"{type(err).__name__}: {err}") from None
    finally:
        for h in hooks:
            h.remove()


@single_threaded
def check_cnn_architecture(build_model, group="shape", hidden=False, max_params=500_000):
    """Check that ``build_model()`` is a CNN mapping (N, 1, 28, 28) to (N, 10) logits.

    Args:
        build_model: the student's function returning an nn.Module.
        group: "shape" (the only group).
        hidden: also try batch sizes 1 and 5 and images of other digits' value range.
        max_params: the parameter budget.
    Raises:
        AssertionError naming the problem: not a module, no conv layer, wrong flatten size,
        wrong number of classes, softmax at the end, too many parameters.
    """
    torch = torch_module()
    if group != "shape":
        raise ValueError(f"check_cnn_architecture: `group` must be 'shape'; got {group!r}")
    seed_all(0)
    model = _build(build_model).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise AssertionError("`build_model()` has no nn.Conv2d layer: this assignment asks for a CNN")
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > max_params:
        raise AssertionError(f"`build_model()` has {n_params:,} parameters; keep it under {max_params:,} "
                             "so it trains within the CPU budget")
    gen = torch.Generator().manual_seed(1 if hidden else 0)
    for batch in ((1, 5) if hidden else (2,)):
        x = torch.rand(batch, 1, 28, 28, generator=gen)
        out = _linear_diagnosis(model, x)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch, 10):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            hint = (f" Likely bug: {shape[1]} classes; there are 10 digits (0-9), so the last layer has 10 outputs"
                    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == batch else "")
            raise AssertionError(f"`build_model()`'s model maps a ({batch}, 1, 28, 28) batch to {shape}; "
                                 f"expected ({batch}, 10).{hint}")
        if bool((out >= 0).all()) and torch.allclose(out.sum(1), torch.ones(batch), atol=1e-4):
            raise AssertionError("`build_model()`'s outputs are probabilities (non-negative, each row sums to 1). "
                                 "Likely bug: the model ends in softmax; return logits, since "
                                 "nn.CrossEntropyLoss applies log-softmax itself")


def run_training(build_model, train_model, seed=0):
    """Build, train (timed) and evaluate once; cached per (build_model, train_model, seed).

    Returns:
        dict with "accuracy" (test accuracy in [0, 1]), "cpu_seconds" (process CPU time of
        train_model, all threads), "wall_seconds", "model".
    """
    key = (id(build_model), id(train_model), seed)
    hit = _cache.get(key)
    if hit is not None and hit[0] is build_model and hit[1] is train_model:
        return hit[2]
    from conv_course import data, train

    train_set, test_set = data.mnist_subset()
    seed_all(seed)
    model = _build(build_model)
    torch = torch_module()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        with one_thread():
            trained = train_model(model, train_set)
    except NotImplementedError:
        raise AssertionError("`train_model` is not implemented yet: replace `raise NotImplementedError()` "
                             "with your code") from None
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    model = trained if isinstance(trained, torch.nn.Module) else model
    result = {"accuracy": train.evaluate(model, test_set, device="cpu"), "cpu_seconds": cpu,
              "wall_seconds": wall, "model": model}
    _cache[key] = (build_model, train_model, result)
    return result


def check_training(build_model, train_model, group="learns", hidden=False):
    """Check the trained model: "learns" (>= MIN_ACCURACY), "target" (>= TARGET_ACCURACY), "budget".

    Hidden: "target" also trains with seed 1, so a lucky seed is not enough.
    Raises:
        AssertionError with the accuracy or CPU time measured and the target.
    """
    goals = {"learns": MIN_ACCURACY, "target": TARGET_ACCURACY}
    if group not in ("learns", "target", "budget"):
        raise ValueError(f"check_training: `group` must be 'learns', 'target' or 'budget'; got {group!r}")
    for seed in ((0, 1) if hidden and group == "target" else (0,)):
        r = run_training(build_model, train_model, seed=seed)
        if group == "budget" and r["cpu_seconds"] > CPU_BUDGET_S:
            raise AssertionError(f"`train_model` used {r['cpu_seconds']:.1f} CPU seconds (all threads); the budget "
                                 f"is {CPU_BUDGET_S:.0f}. Train fewer epochs or use a smaller model")
        if group in goals and r["accuracy"] < goals[group]:
            hint = " Likely bug: the model does not learn; check the loss, the optimizer step and zero_grad" \
                if r["accuracy"] < 0.2 else ""
            raise AssertionError(f"test accuracy {r['accuracy']:.1%} with seed {seed}; the target is at least "
                                 f"{goals[group]:.0%} on the 1,000 test digits.{hint}")
