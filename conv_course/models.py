"""The convolutional networks of the course, small enough to train on a laptop CPU.

Every image model takes (N, 1, 28, 28) float images and returns (N, num_classes) logits.

* `LeNet5` -- LeCun's classic (two 5x5 convs, three fully connected layers), with ReLU and max-pool.
* `LeNetBN` -- the same idea, wider, with BatchNorm: the fast accurate digits model.
* `SeedConvNet` -- the seed article's ConvNet with its flatten size fixed.
* `Backbone` -- four conv3x3-BN-ReLU blocks + global average pooling (`features`) and a
  replaceable linear `head`: the network pretrained on rendered glyphs.
* `ResidualBlock`, `ResNetDigits` -- two-conv blocks with a skip connection, stacked into a
  small residual network; ``skip=False`` gives the plain network of the same layers.
* `Conv1dNet` -- 1-D convolutions over signals (N, C, L) or token sequences (N, L).
"""

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["LeNet5", "LeNetBN", "SeedConvNet", "Backbone", "ResidualBlock", "ResNetDigits", "Conv1dNet",
           "count_parameters"]


def count_parameters(model, trainable_only=False):
    """Number of scalar parameters in `model` (only those with requires_grad if `trainable_only`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _check_images(name, x, size=28):
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != size or x.shape[3] != size:
        raise ValueError(f"{name}: input must have shape (N, 1, {size}, {size}); got {tuple(x.shape)}")


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling instead of tanh and subsampling.

    Shapes: (N, 1, 28, 28) -> conv5 pad 2 -> (N, 6, 28, 28) -> pool -> (N, 6, 14, 14)
    -> conv5 -> (N, 16, 10, 10) -> pool -> (N, 16, 5, 5) -> flatten 400 -> 120 -> 84 -> (N, 10).
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, num_classes),
        )

    def forward(self, x):
        _check_images("LeNet5", x)
        return self.classifier(self.features(x))


class LeNetBN(nn.Module):
    """A wider LeNet with BatchNorm after every conv and hidden linear layer.

    BatchNorm keeps activations standardised, so a large learning rate trains it in a few
    epochs. Shapes: (N, 1, 28, 28) -> conv5 pad 2 -> (N, c1, 28, 28) -> pool -> (N, c1, 14, 14)
    -> conv5 -> (N, c2, 10, 10) -> pool -> (N, c2, 5, 5) -> flatten c2*25 -> hidden -> (N, 10).
    """

    def __init__(self, num_classes=10, c1=32, c2=64, hidden=128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, bias=False), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 5 * 5, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        _check_images("LeNetBN", x)
        return self.classifier(self.features(x))


class SeedConvNet(nn.Module):
    """The seed article's ConvNet (conv 1->32, conv 32->64, fc 128, fc 10), with its bug fixed.

    The article flattens to 64*6*6, a size nothing in the network produces: an unpadded 3x3
    conv shrinks each side by 2, so 28x28 -> 26x26 -> 24x24, and the flatten size is
    64*24*24 = 36,864. We keep the article's layers and fix that number (``pool=False``, the
    default), so the model is the one the article meant to run. ``pool=True`` adds the 2x2
    max-pool most MNIST examples put there, giving 64*12*12 = 9,216 inputs to fc1: four times
    fewer fc1 weights (1.2 M instead of 4.7 M) for about the same accuracy.
    """

    def __init__(self, num_classes=10, pool=False):
        super().__init__()
        side = 12 if pool else 24
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        _check_images("SeedConvNet", x)
        x = self.relu(self.conv1(x))                # (N, 32, 26, 26)
        x = self.pool(self.relu(self.conv2(x)))     # (N, 64, 24, 24), or (N, 64, 12, 12) pooled
        x = torch.flatten(x, 1)                     # never view(-1, ...): a wrong size must fail
        return self.fc2(self.relu(self.fc1(x)))


def _block(c_in, c_out, pool):
    layers = [("conv", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)),
              ("bn", nn.BatchNorm2d(c_out)), ("relu", nn.ReLU())]
    if pool:
        layers.append(("pool", nn.MaxPool2d(2)))
    return nn.Sequential(OrderedDict(layers))


class Backbone(nn.Module):
    """Four conv3x3-BN-ReLU blocks, global average pooling, and a linear head.

    ``features`` holds ``block1`` .. ``block4`` (1->32->64->128->256 channels, 2x2 max-pool
    after the first three: 28 -> 14 -> 7 -> 3), then ``pool`` (global average) and ``flatten``:
    (N, 1, 28, 28) -> (N, 256). ``head`` is nn.Linear(256, num_classes). To reuse the
    pretrained features for another task, call ``replace_head(n)`` (a fresh linear layer),
    or build ``Backbone(n)`` and load only the ``features.*`` weights.
    About 390 k parameters in the features.
    """

    widths = (32, 64, 128, 256)

    def __init__(self, num_classes=10):
        super().__init__()
        w = self.widths
        self.features = nn.Sequential(OrderedDict([
            ("block1", _block(1, w[0], True)),
            ("block2", _block(w[0], w[1], True)),
            ("block3", _block(w[1], w[2], True)),
            ("block4", _block(w[2], w[3], False)),
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
        ]))
        self.head = nn.Linear(w[3], num_classes)

    @property
    def num_features(self):
        return self.widths[-1]

    def replace_head(self, num_classes):
        """Put a freshly initialised nn.Linear(256, num_classes) in place of ``head``; returns self."""
        self.head = nn.Linear(self.num_features, num_classes).to(self.head.weight.device)
        return self

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"Backbone: input must have shape (N, 1, H, W); got {tuple(x.shape)}")
        return self.head(self.features(x))


class ResidualBlock(nn.Module):
    """Two conv3x3-BN layers and a skip connection: ``relu(x + F(x))`` (He et al. 2016).

    The residual branch is F(x) = bn2(conv2(relu(bn1(conv1(x))))). Both convolutions
    keep the channels and, padded by 1, the size, so x and F(x) can be added. With
    ``skip=False`` the block returns relu(F(x)): the plain block, same layers and
    parameters.
    Shapes: (N, C, H, W) -> (N, C, H, W), C = `channels`; 2 * (9*C*C + 2*C) parameters.
    """

    def __init__(self, channels, skip=True):
        super().__init__()
        self.channels, self.skip = channels, skip
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"ResidualBlock: input must have shape "
                             f"(N, {self.channels}, H, W); got {tuple(x.shape)}")
        branch = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(x + branch) if self.skip else torch.relu(branch)

    def extra_repr(self):
        return f"channels={self.channels}, skip={self.skip}"


class ResNetDigits(nn.Module):
    """A small residual network: stem, `blocks` ResidualBlocks, average pooling, head.

    Shapes: (N, 1, 28, 28) -> conv3x3-BN-ReLU (N, width, 28, 28) -> 2x2 max-pool
    (N, width, 14, 14) -> `blocks` x ResidualBlock(width) (N, width, 14, 14)
    -> global average (N, width) -> linear (N, num_classes): 2 * blocks + 2 weighted
    layers. ``skip=False`` builds the plain network of the same depth, width and
    parameters: the comparison that isolates what the skip connections do.
    """

    def __init__(self, num_classes=10, width=16, blocks=4, skip=True):
        super().__init__()
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"ResNetDigits: `blocks` must be a non-negative integer; "
                             f"got {blocks!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.blocks = nn.Sequential(*(ResidualBlock(width, skip) for _ in range(blocks)))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(width, num_classes))

    def forward(self, x):
        _check_images("ResNetDigits", x)
        return self.head(self.blocks(self.stem(x)))


class Conv1dNet(nn.Module):
    """1-D convolutions for signals (N, in_channels, L) or, with `vocab_size`, token ids (N, L).

    Tokens go through nn.Embedding to (N, L, embed_dim) and are transposed to channels-first
    (N, embed_dim, L). Two conv1d-BN-ReLU layers (kernel `kernel_size`, 'same' padding) follow,
    then a max over positions (N, channels) and a linear layer to (N, num_classes). The max
    makes the output independent of where along the sequence a pattern occurs.
    """

    def __init__(self, num_classes, in_channels=1, vocab_size=None, embed_dim=32, channels=64, kernel_size=5):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim) if vocab_size else None
        c_in = embed_dim if vocab_size else in_channels
        pad = kernel_size // 2
        self.features = nn.Sequential(
            nn.Conv1d(c_in, channels, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size, padding=pad, bias=False), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.AdaptiveMaxPool1d(1), nn.Flatten(),
        )
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x):
        if self.embed is not None:
            if x.ndim != 2 or x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"Conv1dNet: token input must be integer ids of shape (N, L); "
                                 f"got {x.dtype} {tuple(x.shape)}")
            x = self.embed(x).transpose(1, 2)
        elif x.ndim != 3:
            raise ValueError(f"Conv1dNet: signal input must have shape (N, C, L); got {tuple(x.shape)}")
        return self.head(self.features(x))
