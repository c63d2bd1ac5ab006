"""Run one submitted notebook in a grading kernel, and keep the next kernel warm.

A grading kernel costs time before its first cell runs: the interpreter and ipykernel (about a
second), then the assignment's imports (numpy; for the torch assignments torch, and torch._dynamo,
which the first optimizer imports: two more seconds). A worker grades submissions one after
another, so with ``warm=True`` it starts a *spare* kernel for the next submission as soon as it
takes one. The spare starts, and imports the modules in `preload`, on another core while the
current notebook runs.

A spare belongs to no student until a submission's files are written into its folder: it is
started in a fresh, empty folder of its own (the only writable folder of its sandbox), and each
kernel runs exactly one notebook and is then shut down, so nothing passes between students. The
preloaded imports bind no name in the student's namespace (see `conv_course.autograding._preload_kernel`).
"""

import atexit
import os
import shutil
import tempfile

import nbformat

__all__ = ["execute_notebook", "write_files", "close_spare", "cap_outputs", "MAX_CELL_OUTPUT", "MAX_NOTEBOOK_OUTPUT",
           "InfrastructureError"]


class InfrastructureError(RuntimeError):
    """The grader itself failed (not the student's code): nothing may be recorded as a score."""

_SPARE = {}  # "kernel": this process's spare kernel; "finalizer": stops it when a pool worker ends


MAX_CELL_OUTPUT = 1 << 20        # bytes of output kept per cell
MAX_NOTEBOOK_OUTPUT = 4 << 20    # and per notebook, whatever the route (streams, displays, updates)
_TRUNCATED = "[output truncated: more than {} KiB{}; the rest was not kept]\n"
# Runs before any student code: the kernel answers and finds numpy and conv_course (without
# importing anything from the submission's folder, which a student controls).
_PROBE = ("import importlib.util as _u\nassert _u.find_spec('numpy') and _u.find_spec('conv_course')\n"
          "from conv_course.autograding.sandbox import seed_workdir as _s\n_s()\ndel _u, _s")


def _size(output):
    return len(str(output.get("text", ""))) + len(str(output.get("data", ""))) + \
        len(str(output.get("traceback", ""))) + len(str(output.get("evalue", "")))


def cap_outputs(nb, per_cell=MAX_CELL_OUTPUT, per_notebook=MAX_NOTEBOOK_OUTPUT):
    """Keep at most `per_cell` bytes of output per cell and `per_notebook` in all, in cell order;
    what is cut is replaced by one visible "output truncated" note. Returns the bytes dropped."""
    used, dropped = 0, 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept, here, cut = [], 0, False
        for out in cell.get("outputs", []):
            size = _size(out)
            if here + size > per_cell or used + here + size > per_notebook:
                cut, dropped = True, dropped + size
                continue
            kept.append(out)
            here += size
        if cut:
            which = f"{per_cell >> 10}" if used + here < per_notebook - per_cell else f"{per_notebook >> 10}"
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=_TRUNCATED.format(
                which, " in this cell" if which == f"{per_cell >> 10}" else " in this notebook")))
        cell.outputs = kept
        used += here
    return dropped


