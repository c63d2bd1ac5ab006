"""torch helpers shared by the model checkers (`training`, `finetuning`): lazy import, one thread, seeds."""

import contextlib
import functools

__all__ = ["torch_module", "one_thread", "single_threaded", "seed_all"]


def torch_module():
    """torch, imported on first use (the numpy checkers never pay for it)."""
    import torch

    return torch


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: tiny models gain nothing from two, and on a busy machine the
    second thread's OpenMP barrier makes each conv wait."""
    torch = torch_module()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def single_threaded(checker):
    """Decorator: run the checker with one torch thread (see `one_thread`)."""
    @functools.wraps(checker)
    def wrapper(*args, **kwargs):
        with one_thread():
            return checker(*args, **kwargs)
    return wrapper


def seed_all(seed):
    """`train.seed_everything(seed)`, imported on first use (it imports torch)."""
    from ..train import seed_everything

    seed_everything(seed)
