"""The sandboxed grading kernel: a kernelspec whose launcher runs ipykernel inside `sandbox`.

The kernel talks to nbclient over ``ipc`` (unix sockets; it has no network): the launcher makes
a private socket folder, mounts it where the connection file says the sockets are, and leaves
symlinks there on the host side. `SandboxKernelManager` picks a fresh socket folder under
`socket_root` for every kernel. Use with nbgrader::

    c.Execute.kernel_name = "conv-course-sandbox"
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = os.path.join(tempfile.gettempdir(), f"conv-course-sandbox-{os.getuid()}", "ipc", "kernel")
"""

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile

from ..grading._i18n import LANG_ENV
from . import sandbox
from .sandbox import Limits, SandboxUnavailable, apply_limits, bwrap_command, chown_tree, fresh_uid, sandbox_group

__all__ = ["KERNEL_NAME", "GROUP_ENV", "kernelspec", "install", "socket_root", "launch", "SandboxKernelManager",
           "kernelspec_state", "check", "preflight", "add_sandbox_arguments", "run_sandbox"]

KERNEL_NAME = "conv-course-sandbox"
GROUP_ENV = "CONV_COURSE_CGROUP"   # the name of the kernel's cgroup, so its starter can remove it


def kernelspec(limits=None):
    """The kernel.json of the sandboxed kernel (`interrupt_mode` message: timeouts interrupt)."""
    argv = [sys.executable, "-m", "conv_course.autograding.sandbox_kernel", "launch", "{connection_file}"]
    env = {}
    if limits is not None:
        env["CONV_COURSE_SANDBOX_LIMITS"] = json.dumps(limits.__dict__)
    return {"argv": argv, "display_name": "Python 3 (conv-course sandbox)", "language": "python",
            "interrupt_mode": "message", "env": env, "metadata": {"debugger": False}}


