"""Checkers of assignment 08: a correct CNN passes, each known bug is named, training stops at the budget."""

import json
import pathlib
import re
import time

import pytest
import torch
from torch import nn

from conv_course.grading import training
from conv_course.grading.training import check_cnn_architecture, check_training


def small_cnn(flatten=16 * 7 * 7, classes=10, softmax=False):
    layers = [nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(flatten, classes)]
    return nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax else []))


def lazy_cnn():
    return nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.LazyLinear(10))


def test_a_small_cnn_has_the_right_architecture():
    check_cnn_architecture(small_cnn)
    check_cnn_architecture(small_cnn, hidden=True)


@pytest.mark.parametrize("build, message", [
    (lambda: small_cnn(flatten=64 * 6 * 6), r"nn.Linear\(2304, 10\) receives 784 features.*wrong flatten size"),
    (lambda: small_cnn(classes=11), "11 classes; there are 10 digits"),
    (lambda: small_cnn(softmax=True), "ends in softmax"),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), "no nn.Conv2d"),
    (lambda: "a model", "must return an nn.Module"),
])
def test_architecture_bugs_are_named(build, message):
    with pytest.raises(AssertionError, match=message):
        check_cnn_architecture(build)


def test_training_groups_report_accuracy_and_budget(monkeypatch):
    calls = []

    def build():
        return small_cnn()

    def untrained(model, train_set):
        calls.append(len(train_set))
        return model

    with pytest.raises(AssertionError, match=r"test accuracy \d+\.\d% with seed 0; the target is at least 90%"):
        check_training(build, untrained, group="learns")
    check_training(build, untrained, group="budget")     # doing nothing is fast
    with pytest.raises(AssertionError, match="at least 97%"):
        check_training(build, untrained, group="target")
    assert calls == [4000], "one training run shared by the three checks"
    monkeypatch.setattr(training, "CPU_BUDGET_S", -1.0)
    with pytest.raises(AssertionError, match="CPU seconds"):
        check_training(build, untrained, group="budget")


@pytest.mark.slow
def test_a_real_training_run_reaches_the_target():
    from conv_course import train

    def fit(model, train_set):
        train.fit(model, train_set, epochs=3, progress=False)
        return model

    result = training.run_training(lambda: small_cnn(), fit)
    assert result["accuracy"] >= 0.9 and result["cpu_seconds"] > 0


# ------------------------------------------------------------------ lazy modules, models that cannot run
def test_a_model_with_lazy_modules_passes_the_architecture_check():
    check_cnn_architecture(lazy_cnn)
    check_cnn_architecture(lazy_cnn, hidden=True)
    n_params = (1 * 8 * 3 * 3 + 8) + (8 * 16 * 3 * 3 + 16) + (16 * 7 * 7 * 10 + 10)   # counted once shapes are known
    with pytest.raises(AssertionError, match=f"has {n_params:,} parameters; keep it under 1,000"):
        check_cnn_architecture(lazy_cnn, max_params=1000)


def test_a_model_with_lazy_modules_can_be_trained():
    def one_epoch(model, train_set):
        assert not any(nn.parameter.is_lazy(p) for p in model.parameters())   # shapes known before the optimizer
        from conv_course import train

        train.fit(model, train_set, epochs=1, progress=False)
        return model

    assert training.run_training(lazy_cnn, one_epoch)["accuracy"] > 0.5


def test_training_checks_of_a_model_that_cannot_run_point_at_the_architecture_test():
    def build():
        return small_cnn(flatten=64 * 6 * 6)

    def never_called(model, train_set):
        raise RuntimeError("train_model should not run")

    for group in ("learns", "target", "budget"):
        with pytest.raises(AssertionError) as err:
            check_training(build, never_called, group=group)
        assert str(err.value) == ("`build_model()`'s model cannot run a (2, 1, 28, 28) batch, so it cannot be "
                                  "trained: see test_architecture's message")


def test_an_error_in_train_model_is_named():
    def broken(model, train_set):
        return model(train_set.images[:5].view(5, -1))

    with pytest.raises(AssertionError, match="`train_model` raised RuntimeError"):
        check_training(small_cnn, broken, group="learns")


