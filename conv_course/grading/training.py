"""Checkers for assignment 08 (train a CNN), graded by training the student's model.

Students write ``build_model()`` (an nn.Module mapping (N, 1, 28, 28) images to (N, 10) logits)
and ``train_model(model, train_set)``. `run_training` builds and trains once per pair of
functions (seeded, timed by process CPU time: every thread of the process counts), evaluates on
the 1,000 test digits of `conv_course.data.mnist_subset`, and caches the result so several test
cells share one training run. Targets: ``TARGET_ACCURACY`` within ``CPU_BUDGET_S`` CPU seconds.
Training runs with one torch thread: on a busy machine, idle threads spinning in OpenMP would
otherwise inflate the CPU time measured. Assignment 09's checkers are in `finetuning`.

Training is STOPPED once it has used ``CPU_BUDGET_S`` CPU seconds (or ``WALL_LIMIT_S`` seconds
of wall-clock time on a busy machine), and the model is evaluated as trained until then: an
over-budget student loses the budget point only, and a graded cell (at most one training run)
ends well within nbgrader's per-cell timeout, ``CELL_TIMEOUT_S``.
"""

import ctypes
import threading
import time

from ._core import checker, likely_bug, not_implemented
from ._i18n import _
from ._student_side import student_side
from ._torch import one_thread, seed_all, single_threaded, torch_module

__all__ = ["TARGET_ACCURACY", "CPU_BUDGET_S", "WALL_LIMIT_S", "CELL_TIMEOUT_S", "run_training",
           "architecture_report", "check_cnn_architecture", "check_training"]

TARGET_ACCURACY = 0.97   # on the 1,000 test digits of mnist_subset()
MIN_ACCURACY = 0.90      # the "it learns" part
CPU_BUDGET_S = 15.0      # process CPU seconds for train_model (all threads)
WALL_LIMIT_S = 20.0      # training also stops after this many wall-clock seconds (a busy grading machine)
CELL_TIMEOUT_S = 30      # nbgrader_config.py's Execute.timeout: a cell trains once, so it must fit in this
_cache = {}


class _TimeUp(BaseException):
    """Stops `train_model` when its time is up (a BaseException: `except Exception` cannot swallow it)."""


