"""A bubblewrap sandbox for running student code: the grading kernel and the trusted re-check.

Inside the sandbox a process sees a read-only system (``/usr``, ``/etc``, Python and the venv,
the ``conv_course`` package), a private ``/tmp`` and exactly one writable folder: the
submission it grades. ``solutions/``, the gradebook, ``submitted/`` and other students'
folders are simply not there. It has its own network namespace (no network at all), its own
PID namespace (every process dies with it) and rlimits on memory, processes, file size, open
files and CPU time. Run as root, it also drops to a fresh unprivileged uid, so the process
limit counts only its own processes.

The grading kernel built on it (kernelspec, launcher, kernel manager) is in `sandbox_kernel`;
``conv-course sandbox install|check`` installs and tries both.
"""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from .. import PACKAGE_DIR, REPO_ROOT

__all__ = ["Limits", "SandboxUnavailable", "check", "bwrap_command", "start_sandboxed", "run_sandboxed",
           "REFERENCE_CODE", "reference_free", "seed_workdir", "Group", "cgroup_support", "sandbox_group", "SUBMISSION",
           "chown_tree", "fresh_uid", "apply_limits", "REPOSITORY_PROBE"]

_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "MPLCONFIGDIR": "/tmp/.mpl"}
# Runs inside the sandbox as root (privileged mode only): drop to the grading uid, then exec.
_DROP = ("import os,sys\nu=int(sys.argv[1])\nos.setgroups([]);os.setresgid(u,u,u);os.setresuid(u,u,u)\n"
         "os.execvp(sys.argv[2],sys.argv[2:])")


# What a reference-free sandbox hides: the course's reference ops and fine-tuning helpers, the
# checkers that compute expected values with them, and every installed library with a convolution.
# (grading/training.py and grading/finetuning.py stay: their student-side halves run there.)
REFERENCE_CODE = {"conv_course": ["ops.py", "_engine", "finetune.py", "grading/conv.py",
                                  "grading/channels.py", "grading/kernel_design.py", "grading/pooling.py",
                                  "grading/matmul.py", "grading/backward.py"],
                  "libraries": ["torch", "torchvision", "torchaudio", "scipy", "skimage", "sklearn", "cv2",
                                "tensorflow", "jax", "jaxlib"]}
_UNAVAILABLE = os.path.join(PACKAGE_DIR, "autograding", "_unavailable.py")


def reference_free(keep=()):
    """Paths to hide from student code so that it holds no reference implementation.

    Args:
        keep: modules the assignment's own instructor cells import (e.g. "torch" for a training
            assignment): their libraries stay. The course's reference ops are always hidden.
    Returns:
        list of absolute paths (package folders or module files) for `bwrap_command(hide=...)`.
    """
    import importlib.util

    kept = {m.split(".")[0] for m in keep}
    paths = [os.path.join(PACKAGE_DIR, name) for name in REFERENCE_CODE["conv_course"]]
    for name in REFERENCE_CODE["libraries"]:
        if name in kept:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.isabs(spec.origin):
            paths.append(os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin)
    return [p for p in paths if os.path.exists(p)]


def _hide_args(paths):
    """bwrap arguments that replace each hidden package or module by `_unavailable`."""
    args = []
    for path in paths:
        if os.path.isdir(path):
            args += ["--tmpfs", path, "--ro-bind", _UNAVAILABLE, os.path.join(path, "__init__.py")]
        else:
            args += ["--ro-bind", _UNAVAILABLE, path]
    return args


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Limits:
    """Limits of one sandbox. `memory` (bytes) and `nproc` (tasks, threads included) hold for the whole
    sandbox, every process together (a cgroup), and per process (rlimits: address space, processes);
    `tmp_size` bounds /tmp and `disk` the private copy of the working folder (both size-capped tmpfs)."""

    memory: int = 4 << 30
    nproc: int = 256
    fsize: int = 64 << 20
    nofile: int = 256
    cpu_seconds: int = 900
    tmp_size: int = 256 << 20
    disk: int = 256 << 20


_CGROUP_ROOTS = {"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}   # cgroup v1
_CGROUP_V2 = "/sys/fs/cgroup"


class Group:
    """A cgroup for one sandbox: memory and task limits over all its processes, and a sure kill.

    cgroup v2 (one hierarchy with the memory and pids controllers) or v1 (one each). Needs
    write access to the cgroup file system (root, or a delegated subtree).
    """

    def __init__(self, limits, name=None):
        self.name = name or f"s-{secrets.token_hex(8)}"
        self.paths = []
        for root, files in _cgroup_layout(limits):
            path = os.path.join(root, "conv-course", self.name)
            os.makedirs(path, exist_ok=True)
            self.paths.append(path)
            for file, value in files.items():
                with open(os.path.join(path, file), "w") as f:
                    f.write(str(value))

    def join(self, pid=0):
        """Move process `pid` (0: the caller) into the group; its children follow."""
        for path in self.paths:
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid or os.getpid()))

    def pids(self):
        found = set()
        for path in self.paths:
            try:
                with open(os.path.join(path, "cgroup.procs")) as f:
                    found |= {int(p) for p in f.read().split()}
            except OSError:
                pass
        return found

    def remove(self):
        """Kill every process in the group, then remove it."""
        import time

        for _ in range(50):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            if not pids:
                break
            time.sleep(0.02)
        for path in self.paths:
            try:
                os.rmdir(path)
            except OSError:
                pass


