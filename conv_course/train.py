"""Train and evaluate image classifiers: one readable loop, fast on a small CPU.

`fit(model, train)` with its defaults is the recipe that meets the course's digits target with
`models.LeNetBN` on `data.mnist_subset()`: 10 epochs of AdamW with a one-cycle learning rate
schedule (peak 5e-3), random shifts of up to 2 pixels, batches of 64 (the accuracy and time it
takes are measured by `benchmarks/bench_training.py` and in chapter 8). The datasets of this course
are tiny, so the whole training set is held as one tensor on the device and batches are
slices of it (no per-image Python `__getitem__`, no DataLoader workers).
"""

import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset, TensorDataset

__all__ = ["History", "fit", "evaluate", "predict", "get_device", "seed_everything", "as_tensors",
           "random_shift"]


@dataclass
class History:
    """Per-epoch records of a `fit` run; every field is a list with one entry per epoch.

    ``val_loss``/``val_acc`` hold None when no validation set was given; ``lr`` is the
    learning rate of the first parameter group in the epoch's last step; ``seconds`` the
    wall time of the epoch (training plus validation).
    """

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    @property
    def epochs(self):
        return list(range(1, len(self.train_loss) + 1))

    def as_dict(self):
        return asdict(self)

    def plot(self, axes=None):
        """Loss and accuracy against epoch on two matplotlib axes (created if None); returns them."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
        for ax, key, title in zip(axes, ("loss", "acc"), ("loss", "accuracy")):
            ax.plot(self.epochs, getattr(self, f"train_{key}"), "o-", label="train")
            vals = getattr(self, f"val_{key}")
            if vals and vals[0] is not None:
                ax.plot(self.epochs, vals, "s-", label="validation")
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.legend()
        return axes


def get_device(device=None):
    """`device` as a torch.device; None picks "cuda" when available, else "cpu"."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"`device` must be None, 'cpu', 'cuda' or a torch.device; got {device!r}") from err


def seed_everything(seed):
    """Seed Python's, numpy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def as_tensors(dataset, device=None):
    """The whole dataset as (inputs (N, ...), labels (N,) int64) tensors on `device`.

    Inputs become float32, except int32/int64 inputs (token ids for an embedding), which stay int64.
    TensorDatasets (and Subsets of them) are sliced directly; any other dataset is read
    item by item once.
    """
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[0], dataset.tensors[1]
    elif isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorDataset):
        idx = torch.as_tensor(dataset.indices, dtype=torch.int64)
        x, y = dataset.dataset.tensors[0][idx], dataset.dataset.tensors[1][idx]
    else:
        if len(dataset) == 0:
            raise ValueError("`dataset` is empty")
        items = [dataset[i] for i in range(len(dataset))]
        x = torch.stack([torch.as_tensor(a) for a, _ in items])
        y = torch.as_tensor([int(b) for _, b in items])
    if len(x) == 0:
        raise ValueError("`dataset` is empty")
    dtype = torch.int64 if x.dtype in (torch.int32, torch.int64) else torch.float32
    return x.to(device, dtype), y.to(device, torch.int64)


def random_shift(x, max_shift, generator=None):
    """Shift every image of (N, C, H, W) `x` by its own random (dy, dx) in [-max_shift, max_shift].

    Pixels shifted in are zero (background), as when a digit is written off-centre.
    """
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    s = int(max_shift)
    padded = F.pad(x, (s, s, s, s))
    off = torch.randint(0, 2 * s + 1, (2, n), generator=generator, device="cpu").to(x.device)
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, :, None]      # (N, H, 1)
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, :]      # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)     # (N, C, H, W)


def _keep_frozen_bn_in_eval(model):
    """BatchNorm layers whose affine parameters are all frozen keep their running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = [p for p in (m.weight, m.bias) if p is not None]
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _optimizer(name, groups, lr, weight_decay):
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"fit: `optimizer` must be 'adamw' or 'sgd'; got {name!r}")


def _schedule(name, opt, steps):
    if name == "onecycle":
        if steps < 3:  # too short to warm up and anneal: keep the peak rate
            return None
        max_lr = [g["lr"] for g in opt.param_groups]
        pct = min(0.5, max(0.25, 2 / steps))  # at least two warm-up steps
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=steps, pct_start=pct)
    if name == "constant":
        return None
    raise ValueError(f"fit: `schedule` must be 'onecycle' or 'constant'; got {name!r}")