def _executor_class():
    from nbgrader.preprocessors import Execute

    class CappedExecute(Execute):
        """nbgrader's Execute with outputs capped per cell and per notebook (display updates
        included), timeouts explained in the cell, and a stop after two timeouts in a row."""

        def output(self, outs, msg, display_id, cell_index):
            used = self._used = getattr(self, "_used", {"total": 0})
            size = len(str(msg.get("content", "")))
            if used.get(cell_index, 0) + size > MAX_CELL_OUTPUT or used["total"] + size > MAX_NOTEBOOK_OUTPUT:
                if not used.get(("note", cell_index)):
                    used[("note", cell_index)] = True
                    outs.append(nbformat.v4.new_output("stream", name="stdout", text=_TRUNCATED.format(
                        MAX_CELL_OUTPUT >> 10, "")))
                return None
            used[cell_index] = used.get(cell_index, 0) + size
            used["total"] += size
            return super().output(outs, msg, display_id, cell_index)

        def _update_display_id(self, display_id, msg):
            if len(str(msg.get("content", ""))) <= MAX_CELL_OUTPUT // 4:  # larger updates are dropped
                super()._update_display_id(display_id, msg)

        def on_cell_executed(self, **kwargs):
            super().on_cell_executed(**kwargs)
            self.replied = getattr(self, "replied", set()) | {kwargs["cell_index"]}
            timed_out = kwargs["execute_reply"]["content"].get("ename") == "CellTimeoutError"
            if timed_out:
                self.timeouts = getattr(self, "timeouts", set()) | {kwargs["cell_index"]}
            if timed_out and getattr(self, "_timed_out", False):
                raise RuntimeError("kernel unresponsive: two cells in a row timed out")
            self._timed_out = timed_out

    return CappedExecute


def _start_kernel(sandbox, preload):
    """A started (not yet ready) kernel in a fresh empty folder: {"key", "km", "folder", "tmp", "group"}."""
    import secrets

    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    from .sandbox_kernel import GROUP_ENV, KERNEL_NAME, SandboxKernelManager

    tmp = tempfile.mkdtemp(prefix="conv-course-run-")
    folder = os.path.join(tmp, "run", "submission")
    os.makedirs(folder)
    group = f"k-{secrets.token_hex(8)}"
    if sandbox:
        km = SandboxKernelManager(kernel_name=KERNEL_NAME)
    else:
        km = AsyncKernelManager(kernel_name="python3")
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", CONV_COURSE_PRELOAD=",".join(preload), **{GROUP_ENV: group})
    run_sync(km.start_kernel)(cwd=folder, env=env)
    return {"key": (sandbox, tuple(preload)), "km": km, "folder": folder, "tmp": tmp,
            "group": group if sandbox else None}


