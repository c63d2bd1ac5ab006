"""conv_course.train: fit/evaluate behaviour on tiny data."""

import pytest
import torch
from torch import nn
from torch.utils.data import Subset, TensorDataset

from conv_course import data, models, train


def _bars(n=64, seed=0):
    """8x8 images of one bright row (class 0) or one bright column (class 1): learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 8, 8)
    y = torch.arange(n) % 2
    pos = torch.randint(1, 7, (n,), generator=g)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, pos[i], :] = 1
        else:
            x[i, 0, :, pos[i]] = 1
    return TensorDataset(x, y)


def _tiny_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(16, 2))


def test_fit_returns_one_history_entry_per_epoch_and_learns():
    torch.manual_seed(0)
    net = _tiny_net()
    ds = _bars()
    hist = train.fit(net, ds, ds, epochs=6, lr=0.05, batch_size=16, shift=0, progress=False, device="cpu")
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        assert len(getattr(hist, key)) == 6
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.val_acc[-1] == 1.0
    assert not net.training


def test_fit_is_deterministic_for_a_seed():
    def run(seed):
        torch.manual_seed(123)  # same initial weights; fit's seed drives shuffling and augmentation
        net = _tiny_net()
        return train.fit(net, _bars(), epochs=2, batch_size=8, shift=1, progress=False, seed=seed).train_loss

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_fit_onecycle_anneals_and_constant_keeps_the_rate():
    hist = train.fit(_tiny_net(), _bars(), epochs=3, lr=0.01, batch_size=16, progress=False)
    assert hist.lr[-1] < 0.01 / 100
    hist = train.fit(_tiny_net(), _bars(), epochs=2, lr=0.01, schedule="constant", progress=False)
    assert hist.lr == [0.01, 0.01]


def test_fit_uses_given_parameter_groups():
    net = _tiny_net()
    head = net[5]
    before = net[0].weight.detach().clone()
    groups = [{"params": list(head.parameters()), "lr": 0.1}]
    train.fit(net, _bars(), epochs=1, schedule="constant", params=groups, progress=False)
    assert torch.equal(net[0].weight, before)  # not in any group: untouched


def test_fit_rejects_bad_arguments():
    net = _tiny_net()
    with pytest.raises(ValueError, match="`epochs`"):
        train.fit(net, _bars(), epochs=0, progress=False)
    with pytest.raises(ValueError, match="`optimizer`"):
        train.fit(net, _bars(), epochs=1, optimizer="adam9", progress=False)
    with pytest.raises(ValueError, match="`device`"):
        train.fit(net, _bars(), epochs=1, device="warp-drive", progress=False)
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train.fit(net, _bars(), epochs=1, progress=False)


def test_fit_keeps_frozen_batchnorm_statistics():
    net = _tiny_net()
    bn = net[1]
    for p in bn.parameters():
        p.requires_grad_(False)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    train.fit(net, _bars(), epochs=1, progress=False)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)


def test_get_device_defaults_to_cuda_only_when_available():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert train.get_device().type == want
    assert train.get_device("cpu") == torch.device("cpu")


def test_evaluate_counts_correct_predictions():
    class Always(nn.Module):
        def forward(self, x):
            return torch.tensor([[0.0, 1.0, 0.0]]).repeat(len(x), 1)  # always class 1

    ds = TensorDataset(torch.zeros(10, 1, 2, 2), torch.tensor([1, 1, 1, 0, 0, 2, 2, 2, 2, 0]))
    assert train.evaluate(Always(), ds, batch_size=3) == pytest.approx(0.3)
    assert train.evaluate(Always(), Subset(ds, [0, 1, 3, 4])) == pytest.approx(0.5)


def test_random_shift_moves_each_image_within_the_limit():
    x = torch.zeros(50, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    out = train.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.equal(out.sum((1, 2, 3)), torch.ones(50))
    rows, cols = out[:, 0].nonzero()[:, 1], out[:, 0].nonzero()[:, 2]
    assert (rows - 4).abs().max() == 2 and (cols - 4).abs().max() == 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10
    assert torch.equal(train.random_shift(x, 0), x)


def test_random_shift_keeps_channels_together():
    x = torch.zeros(4, 3, 6, 6)
    x[:, :, 2, 3] = torch.tensor([1.0, 2.0, 3.0])
    out = train.random_shift(x, 1, torch.Generator().manual_seed(1))
    for img in out:
        torch.testing.assert_close(img[1], 2 * img[0])
        torch.testing.assert_close(img[2], 3 * img[0])


def test_lenet_bn_learns_real_digits_from_few_examples():
    torch.manual_seed(0)
    train_set, test_set = data.mnist_subset()
    small = data.few_shot(train_set, 30, seed=0)
    net = models.LeNetBN(c1=8, c2=16, hidden=32)  # narrow: a quick check that fit learns real digits
    train.fit(net, small, epochs=4, batch_size=32, progress=False)
    assert train.evaluate(net, test_set) > 0.7  # chance is 0.1


def test_history_plots_train_and_validation_curves():
    import matplotlib

    matplotlib.use("Agg")
    hist = train.History(train_loss=[1.0, 0.5], train_acc=[0.5, 0.8], val_loss=[1.1, 0.7], val_acc=[0.4, 0.7],
                         lr=[0.1, 0.01], seconds=[1.0, 1.0])
    loss_ax, acc_ax = hist.plot()
    assert [list(line.get_ydata()) for line in acc_ax.lines] == [[0.5, 0.8], [0.4, 0.7]]
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2]
    no_val = train.History(train_loss=[1.0], train_acc=[0.5], val_loss=[None], val_acc=[None], lr=[0.1],
                           seconds=[1.0])
    assert len(no_val.plot()[0].lines) == 1


def test_fit_drops_a_last_batch_of_one_for_batchnorm():
    ds = _bars(n=17)  # 17 = 2 * 8 + 1: a batch of one would break BatchNorm's training mode
    hist = train.fit(_tiny_net(), ds, epochs=2, batch_size=8, progress=False)
    assert len(hist.train_loss) == 2
    single = TensorDataset(ds.tensors[0][:5], ds.tensors[1][:5])
    assert len(train.fit(_tiny_net(), single, epochs=1, batch_size=64, progress=False).train_acc) == 1


def test_fit_trains_a_token_model_on_integer_ids():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 4, (64, 20), generator=g)
    labels = (tokens == 3).any(dim=1).long()
    model = models.Conv1dNet(num_classes=2, vocab_size=4, embed_dim=8, channels=8, kernel_size=3)
    history = train.fit(model, TensorDataset(tokens, labels), epochs=2, batch_size=16, progress=False)
    assert len(history.train_loss) == 2
    x, _ = train.as_tensors(TensorDataset(tokens, labels))
    assert x.dtype == torch.int64
