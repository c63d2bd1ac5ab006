"""NetworkExplorer, Python side: the exported layers, validation by name, the torch-backed output."""

import base64

import numpy as np
import pytest
import torch
from torch import nn

from conv_course import models
from conv_course.widgets import NetworkExplorer
from conv_course.widgets.network_explorer import SUPPORTED, default_digits, export_layers, layer_stack


@pytest.fixture(scope="module")
def lenet5():
    torch.manual_seed(0)
    return models.LeNet5().eval()


def _floats(b64):
    return np.frombuffer(base64.b64decode(b64), dtype="<f4")


def test_lenet5_opens_up_into_its_twelve_layers_in_forward_order(lenet5):
    stack = layer_stack(lenet5)
    assert [name for name, _ in stack] == [f"features.{i}" for i in range(6)] + [f"classifier.{i}" for i in range(6)]
    x = torch.rand(4, 1, 28, 28)
    y = x
    for _, m in stack:
        y = m(y)
    torch.testing.assert_close(y, lenet5(x), rtol=0, atol=0)       # the stack is LeNet5's forward


def test_exported_tensors_are_the_float32_parameters(lenet5):
    layers = export_layers(lenet5)
    conv, fc = layers[0], layers[-1]
    assert conv["kind"] == "Conv2d" and conv["padding"] == [2, 2, 2, 2] and conv["shape"] == [6, 28, 28]
    np.testing.assert_array_equal(_floats(conv["weight"]), lenet5.features[0].weight.detach().numpy().ravel())
    np.testing.assert_array_equal(_floats(fc["bias"]), lenet5.classifier[5].bias.detach().numpy())
    assert [layer["shape"] for layer in layers[5:8]] == [[16, 5, 5], [400], [120]]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_padding_is_exported_as_torch_pads_it():
    # kernel 4, dilation 1: torch pads d*(k-1) = 3 in total, 1 before and 2 after
    conv = nn.Conv2d(1, 2, 4, padding="same")
    layers = export_layers(nn.Sequential(conv, nn.Flatten(), nn.Linear(2 * 28 * 28, 3)))
    assert layers[0]["padding"] == [1, 1, 2, 2] and layers[0]["shape"] == [2, 28, 28]


def test_default_digits_are_three_real_test_digits_per_class(lenet5):
    w = NetworkExplorer(lenet5)
    assert [d["label"] for d in w.digits] == [c for c in range(10) for _ in range(3)]
    images, labels = default_digits()
    np.testing.assert_array_equal(w.image, images[0])               # digit 0 shown first, exactly k/255
    assert labels.tolist() == [d["label"] for d in w.digits] and w.classes == [str(c) for c in range(10)]


def test_logits_are_torch_on_the_drawing(lenet5):
    w = NetworkExplorer(lenet5, digit=4)
    want = lenet5(torch.from_numpy(w.image)[None, None])[0].detach()
    np.testing.assert_array_equal(w.logits, want.numpy())
    np.testing.assert_allclose(w.probabilities, torch.softmax(want, 0).numpy(), rtol=1e-6)
    assert abs(w.probabilities.sum() - 1) < 1e-6


def test_choosing_a_digit_shows_it_and_a_drawing_syncs_as_8_bit(lenet5):
    w = NetworkExplorer(lenet5, digit=-1)
    assert w.image.max() == 0
    w.digit = 7
    np.testing.assert_array_equal(w.image, default_digits()[0][7])
    drawing = np.zeros((28, 28))
    drawing[5:20, 14] = 0.5
    w.image = drawing
    assert w.image[10, 14] == np.float32(128 / 255)                 # quantised as the view holds it
    state = w.get_state()
    assert len(base64.b64decode(state["image"])) == 28 * 28


def test_page_weight_of_lenet5_stays_under_a_megabyte(lenet5):
    import json

    state = NetworkExplorer(lenet5).get_state()
    size = len(json.dumps(state).encode())
    assert size < 1_000_000, size


def test_unsupported_layers_are_named():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Dropout(0.2), nn.Sequential(nn.Tanh()), nn.Flatten(),
                          nn.Linear(4 * 26 * 26, 10))
    with pytest.raises(ValueError, match=r"`model` holds layers .*: 1 \(Dropout\); 2\.0 \(Tanh\)") as err:
        NetworkExplorer(model)
    assert all(kind in str(err.value) for kind in SUPPORTED)


