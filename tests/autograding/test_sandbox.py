"""The bubblewrap sandbox: what a process inside can see and do, and its limits."""

import os
import subprocess
import sys
import time

import pytest

from conv_course import PACKAGE_DIR, REPO_ROOT
from conv_course.autograding import sandbox
from conv_course.autograding.sandbox import Limits, run_sandboxed

pytestmark = pytest.mark.skipif(not sandbox.shutil.which("bwrap"), reason="needs bubblewrap (setup.sh --system)")


def _py(code, workdir, **kwargs):
    proc = run_sandboxed([sys.executable, "-I", "-c", code], workdir=str(workdir), **kwargs)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_outside_files_are_invisible_and_writes_stay_private(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "gradebook.db").write_text("grades")
    work = tmp_path / "work"
    work.mkdir()
    code = f"""import os
print(os.path.exists({str(secret)!r}), os.path.exists({os.path.join(REPO_ROOT, 'tests')!r}))
open('mine.txt', 'w').write('ok')
for path in ('/usr/evil', '/etc/evil', {sys.prefix + '/evil'!r}):
    try:
        open(path, 'w'); print('WROTE', path)
    except OSError:
        pass
print(os.getuid() != 0, os.environ.get('CONV_SECRET'))"""
    os.environ["CONV_SECRET"] = "token"
    try:
        code, out, err = _py(code, work)
    finally:
        del os.environ["CONV_SECRET"]
    assert code == 0, err
    assert out.split() == ["False", "False", str(os.geteuid() == 0), "None"]
    assert not (work / "mine.txt").exists()  # the sandbox wrote into its private copy, not the host disk


def test_the_submission_is_seen_read_only_and_copied_into_a_capped_private_folder(tmp_path):
    (tmp_path / "data.txt").write_text("input")
    code = ("from conv_course.autograding.sandbox import seed_workdir\nprint(seed_workdir(), open('data.txt').read())\n"
            "try:\n    open('/run/submission/x', 'w')\nexcept OSError as e:\n    print('read-only', e.errno)\n"
            "try:\n    open('big', 'wb').write(bytes(40 << 20))\nexcept OSError as e:\n    print('full', e.errno)\n")
    limits = sandbox.Limits(disk=16 << 20)
    proc = sandbox.run_sandboxed([sys.executable, "-I", "-c", code], workdir=str(tmp_path), limits=limits, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert proc.stdout.decode().split() == ["1", "input", "read-only", "30", "full", "28"]  # EROFS, ENOSPC
    assert sorted(os.listdir(tmp_path)) == ["data.txt"]


@pytest.mark.skipif(os.environ.get("CONV_COURSE_SANDBOX_CGROUPS") == "off", reason="cgroups switched off")
def test_memory_is_limited_for_the_whole_sandbox_not_per_process(tmp_path):
    """Three processes of 100 MB each: within every per-process limit, over the sandbox's 200 MB."""
    code = ("import os, time\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
            "        b = bytearray(100 << 20)\n        time.sleep(2)\n        os._exit(0)\n    kids.append(pid)\n"
            "print(sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids))")
    limits = sandbox.Limits(memory=200 << 20)
    proc = sandbox.run_sandboxed([sys.executable, "-I", "-c", code], workdir=str(tmp_path), limits=limits, timeout=60)
    codes = proc.stdout.decode().strip()
    assert codes and codes != "[0, 0, 0]" and "-9" in codes, (codes, proc.stderr.decode()[-1000:])


def test_no_network(tmp_path):
    code, out, _ = _py("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                       "    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e.errno)", tmp_path)
    assert code == 0 and out.startswith("blocked")


def test_memory_limit_raises_memory_error(tmp_path):
    code, out, _ = _py("try:\n    b = bytearray(1 << 30)\n    print('ALLOCATED')\nexcept MemoryError:\n"
                       "    print('MemoryError')", tmp_path, limits=Limits(memory=512 << 20))
    assert out.strip() == "MemoryError"


def test_file_size_limit(tmp_path):
    code, out, _ = _py("import os\ntry:\n    open('big', 'wb').write(bytes(2 << 20))\nexcept OSError as e:\n"
                       "    print(e.errno, os.path.getsize('big') <= 1 << 20)", tmp_path, limits=Limits(fsize=1 << 20))
    assert out.split() == ["27", "True"]  # EFBIG


def test_fork_bomb_is_bounded_and_reaped(tmp_path):
    bomb = ("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(600)\n"
            "        n += 1\nexcept OSError:\n    print(n)")
    start = time.monotonic()
    code, out, _ = _py(bomb, tmp_path, limits=Limits(nproc=40), timeout=30)
    assert 0 < int(out.strip()) < 40
    assert time.monotonic() - start < 30
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert ps.count("-I -c import os, time") == 0


def test_timeout_kills_everything(tmp_path):
    start = time.monotonic()
    proc = run_sandboxed(["sh", "-c", "sleep 731 & sleep 732"], workdir=str(tmp_path), timeout=2)
    assert proc.returncode == -9 and time.monotonic() - start < 10
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 731" not in ps and "sleep 732" not in ps


def test_missing_bwrap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="--no-sandbox"):
        sandbox.bwrap_command(["true"])
    assert sandbox.check()[0][1] is False


def test_check_passes_here():
    results = sandbox.check()
    assert [ok for _, ok, _ in results[:5]] == [True] * 5, results


def test_the_whole_package_is_bound_read_only_so_student_kernels_import_grading(tmp_path):
    """The bind is the package folder itself (conv_course.PACKAGE_DIR), not the folder of the
    module that computes it: a kernel must import `conv_course.grading`, not only `autograding`."""
    assert any(PACKAGE_DIR == p or PACKAGE_DIR.startswith(p + os.sep) for p in sandbox._ro_paths())
    code, out, err = _py("import conv_course.grading, conv_course.autograding.sandbox; print('ok')", tmp_path)
    assert code == 0 and out.split() == ["ok"], err


def test_the_repository_check_probes_a_file_that_exists_on_the_host(monkeypatch, tmp_path):
    """A probe that never exists would pass whatever the sandbox shows."""
    assert os.path.isfile(sandbox.REPOSITORY_PROBE)
    assert os.path.commonpath([sandbox.REPOSITORY_PROBE, REPO_ROOT]) == REPO_ROOT
    results = {what: (ok, detail) for what, ok, detail in sandbox.check()}
    assert results["repository hidden"][0], results["repository hidden"][1]
    missing = str(tmp_path / "no-such-file")
    results = {what: (ok, detail) for what, ok, detail in sandbox.check(secret=missing)}
    assert results["repository hidden"] == (False, f"cannot test: {missing} does not exist on this machine")
