"""Build the HTML book: ``conv-course book`` (what ``make book`` runs)."""

import os
import subprocess
import sys

from . import REPO_ROOT

__all__ = ["build", "add_book_arguments", "run_book"]


def build(root=REPO_ROOT, *, all_pages=False, quiet=False):
    """Run ``jupyter-book build`` on the repository root; the HTML lands in ``root/_build/html``.

    Cells execute through jupyter-cache (``_build/.jupyter_cache``) and any cell error fails
    the build. Returns the return code of jupyter-book.
    """
    jb = os.path.join(os.path.dirname(sys.executable), "jupyter-book")
    cmd = [jb, "build", root, "--builder", "html"]
    if all_pages:
        cmd.append("--all")
    if quiet:
        cmd.append("--quiet")
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    return subprocess.call(cmd, cwd=root, env=env)


def add_book_arguments(parser):
    parser.add_argument("--all", action="store_true", help="rebuild every page, not only changed ones")
    parser.add_argument("--quiet", action="store_true", help="less output")


def run_book(args):
    code = build(all_pages=args.all, quiet=args.quiet)
    if code == 0:
        print(f"book: open {os.path.join(REPO_ROOT, '_build', 'html', 'index.html')}")
    return code
