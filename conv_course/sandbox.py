"""A bubblewrap sandbox for running student code: the grading kernel and the trusted re-check.

Inside the sandbox a process sees a read-only system (``/usr``, ``/etc``, Python and the venv,
the ``conv_course`` package), a private ``/tmp`` and exactly one writable folder: the
submission it grades. ``solutions/``, the gradebook, ``submitted/`` and other students'
folders are simply not there. It has its own network namespace (no network at all), its own
PID namespace (every process dies with it) and rlimits on memory, processes, file size, open
files and CPU time. Run as root, it also drops to a fresh unprivileged uid, so the process
limit counts only its own processes.

The kernel talks to nbclient over ``ipc`` (unix sockets): the launcher makes a private socket
folder, mounts it where the connection file says the sockets are, and leaves symlinks there
on the host side. Use with nbgrader::

    c.Execute.kernel_name = "conv-course-sandbox"
    c.KernelManager.transport = "ipc"
"""

import argparse
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = ["KERNEL_NAME", "Limits", "SandboxUnavailable", "kernelspec", "install", "check",
           "bwrap_command", "start_sandboxed", "run_sandboxed", "preflight", "launch", "SandboxKernelManager",
           "WORKDIR_MARKER", "chown_tree", "socket_root",
           "add_sandbox_arguments", "run_sandbox"]

KERNEL_NAME = "conv-course-sandbox"
WORKDIR_MARKER = ".conv-course-sandbox-workdir"   # folders the launcher may hand to the sandbox uid
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp/.mpl"}
# Runs inside the sandbox as root (privileged mode only): drop to the grading uid, then exec.
_DROP = ("import os,sys\nu=int(sys.argv[1])\nos.setgroups([]);os.setresgid(u,u,u);os.setresuid(u,u,u)\n"
         "os.execvp(sys.argv[2],sys.argv[2:])")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Limits:
    """Per-sandbox rlimits. memory is the address space (bytes); nproc counts threads too."""

    memory: int = 4 << 30
    nproc: int = 256
    fsize: int = 64 << 20
    nofile: int = 256
    cpu_seconds: int = 900
    tmp_size: int = 256 << 20


def _bwrap():
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "sandbox: `bwrap` (bubblewrap) not found. Install it (Debian: apt-get install bubblewrap, or "
            "`bash scripts/setup.sh --system`), or pass --no-sandbox to run student code UNSANDBOXED "
            "as yourself (only for code you trust).")
    return path


def _ro_paths():
    """Read-only binds: the system, this Python, the venv and the conv_course package."""
    paths = ["/usr", "/etc", os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), _PACKAGE_DIR]
    for extra in ("/opt/conda",):
        if sys.prefix.startswith(extra):
            paths.append(extra)
    out = []
    for p in paths:
        if os.path.isdir(p) and not any(p == q or p.startswith(q + "/") for q in out):
            out = [q for q in out if not q.startswith(p + "/")] + [p]
    return out


def _mkdirs(dests, made):
    """bwrap creates missing parents 0700; make them 0755 so the dropped uid can walk them."""
    args = []
    for dest in dests:
        parts = dest.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in made and d not in ("/usr", "/tmp", "/etc"):
                made.add(d)
                args += ["--perms", "0755", "--dir", d]
    return args


def bwrap_command(argv, *, writable=(), binds=(), limits=Limits(), uid=None, env=None, cwd=None):
    """The full command line that runs `argv` in the sandbox.

    Args:
        argv: the program and its arguments, as seen inside.
        writable: host folders bound read-write at the same path (the submission).
        binds: (host_path, sandbox_path) pairs bound read-write (the kernel's socket folder).
        uid: the unprivileged uid to drop to when run as root (None: a fresh random one).
        env: extra environment variables; nothing else of the caller's environment passes.
    Returns:
        list of str, starting with the bwrap executable.
    """
    cmd = [_bwrap(), "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
           "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    privileged = os.geteuid() == 0
    if privileged:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-user"]
    made = set()
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):
            cmd += ["--symlink", os.readlink("/" + link), "/" + link]
        elif os.path.isdir("/" + link):
            cmd += ["--ro-bind", "/" + link, "/" + link]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_size), "--perms", "1777",
            "--tmpfs", "/tmp"]
    ro = _ro_paths()
    cmd += _mkdirs(ro, made)
    for p in ro:
        cmd += ["--ro-bind", p, p]
    for host, inside in [(w, w) for w in writable] + list(binds):
        cmd += _mkdirs([inside], made) + ["--bind", host, inside]
    cmd += ["--chdir", cwd or (writable[0] if writable else "/tmp"), "--clearenv"]
    for key, value in {**_ENV, **(env or {})}.items():
        cmd += ["--setenv", key, str(value)]
    if privileged:
        uid = _fresh_uid() if uid is None else uid
        argv = [sys.executable, "-I", "-S", "-c", _DROP, str(uid)] + list(argv)
    return cmd + ["--"] + list(argv)


def _fresh_uid():
    return 1_000_000 + secrets.randbelow(1_000_000_000)


def _set_limits(limits):
    """rlimits for the sandbox, applied to the calling process before it execs bwrap."""
    import resource

    nproc = limits.nproc
    if os.geteuid() != 0:  # unprivileged: the limit counts all of the caller's processes
        nproc += sum(1 for p in os.listdir("/proc") if p.isdigit() and _owned(p))
    for name, value in (("RLIMIT_AS", limits.memory), ("RLIMIT_NPROC", nproc),
                        ("RLIMIT_FSIZE", limits.fsize), ("RLIMIT_NOFILE", limits.nofile),
                        ("RLIMIT_CPU", limits.cpu_seconds), ("RLIMIT_CORE", 0)):
        resource.setrlimit(getattr(resource, name), (value, value))