def _kill(kernel):
    """Kill the kernel and everything it started (its whole cgroup, in the sandbox)."""
    from .sandbox import Group, Limits

    if kernel.get("group") and os.environ.get("CONV_COURSE_SANDBOX_CGROUPS") != "off":
        try:
            Group(Limits(), kernel["group"]).remove()
        except OSError:
            pass
    process = getattr(getattr(kernel["km"], "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        process.kill()


def _stop(kernel):
    from jupyter_core.utils import run_sync

    try:
        run_sync(kernel["km"].shutdown_kernel)(now=True)
    except Exception:  # noqa: BLE001  already dead: its sandbox took every process with it
        pass
    _kill(kernel)
    shutil.rmtree(kernel["tmp"], ignore_errors=True)


def close_spare():
    """Shut down this process's spare kernel, if any (also run at exit)."""
    spare = _SPARE.pop("kernel", None)
    if spare is not None:
        _stop(spare)


atexit.register(close_spare)


def _take_kernel(sandbox, preload, warm):
    """The spare kernel if it matches and is alive, else a fresh one; starts the next spare if `warm`."""
    from jupyter_core.utils import run_sync

    kernel = _SPARE.pop("kernel", None)
    if kernel is not None and (kernel["key"] != (sandbox, tuple(preload)) or not run_sync(kernel["km"].is_alive)()):
        _stop(kernel)
        kernel = None
    if kernel is None:
        kernel = _start_kernel(sandbox, preload)
    if warm:
        if not _SPARE.get("finalizer"):  # pool workers end with os._exit: atexit would not run
            import multiprocessing.util

            _SPARE["finalizer"] = multiprocessing.util.Finalize(None, close_spare, exitpriority=10)
        _SPARE["kernel"] = _start_kernel(sandbox, preload)
    return kernel


def write_files(folder, files):
    """Write {relative path: bytes} under `folder`; paths that would leave it are skipped."""
    for rel, data in files.items():
        path = os.path.normpath(os.path.join(folder, rel))
        if not path.startswith(folder + os.sep):
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


def _hand_over(folder, files):
    """Write the submission's files into a kernel's folder (the sandbox reads them, read-only, and
    copies them into its private folder when the first cell runs)."""
    write_files(folder, files)
    for root, dirs, names in os.walk(folder):
        os.chmod(root, 0o755)
        for name in names:
            os.chmod(os.path.join(root, name), 0o644)


def execute_notebook(nb, files, *, timeout, sandbox=True, preload=(), warm=False, judged=(), notebook_timeout=None):
    """Run `nb` with the submission's `files` beside it, in a kernel of its own. Returns (nb, error).

    Args:
        nb: the sanitized notebook (a NotebookNode); executed in place.
        files: {relative path: bytes} written into the kernel's folder before the first cell.
        timeout: seconds per cell (a timed-out cell is interrupted; two in a row stop the run).
        sandbox: the bubblewrap kernel (False: the instructor's own python3 kernel).
        preload: modules the kernel imports before it is ready (sandbox only), e.g. "torch".
        warm: start a spare kernel for this process's next call before running this one.
        judged: grade_ids of test cells the trusted re-check judges: not run here (no test
            source reaches the kernel), their outputs are left empty for the judge's.
        notebook_timeout: seconds for the whole notebook (default 4 x `timeout`); then the
            kernel is killed and the cells it did not reach score 0, with the reason.
    Returns:
        (nb, error): error is None, or why the kernel stopped (every test cell it did not reach
        gets a NotExecuted error output, so it scores 0).
    Raises:
        InfrastructureError: the kernel did not start, or failed before any student code ran.
    """
    sources = {}
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") in judged and cell.cell_type == "code":
            sources[i], cell.source = cell.source, ""
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PROBE))
    error = None
    executor = _executor_class()(timeout=timeout, interrupt_on_timeout=True, allow_errors=True)
    try:
        kernel = _take_kernel(sandbox, preload, warm)
    except Exception as err:  # noqa: BLE001  no student code has run
        nb.cells.pop(0)
        raise InfrastructureError(f"the grading kernel did not start: {type(err).__name__}: {str(err)[:300]}") from None
    import threading

    limit = notebook_timeout or 4 * timeout
    fired = []
    watchdog = threading.Timer(limit, lambda: (fired.append(True), _kill(kernel)))
    try:
        _hand_over(kernel["folder"], files)
        watchdog.start()
        executor.preprocess(nb, {"metadata": {"path": kernel["folder"]}}, km=kernel["km"])
    except Exception as err:  # noqa: BLE001  DeadKernelError, unresponsive kernel, start failure
        error = f"{type(err).__name__}: {str(err)[:300]}"
    finally:
        watchdog.cancel()
        _stop(kernel)
    if fired:
        error = (f"the notebook ran longer than its limit of {limit:g} s (the per-notebook limit) and was "
                 "stopped; make the slow cells faster")
    probe = nb.cells.pop(0)
    replied = {i - 1 for i in getattr(executor, "replied", set())}
    if -1 not in replied or any(o.get("output_type") == "error" for o in probe.get("outputs", [])):
        why = next((f"{o.get('ename')}: {o.get('evalue')}" for o in probe.get("outputs", [])
                    if o.get("output_type") == "error"), error or "no reply")
        raise InfrastructureError(f"the grading kernel failed before running student code ({why})")
    for i, source in sources.items():
        nb.cells[i].source = source
    timeouts = {i - 1 for i in getattr(executor, "timeouts", set())}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if i in timeouts:
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=(
                f"[this cell ran longer than the per-cell limit of {timeout} s and was stopped; the cells "
                "after it still ran. Make the code in this cell (or the functions it calls) faster.]\n")))
        # a test cell with no reply and no error would get full points
        if cell.cell_type == "code" and i not in replied and meta.get("grade") and i not in sources:
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="NotExecuted", evalue=error or "the cell did not run",
                traceback=[f"NotExecuted: {error or 'the cell did not run'}"]))
    cap_outputs(nb)
    return nb, error