def _cgroup_layout(limits):
    """[(controller root, {file: value})] for this machine; [] when cgroups cannot be used here."""
    v2 = os.path.join(_CGROUP_V2, "cgroup.controllers")
    if os.path.exists(v2):
        with open(v2) as f:
            if {"memory", "pids"} <= set(f.read().split()):
                return [(_CGROUP_V2, {"memory.max": limits.memory, "memory.swap.max": 0, "pids.max": limits.nproc})]
    if all(os.path.isdir(p) for p in _CGROUP_ROOTS.values()):
        return [(_CGROUP_ROOTS["memory"], {"memory.limit_in_bytes": limits.memory}),
                (_CGROUP_ROOTS["pids"], {"pids.max": limits.nproc})]
    return []


def _sweep(age_s=600):
    """Remove empty groups older than `age_s` (left by sandboxes killed from outside, or by kernels
    that plain nbgrader started); a group still holding a process cannot be removed."""
    import time

    for root, _ in _cgroup_layout(Limits()):
        base = os.path.join(root, "conv-course")
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            try:
                if time.time() - os.stat(path).st_mtime > age_s:
                    os.rmdir(path)
            except OSError:
                pass


def cgroup_support():
    """(ok, detail): whether per-sandbox limits (cgroups) work here. Set CONV_COURSE_SANDBOX_CGROUPS=off
    to accept per-process limits only, where cgroups are not available (explicitly, never silently)."""
    if os.environ.get("CONV_COURSE_SANDBOX_CGROUPS") == "off":
        return True, "off (CONV_COURSE_SANDBOX_CGROUPS=off): per-process limits only"
    if not _cgroup_layout(Limits()):
        return False, "no cgroup file system with the memory and pids controllers (/sys/fs/cgroup)"
    try:
        group = Group(Limits(memory=64 << 20, nproc=8))
        group.remove()
    except OSError as err:
        return False, (f"cannot create a cgroup ({err.strerror}): run as root, or delegate a cgroup subtree, or set "
                       "CONV_COURSE_SANDBOX_CGROUPS=off to accept per-process limits only")
    return True, f"memory and pids limits per sandbox ({group.paths[0].rsplit('/conv-course/', 1)[0]})"


def sandbox_group(limits, name=None):
    """A `Group` for a new sandbox, or None where cgroups are explicitly off; raises SandboxUnavailable
    where they are needed and missing (fail closed)."""
    if os.environ.get("CONV_COURSE_SANDBOX_CGROUPS") == "off":
        return None
    _sweep()
    try:
        return Group(limits, name)
    except OSError as err:
        raise SandboxUnavailable(f"sandbox: per-sandbox limits need cgroups: {err}; see `conv-course sandbox check`") from None


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
    paths = ["/usr", "/etc", os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), PACKAGE_DIR]
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


# A file of the course repository that no sandbox may show (the check's probe).
REPOSITORY_PROBE = os.path.join(REPO_ROOT, "pyproject.toml")
SUBMISSION = "/run/submission"   # where a sandbox sees its working folder's host copy, read-only


def bwrap_command(argv, *, writable=(), binds=(), limits=Limits(), uid=None, env=None, cwd=None, hide=(),
                  private=None):
    """The full command line that runs `argv` in the sandbox.

    Args:
        argv: the program and its arguments, as seen inside.
        writable: host folders bound read-write at the same path (the submission).
        binds: (host_path, sandbox_path) pairs bound read-write (the kernel's socket folder).
        uid: the unprivileged uid to drop to when run as root (None: a fresh random one).
        hide: read-only paths to replace by a module that raises ImportError (`reference_free`).
        private: a host folder seen read-only at `SUBMISSION`, with an empty tmpfs of `limits.disk`
            bytes at its own path: the sandbox works on a private copy and cannot fill the host disk.
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
    cmd += _hide_args(hide)
    for host, inside in [(w, w) for w in writable] + list(binds):
        cmd += _mkdirs([inside], made) + ["--bind", host, inside]
    if private:
        cmd += _mkdirs([SUBMISSION, private], made) + ["--ro-bind", private, SUBMISSION, "--size", str(limits.disk),
                                                       "--perms", "1777", "--tmpfs", private]
    cmd += ["--chdir", cwd or private or (writable[0] if writable else "/tmp"), "--clearenv"]
    for key, value in {**_ENV, **(env or {})}.items():
        cmd += ["--setenv", key, str(value)]
    if privileged:
        uid = fresh_uid() if uid is None else uid
        argv = [sys.executable, "-I", "-S", "-c", _DROP, str(uid)] + list(argv)
    return cmd + ["--"] + list(argv)


def fresh_uid():
    """A random unprivileged uid for one sandbox (root mode), outside any real user's range."""
    return 1_000_000 + secrets.randbelow(1_000_000_000)


