"""The bubblewrap sandbox: what a process inside can see and do, and its limits."""

import os
import subprocess
import sys
import time

import pytest

from conv_course import sandbox
from conv_course.sandbox import Limits, run_sandboxed

pytestmark = pytest.mark.skipif(not sandbox.shutil.which("bwrap"), reason="needs bubblewrap (setup.sh --system)")


def _py(code, workdir, **kwargs):
    proc = run_sandboxed([sys.executable, "-I", "-c", code], workdir=str(workdir), **kwargs)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_outside_files_are_invisible_and_only_workdir_is_writable(tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "gradebook.db").write_text("grades")
    work = tmp_path / "work"
    work.mkdir()
    code = f"""import os
print(os.path.exists({str(secret)!r}), os.path.exists({os.path.dirname(sandbox._PACKAGE_DIR) + '/tests'!r}))
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
    assert (work / "mine.txt").read_text() == "ok"


def test_no_network(tmp_path):
    code, out, _ = _py("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                       "    print('CONNECTED')\nexcept OSError as e:\n    print('blocked', e.errno)", tmp_path)
    assert code == 0 and out.startswith("blocked")


def test_memory_limit_raises_memory_error(tmp_path):
    code, out, _ = _py("try:\n    b = bytearray(1 << 30)\n    print('ALLOCATED')\nexcept MemoryError:\n"
                       "    print('MemoryError')", tmp_path, limits=Limits(memory=512 << 20))
    assert out.strip() == "MemoryError"


def test_file_size_limit(tmp_path):
    code, out, _ = _py("try:\n    open('big', 'wb').write(bytes(2 << 20))\nexcept OSError as e:\n    print(e.errno)",
                       tmp_path, limits=Limits(fsize=1 << 20))
    assert out.strip() == "27"  # EFBIG
    assert os.path.getsize(tmp_path / "big") <= 1 << 20


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