def _owned(pid):
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def chown_tree(path, uid):
    """Give `path` and everything under it (links themselves, not their targets) to `uid`."""
    for root, dirs, files in os.walk(path):
        for name in [root] + [os.path.join(root, f) for f in dirs + files]:
            os.lchown(name, uid, uid)


def start_sandboxed(argv, *, workdir, extra_writable=(), limits=Limits(), env=None, output=subprocess.PIPE):
    """Start `argv` in a fresh sandbox, cwd `workdir`; writable: `workdir`, `extra_writable`, /tmp.

    Returns:
        subprocess.Popen, leader of its own session (kill the group to kill the sandbox).
    """
    uid = _fresh_uid() if os.geteuid() == 0 else None
    writable = [workdir, *extra_writable]
    if uid is not None:
        for folder in writable:
            chown_tree(folder, uid)
    cmd = bwrap_command(argv, writable=writable, limits=limits, uid=uid, env=env, cwd=workdir)
    return subprocess.Popen(cmd, stdout=output, stderr=output, preexec_fn=lambda: _set_limits(limits),
                            start_new_session=True)


def run_sandboxed(argv, *, workdir, extra_writable=(), limits=Limits(), timeout=60, env=None):
    """`start_sandboxed`, then wait at most `timeout` seconds (then kill everything).

    Returns:
        subprocess.CompletedProcess (stdout/stderr as bytes); returncode -9 after a timeout.
    """
    proc = start_sandboxed(argv, workdir=workdir, extra_writable=extra_writable, limits=limits, env=env)
    cmd = proc.args
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(cmd, -9, out, err + b"\nsandbox: timed out")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def kernelspec(limits=None):
    """The kernel.json of the sandboxed kernel (`interrupt_mode` message: timeouts interrupt)."""
    argv = [sys.executable, "-m", "conv_course.sandbox", "launch", "{connection_file}"]
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


_PROBE = """import json, os, socket, sys
r = {"uid": os.getuid(), "pid": os.getpid(), "hidden": not os.path.exists(sys.argv[1])}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); r["network"] = True
except OSError:
    r["network"] = False
print(json.dumps(r))"""


def check():
    """Try the sandbox for real. Returns a list of (what, ok, detail)."""
    results = []
    try:
        bwrap = _bwrap()
        results.append(("bubblewrap installed", True, bwrap))
    except SandboxUnavailable as err:
        return [("bubblewrap installed", False, str(err))]
    outside = os.path.dirname(_PACKAGE_DIR)
    with tempfile.TemporaryDirectory() as work:
        proc = run_sandboxed([sys.executable, "-I", "-c", _PROBE, os.path.join(outside, "README.md")],
                             workdir=work, timeout=60)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()[-400:]
        return results + [("namespaces usable", False, detail + " (user namespaces disabled? see "
                           "/proc/sys/user/max_user_namespaces; or pass --no-sandbox)")]
    probe = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    results.append(("namespaces usable", True, f"pid inside = {probe['pid']}"))
    results.append(("no network", not probe["network"], "connect() fails" if not probe["network"] else "CONNECTED"))
    results.append(("repository hidden", probe["hidden"], outside))
    results.append(("unprivileged uid", probe["uid"] != 0, f"uid {probe['uid']}"))
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        ok = spec.argv[:1] == [sys.executable] and spec.interrupt_mode == "message"
        results.append(("kernelspec installed", ok, spec.resource_dir))
    except NoSuchKernel:
        results.append(("kernelspec installed", False, "run `conv-course sandbox install`"))
    return results


def preflight():
    """Raise SandboxUnavailable unless bwrap runs here; install the kernelspec if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    failed = [f"{what}: {detail}" for what, ok, detail in check()[:3] if not ok]
    if failed:
        raise SandboxUnavailable("; ".join(failed))
    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        install()


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
    uid = _fresh_uid() if privileged else os.getuid()
    cwd = os.getcwd()
    sock_dir, prefix = os.path.split(info["ip"])
    if not os.path.isabs(info["ip"]) or cwd == sock_dir or cwd.startswith(sock_dir.rstrip("/") + "/"):
        sys.exit("conv-course sandbox: the ipc socket path must be absolute and outside the notebook's "
                 f"folder (got ip={info['ip']!r}, cwd={cwd!r}); use conv_course.sandbox.SandboxKernelManager "
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
    writable = [cwd] if cwd != "/" else []
    if privileged:
        chown_tree(private, uid)
        if any(os.path.exists(os.path.join(d, WORKDIR_MARKER)) for d in (cwd, os.path.dirname(cwd),
                                                                         os.path.dirname(os.path.dirname(cwd)))):
            chown_tree(cwd, uid)
    argv = [sys.executable, "-m", "conv_course._kernel", "-f", inner_conn, "--HistoryManager.hist_file=:memory:",
            *extra_args]
    passed = {k: os.environ[k] for k in ("NBGRADER_EXECUTION", "CONV_COURSE_PRELOAD") if k in os.environ}
    cmd = bwrap_command(argv, writable=writable, binds=[(private, sock_dir)], limits=limits, uid=uid,
                        cwd=cwd, env=passed)
    _set_limits(limits)
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
    parser = argparse.ArgumentParser(prog="python -m conv_course.sandbox")
    parser.add_argument("command", choices=["launch"])
    parser.add_argument("connection_file")
    args, extra = parser.parse_known_args(argv)
    launch(args.connection_file, extra)


if __name__ == "__main__":
    _main(sys.argv[1:])