def apply_limits(limits):
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


def start_sandboxed(argv, *, workdir, extra_writable=(), writable_files=(), limits=Limits(), env=None,
                    output=subprocess.PIPE, hide=()):
    """Start `argv` in a fresh sandbox of its own cgroup, cwd a private copy of `workdir`.

    Args:
        workdir: host folder the sandbox sees read-only at `SUBMISSION` and copies (it may; the
            runner does) into a size-capped tmpfs at the same path, its working folder.
        extra_writable: host folders bound read-write; as root they stay root's, so the sandbox can
            write only the `writable_files` in them, which it is given (pre-created, bounded by fsize).
    Returns:
        subprocess.Popen, leader of its own session, with `.group` (a `Group`, or None where cgroups
        are explicitly off): `remove()` it when the process is done.
    """
    uid = fresh_uid() if os.geteuid() == 0 else None
    if uid is not None:
        for path in writable_files:
            os.lchown(path, uid, uid)
    _readable(workdir)
    group = sandbox_group(limits)
    cmd = bwrap_command(argv, writable=list(extra_writable), limits=limits, uid=uid, env=env, cwd=workdir,
                        hide=hide, private=workdir)

    def enter():
        if group is not None:
            group.join()
        apply_limits(limits)

    try:
        proc = subprocess.Popen(cmd, stdout=output, stderr=output, preexec_fn=enter, start_new_session=True)
    except BaseException:
        if group is not None:
            group.remove()
        raise
    proc.group = group
    return proc


def seed_workdir(dest="."):
    """Inside a sandbox: copy the read-only submission (`SUBMISSION`) into the private working folder.

    Regular files and folders only; returns the number of files copied (0 outside a sandbox)."""
    count = 0
    for root, dirs, files in os.walk(SUBMISSION):
        rel = os.path.relpath(root, SUBMISSION)
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
        for name in files:
            src = os.path.join(root, name)
            if os.path.isfile(src) and not os.path.islink(src):
                shutil.copyfile(src, os.path.join(dest, rel, name))
                count += 1
    return count


def _readable(folder):
    """Let any uid read `folder` (its files are copied in by the sandbox's own uid)."""
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)


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
    finally:
        if proc.group is not None:
            proc.group.remove()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


_PROBE = """import json, os, socket, sys
r = {"uid": os.getuid(), "pid": os.getpid(), "hidden": not os.path.exists(sys.argv[1])}
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2); r["network"] = True
except OSError:
    r["network"] = False
print(json.dumps(r))"""


def check(secret=None):
    """Try the sandbox for real. Returns a list of (what, ok, detail).

    The checks: bubblewrap runs, namespaces work, no network, `secret` (a file the grader can read
    and student code must not; default the repository's `REPOSITORY_PROBE`) is hidden, the uid is
    unprivileged, and per-sandbox limits hold. A secret that does not exist on this machine fails
    its check: absence inside the sandbox would prove nothing.
    """
    results = []
    try:
        bwrap = _bwrap()
        results.append(("bubblewrap installed", True, bwrap))
    except SandboxUnavailable as err:
        return [("bubblewrap installed", False, str(err))]
    secret = secret or REPOSITORY_PROBE
    with tempfile.TemporaryDirectory() as work:
        proc = run_sandboxed([sys.executable, "-I", "-c", _PROBE, secret], workdir=work, timeout=60)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()[-400:]
        return results + [("namespaces usable", False, detail + " (user namespaces disabled? see "
                           "/proc/sys/user/max_user_namespaces; or pass --no-sandbox)")]
    probe = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    results.append(("namespaces usable", True, f"pid inside = {probe['pid']}"))
    results.append(("no network", not probe["network"], "connect() fails" if not probe["network"] else "CONNECTED"))
    if os.path.isfile(secret):
        results.append(("repository hidden", probe["hidden"], f"{secret} {'not ' if probe['hidden'] else ''}"
                        "visible inside"))
    else:
        results.append(("repository hidden", False, f"cannot test: {secret} does not exist on this machine"))
    results.append(("unprivileged uid", probe["uid"] != 0, f"uid {probe['uid']}"))
    results.append(("per-sandbox limits", *cgroup_support()))
    return results