def install(prefix=None, limits=None):
    """Install the kernelspec under `prefix` (default: this venv). Returns its folder."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)  # copied with its mode: other users (graders) must be able to read it
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(kernelspec(limits), f, indent=1)
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, prefix=prefix or sys.prefix)


def socket_root():
    """This user's folder for kernel sockets, ``<tmp>/conv-course-sandbox-<uid>`` (one per user:
    graders who share a machine must not share it). Raises SandboxUnavailable if someone else made it."""
    path = os.path.join(tempfile.gettempdir(), f"conv-course-sandbox-{os.getuid()}")
    os.makedirs(path, mode=0o711, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise SandboxUnavailable(f"{path} must be a folder that you own and only you can write; remove it")
    return path


def _limits_from_env():
    raw = os.environ.get("CONV_COURSE_SANDBOX_LIMITS")
    return Limits(**json.loads(raw)) if raw else Limits()


def launch(connection_file, extra_args=()):
    """Start ipykernel in the sandbox for `connection_file` (kernelspec entry point; execs bwrap)."""
    with open(connection_file) as f:
        info = json.load(f)
    if info.get("transport") != "ipc":
        sys.exit("conv-course sandbox: the kernel has no network, so it needs the ipc transport; "
                 "configure c.KernelManager.transport = 'ipc' (got transport="
                 f"{info.get('transport')!r})")
    limits = _limits_from_env()
    privileged = os.geteuid() == 0
    uid = fresh_uid() if privileged else os.getuid()
    cwd = os.getcwd()
    sock_dir, prefix = os.path.split(info["ip"])
    if not os.path.isabs(info["ip"]) or cwd == sock_dir or cwd.startswith(sock_dir.rstrip("/") + "/"):
        sys.exit("conv-course sandbox: the ipc socket path must be absolute and outside the notebook's "
                 f"folder (got ip={info['ip']!r}, cwd={cwd!r}); use conv_course.autograding.sandbox_kernel.SandboxKernelManager "
                 f"or set c.KernelManager.ip = '{os.path.join(socket_root(), 'ipc', 'kernel')}'")
    os.makedirs(sock_dir, mode=0o700, exist_ok=True)
    private = tempfile.mkdtemp(prefix=".private-", dir=sock_dir)
    ports = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
    for port in ports:  # the client connects through these; the kernel binds inside `private`
        link = os.path.join(sock_dir, f"{prefix}-{port}")
        if not os.path.lexists(link):
            os.symlink(os.path.join(private, f"{prefix}-{port}"), link)
    inner_conn = os.path.join(sock_dir, os.path.basename(connection_file))
    shutil.copy(connection_file, os.path.join(private, os.path.basename(connection_file)))
    if privileged:
        chown_tree(private, uid)
    argv = [sys.executable, "-m", "conv_course.autograding._preload_kernel", "-f", inner_conn, "--HistoryManager.hist_file=:memory:",
            *extra_args]
    passed = {k: os.environ[k] for k in ("NBGRADER_EXECUTION", "CONV_COURSE_PRELOAD", LANG_ENV) if k in os.environ}
    # the notebook's folder is seen read-only; the kernel works on a private, size-capped copy of it
    cmd = bwrap_command(argv, binds=[(private, sock_dir)], limits=limits, uid=uid, cwd=cwd, env=passed,
                        private=cwd if cwd != "/" else None)
    group = sandbox_group(limits, os.environ.get(GROUP_ENV))
    if group is not None:
        group.join()  # every process of the kernel, together, within the limits; killed with the group
    apply_limits(limits)
    if not os.environ.get("CONV_COURSE_SANDBOX_DEBUG"):  # ipykernel's banner is noise in a grading run
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    os.execv(cmd[0], cmd)


def _kernel_manager_class():
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class SandboxKernelManager(AsyncKernelManager):
        """An AsyncKernelManager for the sandboxed kernel: ipc sockets in a fresh private folder."""

        @default("transport")
        def _transport_default(self):
            return "ipc"

        @default("ip")
        def _ip_default(self):
            self._socket_folder = tempfile.mkdtemp(prefix="c-", dir=socket_root())
            return os.path.join(self._socket_folder, "kernel")

        async def _async_cleanup_resources(self, restart=False):
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(getattr(self, "_socket_folder", ""), ignore_errors=True)

    SandboxKernelManager.__qualname__ = "SandboxKernelManager"
    return SandboxKernelManager


def __getattr__(name):
    if name == "SandboxKernelManager":  # built on first use: the launcher never imports jupyter_client
        globals()[name] = _kernel_manager_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The launcher module before the grading pipeline moved into conv_course.autograding: a kernelspec
# that still names it cannot start (instructors reinstall once).
_OLD_LAUNCHER = "conv_course.sandbox_kernel"


def kernelspec_state():
    """(ok, detail): the grading kernelspec is installed and launches this code with this Python."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return False, "not installed: run `conv-course sandbox install`"
    if _OLD_LAUNCHER in spec.argv:
        return False, (f"{spec.resource_dir} was installed by an older conv_course (it runs {_OLD_LAUNCHER}, "
                       "which moved to conv_course.autograding): reinstall it once with `conv-course sandbox install`")
    if spec.argv != kernelspec()["argv"] or spec.interrupt_mode != "message":
        return False, f"{spec.resource_dir} is out of date: run `conv-course sandbox install`"
    return True, spec.resource_dir


def check():
    """`sandbox.check`'s results, then whether the grading kernelspec is installed and current."""
    return sandbox.check() + [("kernelspec installed", *kernelspec_state())]


def preflight():
    """Raise SandboxUnavailable unless bwrap runs here; install the kernelspec if missing or stale."""
    failed = [f"{what}: {detail}" for what, ok, detail in sandbox.check() if not ok]
    if failed:
        raise SandboxUnavailable("; ".join(failed))
    if not kernelspec_state()[0]:
        install()


def add_sandbox_arguments(parser):
    parser.add_argument("action", choices=["install", "check"],
                        help="install the kernelspec into this venv, or check that the sandbox works")
    parser.add_argument("--prefix", default=None, help="kernelspec prefix (default: sys.prefix)")


def run_sandbox(args):
    if args.action == "install":
        path = install(prefix=args.prefix)
        print(f"sandbox: installed kernelspec {KERNEL_NAME!r} in {path}")
    results = check()
    width = max(len(r[0]) for r in results)
    for what, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {what.ljust(width)}  {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def _main(argv):
    parser = argparse.ArgumentParser(prog="python -m conv_course.autograding.sandbox_kernel")
    parser.add_argument("command", choices=["launch"])
    parser.add_argument("connection_file")
    args, extra = parser.parse_known_args(argv)
    launch(args.connection_file, extra)


if __name__ == "__main__":
    _main(sys.argv[1:])