# ------------------------------------------------------------------ training stops at the budget
def solution_model():
    return nn.Sequential(nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def no_hooks_left():
    from torch.nn.modules import module

    return not module._global_forward_pre_hooks


def test_over_budget_training_is_stopped_and_fails_the_budget_only(monkeypatch):
    from conv_course import train

    monkeypatch.setattr(training, "CPU_BUDGET_S", 4.0)
    monkeypatch.setattr(training, "WALL_LIMIT_S", 600.0)   # a busy test machine must not decide this

    def train_then_waste(model, train_set):
        train.fit(model, train_set, epochs=2, lr=1e-2, shift=0, progress=False)
        while True:   # evaluating again and again: far over the budget
            train.evaluate(model, train_set)

    r = training.run_training(solution_model, train_then_waste)
    assert r["stopped"] == "cpu" and 4.0 < r["cpu_seconds"] < 5.0 and r["accuracy"] > 0.95
    check_training(solution_model, train_then_waste, group="learns")
    with pytest.raises(AssertionError, match=r"^training used more than 4 CPU seconds \(all threads\); "
                                             r"it was stopped there \(seed 0\)"):
        check_training(solution_model, train_then_waste, group="budget")
    assert no_hooks_left()
    assert sum(range(10**5)) > 0   # no stop is still pending in this thread


def test_accuracy_is_judged_on_the_model_trained_within_the_budget(monkeypatch):
    from conv_course import train

    monkeypatch.setattr(training, "CPU_BUDGET_S", 0.3)
    monkeypatch.setattr(training, "WALL_LIMIT_S", 600.0)
    steps = []

    def very_long_fit(model, train_set):
        model.register_forward_pre_hook(lambda m, a: steps.append(1))
        train.fit(model, train_set, epochs=500, progress=False)
        return model

    r = training.run_training(small_cnn, very_long_fit)
    assert r["stopped"] == "cpu" and 0 < len(steps) < 500 * 4000 // 64
    with pytest.raises(AssertionError, match=r"with seed 0 \(training was stopped at its time limit: see test_budget\)"):
        check_training(small_cnn, very_long_fit, group="target")


def test_code_that_calls_no_module_is_stopped_too(monkeypatch):
    monkeypatch.setattr(training, "CPU_BUDGET_S", 0.2)
    monkeypatch.setattr(training, "WALL_LIMIT_S", 600.0)

    def spin(model, train_set):
        while True:
            try:
                while True:
                    pass
            except Exception:   # cannot swallow the stop
                pass

    t0 = time.perf_counter()
    r = training.run_training(small_cnn, spin)
    assert r["stopped"] == "cpu" and time.perf_counter() - t0 < 30
    assert no_hooks_left()


def test_the_wall_clock_limit_stops_training_on_a_busy_machine(monkeypatch):
    monkeypatch.setattr(training, "WALL_LIMIT_S", 1.0)

    def sleepy(model, train_set):
        for _ in range(2000):
            time.sleep(0.01)   # no CPU used: only the wall clock runs out
        return model

    r = training.run_training(small_cnn, sleepy)
    assert r["stopped"] == "wall" and r["wall_seconds"] < 10 and r["cpu_seconds"] < 1
    with pytest.raises(AssertionError, match=r"^training took more than 1 s of wall-clock time and was stopped there"):
        check_training(small_cnn, sleepy, group="budget")


# ------------------------------------------------------------------ the limits fit the notebook and nbgrader
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_a_training_run_fits_in_the_per_cell_timeout_of_nbgrader_config():
    timeout = re.search(r"^c\.Execute\.timeout = (\d+)$", (ROOT / "nbgrader_config.py").read_text(), re.M)
    assert int(timeout.group(1)) == training.CELL_TIMEOUT_S
    # one graded cell trains at most once: training, then building, a dry run and evaluation (< 2 s)
    assert training.CPU_BUDGET_S < training.WALL_LIMIT_S <= training.CELL_TIMEOUT_S - 8


def test_the_notebook_states_the_limits_the_grader_applies():
    nb = json.loads((ROOT / "solutions" / "08-train-a-cnn" / "08-train-a-cnn.ipynb").read_text())
    intro = "".join(nb["cells"][0]["source"])
    assert f"at most **{training.CPU_BUDGET_S:.0f} CPU seconds**" in intro
    assert f"{training.WALL_LIMIT_S:.0f} s of wall-clock time" in intro