@pytest.mark.parametrize("layer, why", [
    (nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), "padding_mode='reflect'"),
    (nn.MaxPool2d(2, return_indices=True), "return_indices=True"),
    (nn.BatchNorm2d(1, track_running_stats=False), "track_running_stats=False"),
    (nn.BatchNorm2d(1).train(), "in training mode; call model.eval"),
    (nn.Flatten(0), "start_dim=0"),
])
def test_unsupported_settings_of_supported_layers_are_named(layer, why):
    with pytest.raises(ValueError, match=f"`model` holds layers .*0 \\({type(layer).__name__}, {why}"):
        layer_stack(nn.Sequential(layer))


def test_a_module_with_unknown_forward_is_rejected():
    with pytest.raises(ValueError, match="`model` must be an nn.Sequential .* got ResNetDigits"):
        NetworkExplorer(models.ResNetDigits())
    with pytest.raises(ValueError, match="`model` must be a torch nn.Module"):
        NetworkExplorer("lenet5")


@pytest.mark.parametrize("model, match", [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)),
     r"cannot take a \(1, 1, 28, 28\) drawing: layer 0 \(Conv2d\) fails on its input of shape \(1, 1, 28, 28\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(100, 10)),
     r"layer 2 \(Linear\) fails on its input of shape \(1, 2704\)"),
    (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(26, 10)), r"layer 1 \(Linear\) gets feature maps .* nn.Flatten"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.MaxPool2d(2)), r"layer 2 \(MaxPool2d\) gets a flat vector"),
    (nn.Sequential(nn.Conv2d(1, 4, 3)), r"must end in logits of shape \(1, num_classes >= 2\); .* \(1, 4, 26, 26\)"),
])
def test_shapes_that_do_not_fit_a_28x28_drawing_are_explained(model, match):
    with pytest.raises(ValueError, match=f"NetworkExplorer: `model` .*{match}"):
        NetworkExplorer(model)


def test_nan_weight_is_named(lenet5):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 10))
    with torch.no_grad():
        model[2].weight[3, 5] = float("nan")
    with pytest.raises(ValueError, match=r"`model` parameter 2\.weight must be finite; got nan at index \(3, 5\)"):
        NetworkExplorer(model)
    bn = nn.BatchNorm2d(2).eval()
    bn.running_var[1] = float("inf")
    with pytest.raises(ValueError, match=r"parameter 1\.running_var must be finite"):
        export_layers(nn.Sequential(nn.Conv2d(1, 2, 3), bn, nn.Flatten(), nn.Linear(2 * 26 * 26, 10)))


@pytest.mark.parametrize("value, match", [
    (np.zeros((28, 27)), r"`image` must be a 28x28 image .* got shape \(28, 27\)"),
    (np.full((28, 28), np.nan), "`image` must be finite"),
    (np.full((28, 28), 255.0), r"`image` values must lie in \[0, 1\]"),
    (np.array([["a"] * 28] * 28), "`image` must hold real numbers"),
])
def test_bad_drawing_is_named(lenet5, value, match):
    w = NetworkExplorer(lenet5)
    with pytest.raises(ValueError, match=match):
        w.image = value


def test_bad_digits_classes_and_digit_are_named(lenet5):
    with pytest.raises(ValueError, match=r"`digits` images must have shape \(N, 28, 28\).* got \(2, 8, 8\)"):
        NetworkExplorer(lenet5, digits=(np.zeros((2, 8, 8)), np.zeros(2)))
    with pytest.raises(ValueError, match=r"`digits` labels must have shape \(2,\)"):
        NetworkExplorer(lenet5, digits=(np.zeros((2, 28, 28)), np.zeros(3)))
    with pytest.raises(ValueError, match="`digits` must be finite"):
        NetworkExplorer(lenet5, digits=(np.full((1, 28, 28), np.nan), np.zeros(1)))
    with pytest.raises(ValueError, match="`classes` must name the model's 10 classes; got 2"):
        NetworkExplorer(lenet5, classes=["cat", "dog"])
    with pytest.raises(ValueError, match="`digit` must be -1 .* below 30; got 30"):
        NetworkExplorer(lenet5, digit=30)
