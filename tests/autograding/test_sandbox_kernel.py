"""The sandboxed grading kernel: its kernelspec, launcher, kernel manager and socket folder."""

import json
import os
import subprocess
import sys

import nbformat
import pytest

from conv_course.autograding import sandbox, sandbox_kernel

pytestmark = pytest.mark.skipif(not sandbox.shutil.which("bwrap"), reason="needs bubblewrap (setup.sh --system)")


def test_kernelspec_interrupts_by_message_and_wraps_this_python():
    spec = sandbox_kernel.kernelspec()
    assert spec["interrupt_mode"] == "message"
    assert spec["argv"][0] == sys.executable and "{connection_file}" in spec["argv"]
    assert spec["argv"][1:4] == ["-m", "conv_course.autograding.sandbox_kernel", "launch"]


def test_install_writes_the_kernelspec_under_prefix(tmp_path):
    folder = sandbox_kernel.install(prefix=str(tmp_path))
    with open(os.path.join(folder, "kernel.json")) as f:
        assert json.load(f)["interrupt_mode"] == "message"
    assert folder.startswith(str(tmp_path)) and folder.endswith(sandbox_kernel.KERNEL_NAME)
    assert os.stat(folder).st_mode & 0o555 == 0o555  # graders who are not the installer can use it


def test_launcher_refuses_tcp(tmp_path):
    conn = tmp_path / "kernel.json"
    conn.write_text(json.dumps({"transport": "tcp", "ip": "127.0.0.1"}))
    proc = subprocess.run([sys.executable, "-m", "conv_course.autograding.sandbox_kernel", "launch", str(conn)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0 and "ipc" in proc.stderr


def test_kernel_runs_sandboxed_and_timeouts_interrupt(tmp_path):
    from nbclient import NotebookClient

    sandbox_kernel.preflight()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (
        "import os; print(os.getuid() != 0, os.getcwd())",
        "while True:\n    pass",
        "print('alive')")]
    client = NotebookClient(nb, kernel_name=sandbox_kernel.KERNEL_NAME, timeout=3, interrupt_on_timeout=True,
                            allow_errors=True, kernel_manager_class=sandbox_kernel.SandboxKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.error_on_timeout = {"ename": "CellTimeoutError", "evalue": "", "traceback": []}
    client.execute()
    assert nb.cells[0].outputs[0]["text"].split() == ["True", str(tmp_path)]
    assert any(o.get("ename") == "KeyboardInterrupt" for o in nb.cells[1].outputs)
    assert nb.cells[2].outputs[0]["text"] == "alive\n"


def test_the_sandboxed_kernel_receives_the_feedback_language_and_nothing_else(tmp_path, monkeypatch):
    """CONV_COURSE_LANG is allow-listed into the sandbox, so the checkers there answer in that language."""
    from nbclient import NotebookClient

    sandbox_kernel.preflight()
    monkeypatch.setenv("CONV_COURSE_LANG", "zh_CN")
    monkeypatch.setenv("CONV_COURSE_NOT_PASSED", "1")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nfrom conv_course.grading._core import not_implemented\n"
        "print(os.environ.get('CONV_COURSE_LANG'), os.environ.get('CONV_COURSE_NOT_PASSED'))\n"
        "print(not_implemented('corr2d'))")]
    NotebookClient(nb, kernel_name=sandbox_kernel.KERNEL_NAME, timeout=60,
                   kernel_manager_class=sandbox_kernel.SandboxKernelManager,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert nb.cells[0].outputs[0]["text"] == ("zh_CN None\n"
                                              "`corr2d` 还没有实现：请用你的代码替换 `raise NotImplementedError()`\n")


def test_plain_nbgrader_config_lines_run_the_sandboxed_kernel(tmp_path):
    """The three config lines of the appendix make nbgrader's own Execute use the sandbox."""
    from nbgrader.preprocessors import Execute
    from traitlets.config import Config

    sandbox_kernel.preflight()
    c = Config()
    c.Execute.kernel_name = sandbox_kernel.KERNEL_NAME
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = str(tmp_path / "ipc" / "kernel")
    nb = nbformat.v4.new_notebook()
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    nb.cells = [nbformat.v4.new_code_cell(f"import os; print(os.path.exists({tests_dir!r}), os.getuid() != 0)")]
    work = tmp_path / "work"
    work.mkdir()
    Execute(config=c).preprocess(nb, {"metadata": {"path": str(work)}})
    assert nb.cells[0].outputs[0]["text"] == "False True\n"


def test_socket_root_is_per_user_and_refuses_a_folder_others_can_write(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox_kernel.tempfile, "gettempdir", lambda: str(tmp_path))
    path = sandbox_kernel.socket_root()
    assert path == str(tmp_path / f"conv-course-sandbox-{os.getuid()}") and os.stat(path).st_mode & 0o777 == 0o711
    os.chmod(path, 0o777)  # e.g. planted by another user to catch the kernels' sockets
    with pytest.raises(sandbox.SandboxUnavailable, match="only you can write"):
        sandbox_kernel.socket_root()


def test_a_stale_kernelspec_fails_the_check_and_preflight_reinstalls_it(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))  # searched before the venv
    folder = sandbox_kernel.install(prefix=str(tmp_path))
    assert sandbox_kernel.kernelspec_state() == (True, folder)
    with open(os.path.join(folder, "kernel.json")) as f:
        spec = json.load(f)
    spec["argv"][2] = "conv_course.old_launcher"  # e.g. installed by an older version of the course
    with open(os.path.join(folder, "kernel.json"), "w") as f:
        json.dump(spec, f)
    ok, detail = sandbox_kernel.kernelspec_state()
    assert not ok and "out of date" in detail
    installed = []
    monkeypatch.setattr(sandbox_kernel, "install", lambda: installed.append(True))
    sandbox_kernel.preflight()
    assert installed == [True]


def test_a_kernelspec_of_the_old_layout_asks_plainly_for_one_reinstall(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))
    folder = sandbox_kernel.install(prefix=str(tmp_path))
    with open(os.path.join(folder, "kernel.json")) as f:
        spec = json.load(f)
    spec["argv"][2] = "conv_course.sandbox_kernel"  # what installs before conv_course.autograding wrote
    with open(os.path.join(folder, "kernel.json"), "w") as f:
        json.dump(spec, f)
    results = {what: (ok, detail) for what, ok, detail in sandbox_kernel.check()}
    ok, detail = results["kernelspec installed"]
    assert not ok and "moved to conv_course.autograding" in detail and "conv-course sandbox install" in detail
