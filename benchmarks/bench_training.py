"""Training benchmark: (a) digits models, (b) few-shot fine-tuning strategies.

(a) LeNet-5, LeNet-BN and the seed article's ConvNet, each trained by `train.fit` with its
    defaults on the 4,000 `data.mnist_subset` training digits: test accuracy on the 1,000 test
    digits, wall and CPU seconds (medians over seeds).
(b) k = 1, 5, 10, 50 labelled digits per class, then the 1,000 test digits: training the
    Backbone from scratch vs four ways of reusing the glyph-pretrained backbone; mean and
    spread over seeds, and trainable parameters. Every strategy gets the same recipe: the same
    number of optimizer steps, batch size and shift augmentation; each has its own learning
    rates, which chapter 9 checks on validation digits held out of the training set (the test
    digits only report).
    A pretrained model's new head starts from the class means of the labelled features
    (`finetune.imprint_head`); scratch's head starts random, since its features are random too.

Run ``python benchmarks/bench_training.py`` (``--quick``: one seed, fewer k). The book imports
`run_digits` and `run_fewshot` to compute smaller tables in its own cells.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from conv_course import bench, data, finetune, models, pretrained, train  # noqa: E402
from conv_course.tables import format_table

DIGIT_MODELS = {"LeNet-5": models.LeNet5, "LeNet-BN": models.LeNetBN, "seed ConvNet": models.SeedConvNet}
FEWSHOT_STEPS = 150  # optimizer steps per few-shot run, whatever k is


def run_digits(seeds=(0, 1, 2), names=tuple(DIGIT_MODELS), device="cpu"):
    """Train each digits model with `fit`'s defaults once per seed.

    Returns:
        list of rows {"model", "params", "acc", "acc_min", "acc_max", "wall_s", "cpu_s", "seeds"}:
        median test accuracy (and range), median wall and CPU seconds of `fit`.
    """
    train_set, test_set = data.mnist_subset()
    rows = []
    for name in names:
        accs, walls, cpus = [], [], []
        for seed in seeds:
            torch.manual_seed(seed)
            model = DIGIT_MODELS[name]()
            w0, c0 = time.perf_counter(), time.process_time()
            train.fit(model, train_set, device=device, progress=False, seed=seed)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            accs.append(train.evaluate(model, test_set, device=device))
        rows.append({"model": name, "params": models.count_parameters(model), "acc": statistics.median(accs),
                     "acc_min": min(accs), "acc_max": max(accs), "wall_s": statistics.median(walls),
                     "cpu_s": statistics.median(cpus), "seeds": list(seeds), "accs": accs})
    return rows


# ------------------------------------------------------------------ few-shot strategies
# Each returns (model, fit keyword arguments). Learning rates are one-cycle peaks.

def _scratch():
    return models.Backbone(num_classes=10), {"lr": 3e-3}


def _feature_extraction():
    model = finetune.freeze(pretrained.load_backbone(num_classes=10), "features")
    return model, {"lr": 1e-2}


def _full_finetune():
    return pretrained.load_backbone(num_classes=10), {"lr": 1e-3}


def _discriminative():
    model = pretrained.load_backbone(num_classes=10)
    return model, {"params": finetune.param_groups(model, base_lr=1e-3, head_lr=1e-2)}


def _lora():
    model = finetune.add_lora(finetune.freeze(pretrained.load_backbone(num_classes=10)), rank=4, alpha=4)
    finetune.unfreeze(model, "head")
    for m in model.modules():  # BatchNorm scales and shifts adapt too (960 numbers)
        if isinstance(m, torch.nn.BatchNorm2d):
            finetune.unfreeze(m)
    model.train()
    return model, {"params": finetune.param_groups(model, base_lr=3e-3, head_lr=1e-2)}


STRATEGIES = {"scratch": _scratch, "feature extraction": _feature_extraction, "full fine-tuning": _full_finetune,
              "discriminative LR": _discriminative, "LoRA rank 4": _lora}


def fewshot_run(strategy, train_subset, test_set, seed=0, device="cpu"):
    """Train one strategy on one labelled subset; returns (test accuracy, trainable parameters)."""
    torch.manual_seed(seed)  # the new head's initial weights
    model, kwargs = STRATEGIES[strategy]()
    if strategy != "scratch":  # pretrained features: start the head at their class means
        finetune.imprint_head(model, train_subset)
    n = len(train_subset)
    batch_size = min(64, n)
    epochs = math.ceil(FEWSHOT_STEPS / math.ceil(n / batch_size))
    trainable = models.count_parameters(model, trainable_only=True)
    train.fit(model, train_subset, epochs=epochs, batch_size=batch_size, device=device, progress=False,
              seed=seed, **kwargs)
    return train.evaluate(model, test_set, device=device), trainable


def run_fewshot(ks=(1, 5, 10, 50), seeds=(0, 1, 2), strategies=tuple(STRATEGIES), device="cpu", log=None):
    """Every strategy at every k (labels per class), once per seed.

    Returns:
        list of rows {"k", "strategy", "acc", "std", "accs", "trainable", "gain"}: mean test
        accuracy over seeds, its standard deviation, and the gain over "scratch" in points.
    """
    train_set, test_set = data.mnist_subset()
    rows = []
    for k in ks:
        scratch = None
        for strategy in strategies:
            accs = []
            for seed in seeds:
                acc, trainable = fewshot_run(strategy, data.few_shot(train_set, k, seed=seed), test_set, seed, device)
                accs.append(acc)
            mean = statistics.fmean(accs)
            scratch = mean if strategy == "scratch" else scratch
            row = {"k": k, "strategy": strategy, "acc": mean, "std": statistics.pstdev(accs), "accs": accs,
                   "trainable": trainable, "gain": None if scratch is None else 100 * (mean - scratch)}
            rows.append(row)
            if log:
                log(f"k={k:>2} {strategy:<20} {mean:.3f} +- {row['std']:.3f}")
    return rows


DIGITS_COLUMNS = [("model", "model", "{}"), ("params", "parameters", "{:,}"), ("acc", "test acc (median)", "{:.1%}"),
                  ("acc_min", "min", "{:.1%}"), ("acc_max", "max", "{:.1%}"), ("wall_s", "wall s", "{:.1f}"),
                  ("cpu_s", "CPU s", "{:.1f}")]
FEWSHOT_COLUMNS = [("k", "k/class", "{}"), ("strategy", "strategy", "{}"), ("acc", "test acc", "{:.1%}"),
                   ("std", "+-", "{:.1%}"), ("gain", "vs scratch (points)", "{:+.1f}"),
                   ("trainable", "trainable params", "{:,}")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, k = 1 and 10 only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["digits", "fewshot"], default=None)
    args = parser.parse_args(argv)
    bench.limit_threads(args.threads)
    seeds = (0,) if args.quick else (0, 1, 2)
    ks = (1, 10) if args.quick else (1, 5, 10, 50)
    payload = {"environment": bench.environment(args.threads), "seeds": list(seeds), "ks": list(ks),
               "fewshot_steps": FEWSHOT_STEPS, "device": "cpu"}
    if args.only in (None, "digits"):
        payload["digits"] = run_digits(seeds)
        print("(a) digits: 4,000 training / 1,000 test MNIST digits, fit() defaults")
        print(format_table(payload["digits"], DIGITS_COLUMNS), flush=True)
    if args.only in (None, "fewshot"):
        payload["fewshot"] = run_fewshot(ks, seeds, log=lambda s: print(s, file=sys.stderr, flush=True))
        print(f"(b) few-shot: k labelled digits per class, {len(seeds)} seed(s), 1,000 test digits")
        print(format_table(payload["fewshot"], FEWSHOT_COLUMNS))
    name = "training-quick" if args.quick else "training"
    previous = os.path.join(bench.RESULTS, f"{name}.json")
    if args.only and os.path.exists(previous):  # keep the other part's results
        with open(previous) as f:
            payload = {**json.load(f), **payload}
    print("wrote", bench.write_results(name, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