def fit(model, train, val=None, *, epochs=10, lr=5e-3, batch_size=64, optimizer="adamw", schedule="onecycle",
        weight_decay=1e-4, label_smoothing=0.0, shift=2, params=None, device=None, progress=True, seed=0):
    """Train `model` on `train` and return its History; the model is left in eval mode.

    Args:
        model: nn.Module mapping (B, ...) inputs to (B, num_classes) logits.
        train, val: datasets of (input, int label); `val` is evaluated after every epoch.
        epochs, lr, batch_size: lr is the peak learning rate of the one-cycle schedule.
        optimizer: "adamw" or "sgd" (momentum 0.9, Nesterov).
        schedule: "onecycle" (warm up over the first 25% of steps, then anneal) or "constant".
        weight_decay, label_smoothing: regularisation.
        shift: random shift augmentation of up to `shift` pixels for 4-D image input (0 = off).
        params: optional parameter groups (list of dicts with "params" and "lr", e.g. from
            `finetune.param_groups`); each group's "lr" is its peak. Default: every parameter
            with requires_grad, at `lr`.
        device: None (cuda if available, else cpu), "cpu", "cuda" or a torch.device.
        progress: show a tqdm bar over epochs.
        seed: seeds torch, numpy, Python and the shuffling/augmentation generator; the same
            seed gives the same history on CPU.
    Returns:
        History with one entry per epoch.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: `epochs` must be a positive integer; got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"fit: `batch_size` must be a positive integer; got {batch_size!r}")
    device = get_device(device)
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    x, y = as_tensors(train, device)
    val_xy = as_tensors(val, device) if val is not None else None
    groups = params if params is not None else [{"params": [p for p in model.parameters() if p.requires_grad]}]
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise ValueError("fit: the model has no trainable parameters (everything is frozen)")
    opt = _optimizer(optimizer, groups, lr, weight_decay)
    # a last batch of one example is dropped: BatchNorm cannot normalise a single value
    steps_per_epoch = len(x) // batch_size + (len(x) % batch_size > 1 or len(x) < batch_size)
    seen = min(len(x), steps_per_epoch * batch_size)
    sched = _schedule(schedule, opt, epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    hist = History()
    bar = _progress(epochs, progress)
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        _keep_frozen_bn_in_eval(model)
        perm = torch.randperm(len(x), generator=gen).to(device)
        total_loss, correct = 0.0, 0
        for i in range(steps_per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if shift and xb.ndim == 4:
                xb = random_shift(xb, shift, gen)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            last_lr = opt.param_groups[0]["lr"]  # the rate this step used
            if sched is not None:
                sched.step()
            total_loss += loss.item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
        hist.train_loss.append(total_loss / seen)
        hist.train_acc.append(correct / seen)
        vl, va = _loss_acc(model, *val_xy, 512, loss_fn) if val_xy is not None else (None, None)
        hist.val_loss.append(vl)
        hist.val_acc.append(va)
        hist.lr.append(last_lr)
        hist.seconds.append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3f}", acc=f"{hist.train_acc[-1]:.3f}",
                        **({"val_acc": f"{va:.3f}"} if va is not None else {}))
        bar.update(1)
    bar.close()
    model.eval()
    return hist


def _progress(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="epoch", disable=not enabled, leave=True)


@torch.no_grad()
def _loss_acc(model, x, y, batch_size, loss_fn):
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size])
        total += loss_fn(logits, y[i:i + batch_size]).item() * len(logits)
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
    model.train(was_training)
    return total / len(x), correct / len(x)


@torch.no_grad()
def predict(model, dataset, batch_size=512, device=None):
    """Predicted class of every example: (N,) int64 tensor on the CPU (model in eval mode)."""
    device = get_device(device)
    model.to(device)
    x, _ = as_tensors(dataset, device)
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out.cpu()


def evaluate(model, dataset, batch_size=512, device=None):
    """Accuracy of `model` on `dataset`, in [0, 1], computed in eval mode in batches."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate: `batch_size` must be a positive integer; got {batch_size!r}")
    _, y = as_tensors(dataset)
    return (predict(model, dataset, batch_size, device) == y).float().mean().item()