def _raise_in_thread(thread_id, exc_type):
    """Make `thread_id` raise `exc_type` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


class _Watchdog:
    """Stop the training running in this thread once it has used `cpu_s` CPU seconds (process time,
    all threads) or `wall_s` wall-clock seconds.

    Any nn.Module's forward call checks the clocks (a global forward pre-hook), so training stops
    between two batches; code that calls no module is stopped by a helper thread that raises
    `_TimeUp` in this thread `grace_s` later, and again every half second. `stopped` then says
    why ("cpu" or "wall"); `cpu_seconds` and `wall_seconds` say how long training ran.
    """

    def __init__(self, cpu_s, wall_s, grace_s=1.0):
        self.cpu_s, self.wall_s, self.grace_s = cpu_s, wall_s, grace_s
        self.stopped, self.cpu_seconds, self.wall_seconds, self._raised = None, 0.0, 0.0, False
        self._done, self._lock = threading.Event(), threading.Lock()

    def _over(self, grace=0.0):
        if time.process_time() - self._cpu0 > self.cpu_s + grace:
            return "cpu"
        if time.perf_counter() - self._wall0 > self.wall_s + grace:
            return "wall"
        return None

    def _hook(self, module, args):
        why = None if self._done.is_set() else self._over()
        if why:
            self.stopped = self.stopped or why
            raise _TimeUp(why)

    def _backstop(self, thread_id):
        while not self._done.wait(0.1):
            why = self._over(self.grace_s)
            if why:
                with self._lock:
                    if self._done.is_set():
                        return
                    self.stopped = self.stopped or why
                    self._raised = True
                    _raise_in_thread(thread_id, _TimeUp)
                self._done.wait(0.5)

    def __enter__(self):
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._handle = torch_module().nn.modules.module.register_module_forward_pre_hook(self._hook)
        self._thread = threading.Thread(target=self._backstop, args=(threading.get_ident(),), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.cpu_seconds = time.process_time() - self._cpu0
        self.wall_seconds = time.perf_counter() - self._wall0
        with self._lock:  # from here on the helper raises nothing more
            self._done.set()
        if self._raised:  # one it raised may still be pending: let it arrive here, not in the caller
            try:
                deadline = time.perf_counter() + 0.05
                while time.perf_counter() < deadline:
                    pass
            except _TimeUp:
                pass
        # never PyThreadState_SetAsyncExc(thread, NULL) to cancel one instead: on CPython 3.11 it
        # leaves the eval breaker set, and the next call made under sys.settrace never returns
        self._handle.remove()
        self._thread.join()
        return exc_type is not None and issubclass(exc_type, _TimeUp)


def _build(build_model):
    try:
        model = build_model()
    except NotImplementedError:
        raise not_implemented("build_model") from None
    if not isinstance(model, torch_module().nn.Module):
        raise AssertionError(_("`build_model()` must return an nn.Module; got {type}").format(
            type=type(model).__name__))
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
                    _("`build_model()`: layer `{name}` = nn.Linear({in_features}, {out_features}) receives "
                      "{features} features per image (input shape {shape}).").format(
                        name=name, in_features=layer.in_features, out_features=layer.out_features,
                        features=shape[-1], shape=tuple(shape))
                    + " " + likely_bug(_("wrong flatten size; compute it from the last feature map, C x H_out x "
                                         "W_out, with H_out = (H + 2*P - K) // S + 1 after each conv and pool"))
                ) from None
        raise AssertionError(_("`build_model()`'s model fails on a (2, 1, 28, 28) batch: {error_type}: {error}").format(
            error_type=type(err).__name__, error=err)) from None
    finally:
        for h in hooks:
            h.remove()


@student_side
@single_threaded
def architecture_report(build_model, hidden=False):
    """Student side of `check_cnn_architecture`: the number of conv layers, what the model maps a
    batch to ({"batch", "shape" or "type", "probabilities"}) and the parameter count."""
    torch = torch_module()
    seed_all(0)
    model = _build(build_model).eval()
    report = {"convs": sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()), "outputs": []}
    if not report["convs"]:
        return report
    gen = torch.Generator().manual_seed(1 if hidden else 0)
    for batch in ((1, 5) if hidden else (2,)):
        out = _linear_diagnosis(model, torch.rand(batch, 1, 28, 28, generator=gen))
        if not isinstance(out, torch.Tensor):
            report["outputs"].append({"batch": batch, "type": type(out).__name__})
            break
        probabilities = bool((out >= 0).all()) and out.ndim == 2 and bool(
            torch.allclose(out.sum(1), torch.ones(out.shape[0]), atol=1e-4))
        report["outputs"].append({"batch": batch, "shape": list(out.shape), "probabilities": probabilities})
    is_lazy = torch.nn.parameter.is_lazy
    report["n_params"] = sum(p.numel() for p in model.parameters() if not is_lazy(p))
    return report


@checker
def check_cnn_architecture(build_model, group="shape", hidden=False, max_params=500_000):
    """Check that ``build_model()`` is a CNN mapping (N, 1, 28, 28) to (N, 10) logits.

    Args:
        build_model: the student's function returning an nn.Module.
        group: "shape" (the only group).
        hidden: also try batch sizes 1 and 5 and images of other digits' value range.
        max_params: the parameter budget.
    Raises:
        AssertionError naming the problem: not a module, no conv layer, wrong flatten size,
        wrong number of classes, softmax at the end, too many parameters. Lazy modules
        (nn.LazyLinear, nn.LazyConv2d) are fine: parameters are counted after a first batch
        has given them their shapes.
    """
    if group != "shape":
        raise ValueError(f"check_cnn_architecture: `group` must be 'shape'; got {group!r}")
    report = architecture_report(build_model, hidden)
    if not report["convs"]:
        raise AssertionError(_("`build_model()` has no nn.Conv2d layer: this assignment asks for a CNN"))
    for out in report["outputs"]:
        batch = out["batch"]
        shape = tuple(out["shape"]) if "shape" in out else out["type"]
        if shape != (batch, 10):
            hint = (" " + likely_bug(_("{classes} classes; there are 10 digits (0-9), so the last layer has 10 "
                                       "outputs").format(classes=shape[1]))
                    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == batch else "")
            raise AssertionError(_("`build_model()`'s model maps a ({batch}, 1, 28, 28) batch to {shape}; "
                                   "expected ({batch}, 10).").format(batch=batch, shape=shape) + hint)
        if out["probabilities"]:
            raise AssertionError(_("`build_model()`'s outputs are probabilities (non-negative, each row sums to 1).")
                                 + " " + likely_bug(_("the model ends in softmax; return logits, since "
                                                      "nn.CrossEntropyLoss applies log-softmax itself")))
    if report["n_params"] > max_params:
        raise AssertionError(_("`build_model()` has {n_params:,} parameters; keep it under {max_params:,} so it "
                               "trains within the CPU budget").format(n_params=report["n_params"],
                                                                      max_params=max_params))


def _can_run_a_batch(model, batch=2):
    """Run a (batch, 1, 28, 28) batch through `model` in eval mode, without gradients (which also
    gives lazy modules their shapes, before train_model builds its optimizer); else say where
    the reason is explained."""
    torch = torch_module()
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(batch, 1, 28, 28))
    except Exception:
        raise AssertionError(_("`build_model()`'s model cannot run a ({batch}, 1, 28, 28) batch, so it cannot "
                               "be trained: see test_architecture's message").format(batch=batch)) from None
    finally:
        model.train(was_training)


@checker
@student_side
def run_training(build_model, train_model, seed=0):
    """Build, train (timed, stopped at the time limits) and evaluate once; cached per
    (build_model, train_model, seed). The student side of `check_training`.

    Returns:
        dict with "accuracy" (test accuracy in [0, 1]), "cpu_seconds" (process CPU time of
        train_model, all threads), "wall_seconds", "stopped" (None, or "cpu" / "wall": training
        was stopped at ``CPU_BUDGET_S`` CPU seconds / ``WALL_LIMIT_S`` seconds).
    """
    key = (id(build_model), id(train_model), seed)
    hit = _cache.get(key)
    if hit is not None and hit[0] is build_model and hit[1] is train_model:
        return hit[2]
    from conv_course import data, train

    train_set, test_set = data.mnist_subset()
    seed_all(seed)
    model = _build(build_model)
    _can_run_a_batch(model)
    trained = None
    try:
        with one_thread(), _Watchdog(CPU_BUDGET_S, WALL_LIMIT_S) as clock:
            trained = train_model(model, train_set)
    except NotImplementedError:
        raise not_implemented("train_model") from None
    except Exception as err:
        raise AssertionError(_("`train_model` raised {error_type}: {error}").format(
            error_type=type(err).__name__, error=err)) from err
    if clock.stopped:
        print(_("train_model was stopped after {cpu:.1f} CPU seconds ({wall:.1f} s): {limit}; the model is "
                "evaluated as trained until then").format(cpu=clock.cpu_seconds, wall=clock.wall_seconds,
                                                          limit=_limit(clock.stopped)))
    model = trained if isinstance(trained, torch_module().nn.Module) else model
    try:
        accuracy = train.evaluate(model, test_set, device="cpu")
    except Exception as err:
        raise AssertionError(_("the trained model fails on the test images: {error_type}: {error}").format(
            error_type=type(err).__name__, error=err)) from err
    result = {"accuracy": float(accuracy), "cpu_seconds": clock.cpu_seconds, "wall_seconds": clock.wall_seconds,
              "stopped": clock.stopped}
    _cache[key] = (build_model, train_model, result)
    return result


def _limit(stopped):
    if stopped == "cpu":
        return _("the budget is {budget:.0f} CPU seconds").format(budget=CPU_BUDGET_S)
    return _("training may take at most {wall:.0f} s of wall-clock time, so that a graded cell ends within its "
             "{timeout} s").format(wall=WALL_LIMIT_S, timeout=CELL_TIMEOUT_S)


@checker
def check_training(build_model, train_model, group="learns", hidden=False):
    """Check the trained model: "learns" (>= MIN_ACCURACY), "target" (>= TARGET_ACCURACY), "budget".

    Training stopped at a time limit fails "budget" only; the accuracy groups judge the model
    as trained until then. Hidden: "target" also trains with seed 1, so a lucky seed is not enough.
    Raises:
        AssertionError with the accuracy or CPU time measured and the target.
    """
    goals = {"learns": MIN_ACCURACY, "target": TARGET_ACCURACY}
    if group not in ("learns", "target", "budget"):
        raise ValueError(f"check_training: `group` must be 'learns', 'target' or 'budget'; got {group!r}")
    for seed in ((0, 1) if hidden and group == "target" else (0,)):
        r = run_training(build_model, train_model, seed=seed)
        if group == "budget" and r["stopped"] == "cpu":
            raise AssertionError(_("training used more than {budget:.0f} CPU seconds (all threads); it was stopped "
                                   "there (seed {seed}), and the accuracy tests judge the model as trained within "
                                   "the budget. Train fewer epochs or use a smaller model").format(
                                       budget=CPU_BUDGET_S, seed=seed))
        if group == "budget" and r["stopped"] == "wall":
            raise AssertionError(_("training took more than {wall:.0f} s of wall-clock time and was stopped there "
                                   "(seed {seed}), after {cpu:.1f} CPU seconds: a graded cell must end within "
                                   "{timeout} s. Train fewer epochs or use a smaller model").format(
                                       wall=WALL_LIMIT_S, seed=seed, cpu=r["cpu_seconds"], timeout=CELL_TIMEOUT_S))
        if group == "budget" and r["cpu_seconds"] > CPU_BUDGET_S:
            raise AssertionError(_("`train_model` used {cpu:.1f} CPU seconds (all threads); the budget is "
                                   "{budget:.0f}. Train fewer epochs or use a smaller model").format(
                                       cpu=r["cpu_seconds"], budget=CPU_BUDGET_S))
        if group in goals and r["accuracy"] < goals[group]:
            hint = (" " + likely_bug(_("the model does not learn; check the loss, the optimizer step and zero_grad"))
                    if r["accuracy"] < 0.2 else "")
            stopped = (" " + _("(training was stopped at its time limit: see test_budget)")) if r["stopped"] else ""
            raise AssertionError(_("test accuracy {accuracy:.1%} with seed {seed}{stopped}; the target is at least "
                                   "{target:.0%} on the 1,000 test digits.").format(
                                       accuracy=r["accuracy"], seed=seed, stopped=stopped, target=goals[group])
                                 + hint)
