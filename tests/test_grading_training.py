"""Checkers of assignment 08: a correct CNN passes, each known bug is named."""

import pytest
from torch import nn

from conv_course.grading import training
from conv_course.grading.training import check_cnn_architecture, check_training


def small_cnn(flatten=16 * 7 * 7, classes=10, softmax=False):
    layers = [nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(flatten, classes)]
    return nn.Sequential(*layers, *([nn.Softmax(dim=1)] if softmax else []))


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
