"""The shipped pretrained backbone: a `models.Backbone` trained on rendered glyphs.

`load_backbone()` returns it with its 140-class glyph head, its weights checked against the
sha256 sum shipped beside them. Fine-tuning on digits starts with
``load_backbone().replace_head(10)`` (or ``load_backbone(num_classes=10)``).

``python -m conv_course.pretrained`` reproduces the weights from scratch on a CPU:
`glyphs.GlyphSource` batches of 128 fresh samples (140 classes, strong elastic warps, half of
them redrawn as pen strokes), AdamW at a one-cycle peak of 3e-3, label smoothing 0.1, 3,000
steps. It then prints its time and its accuracy on fresh glyph samples (chapter 9 measures the
shipped weights: the warps make some glyphs ambiguous, which is the point; harder pretraining
gave features that transfer better to handwritten digits).
"""

import argparse
import os
import sys
import time

import torch
from torch import nn

from . import PACKAGE_DIR, glyphs, models, train
from .data import sha256_of

__all__ = ["WEIGHTS", "load_backbone", "pretrain", "main"]

WEIGHTS = os.path.join(PACKAGE_DIR, "weights", "backbone.pt")


def load_backbone(num_classes=None, path=WEIGHTS, device=None):
    """The glyph-pretrained `models.Backbone`, in eval mode.

    Args:
        num_classes: None keeps the pretrained 140-class glyph head; an int replaces it with a
            fresh nn.Linear(256, num_classes) (the features stay pretrained).
        path: the weights file; its sha256 must equal the one in ``<path minus .pt>.sha256``.
        device: where to put the model (default: cpu).
    Raises:
        FileNotFoundError if the weights or their checksum are missing; RuntimeError if the
        checksum does not match (a corrupted or replaced file).
    """
    sum_path = os.path.splitext(path)[0] + ".sha256"
    for p in (path, sum_path):
        if not os.path.exists(p):
            raise FileNotFoundError(f"load_backbone: {p} is missing; run `python -m conv_course.pretrained`")
    with open(sum_path) as f:
        expected = f.read().split()[0]
    got = sha256_of(path)
    if got != expected:
        raise RuntimeError(f"load_backbone: {path} has sha256 {got}, expected {expected} from {sum_path}; "
                           "the file is corrupted or was replaced")
    model = models.Backbone(num_classes=len(glyphs.CLASSES))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if num_classes is not None:
        model.replace_head(num_classes)
    return model.to(device or "cpu").eval()


def pretrain(steps=3000, batch_size=128, lr=3e-3, weight_decay=5e-4, label_smoothing=0.1, seed=0,
             device=None, progress=True):
    """Train a fresh Backbone(len(glyphs.CLASSES)) on endless `glyphs.GlyphSource` batches; returns it in eval mode."""
    from tqdm.auto import tqdm

    device = train.get_device(device)
    train.seed_everything(seed)
    source = glyphs.GlyphSource()
    model = models.Backbone(num_classes=source.num_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    model.train()
    batches = source.batches(batch_size, seed=seed)
    with tqdm(total=steps, desc="pretraining", unit="step", disable=not progress) as bar:
        for step in range(steps):
            x, y = next(batches)
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            bar.update(1)
    return model.eval()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m conv_course.pretrained",
                                     description="Pretrain the glyph backbone and write its weights and sha256.")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--out", default=WEIGHTS, help="where to write the .pt (the .sha256 goes beside it)")
    parser.add_argument("--eval-samples", type=int, default=2000, help="fresh glyphs to report accuracy on")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = pretrain(args.steps, args.batch_size, args.lr, seed=args.seed, device=args.device,
                     progress=not args.quiet)
    seconds = time.perf_counter() - t0
    model.cpu()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(model.state_dict(), args.out)
    digest = sha256_of(args.out)
    with open(os.path.splitext(args.out)[0] + ".sha256", "w") as f:
        f.write(f"{digest}  {os.path.basename(args.out)}\n")
    fresh = glyphs.glyph_dataset(args.eval_samples, seed=12345)  # not a training seed: unseen samples
    acc = train.evaluate(model, fresh, device="cpu")
    print(f"pretrained in {seconds:.0f} s; accuracy on {args.eval_samples:,} fresh glyphs {acc:.1%}; "
          f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB, sha256 {digest[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
