"""Grading kernels: one notebook per kernel, a warm spare for the next, preloaded imports."""

import os

import nbformat
import pytest

from conv_course.autograding import execution
from conv_course.autograding._preload_kernel import preload

pytestmark = pytest.mark.grading

PROBE = """import os, sys
print(os.getcwd())
print("fractions" in sys.modules)
print(sorted(os.listdir(".")))
"""


def _run(source, files=None, **kwargs):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb, error = execution.execute_notebook(nb, files or {}, timeout=30, **kwargs)
    assert error is None
    cell = nb.cells[0]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream").split("\n")


@pytest.fixture(autouse=True)
def no_spare_left():
    yield
    execution.close_spare()


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_next_call_runs_in_the_warm_spare_with_only_its_own_files(sandbox):
    first = _run(PROBE + "open('scratch.txt', 'w').write('mine')\n", {"data.csv": b"1,2\n"},
                 sandbox=sandbox, warm=True)
    spare = execution._SPARE["kernel"]
    assert first[2] == "['data.csv']"
    assert spare["folder"] != first[0] and os.listdir(spare["folder"]) == []
    second = _run(PROBE, {"other.csv": b"3\n"}, sandbox=sandbox)
    assert second[0] == spare["folder"]  # the spare, started before this call, ran it
    assert second[2] == "['other.csv']"  # neither the first student's files nor what it wrote
    assert "kernel" not in execution._SPARE  # warm=False: no new spare
    assert not os.path.exists(os.path.dirname(os.path.dirname(spare["folder"])))  # its folder is gone


def test_preloaded_modules_are_imported_but_bind_no_name():
    out = _run(PROBE + "try:\n    fractions\nexcept NameError:\n    print('unbound')\n",
               sandbox=True, preload=("fractions",))
    assert out[1] == "True" and out[3] == "unbound"
    assert _run(PROBE, sandbox=True)[1] == "False"


def test_a_spare_that_died_is_replaced():
    _run("pass", sandbox=True, warm=True)
    spare = execution._SPARE["kernel"]
    spare["km"].provisioner.process.kill()
    spare["km"].provisioner.process.wait()
    assert _run("print(6 * 7)", sandbox=True)[0] == "42"


def test_close_spare_stops_the_kernel_and_removes_its_folder():
    _run("pass", sandbox=False, warm=True)
    spare = execution._SPARE["kernel"]
    process = spare["km"].provisioner.process
    execution.close_spare()
    assert process.poll() is not None
    assert not os.path.exists(spare["tmp"])


def test_a_spare_with_another_preload_is_not_used():
    _run("pass", sandbox=True, warm=True, preload=("fractions",))
    spare_folder = execution._SPARE["kernel"]["folder"]
    out = _run(PROBE, sandbox=True)
    assert out[0] != spare_folder and out[1] == "False"


def test_preload_imports_in_order_and_reports_failures():
    assert preload(["fractions", "no_such_module_here", "json.decoder"]) == ["no_such_module_here"]
    import sys

    assert "fractions" in sys.modules and "json.decoder" in sys.modules


def _grade_cell(source, points=1):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "points": points, "grade_id": f"t{abs(hash(source))}",
        "schema_version": 3}})


@pytest.mark.parametrize("sandbox", [True, False])
def test_a_notebook_has_a_wall_clock_limit_beyond_its_cells(sandbox):
    """Three 2.5 s cells under a 3 s cell limit, in a notebook limited to 6 s: the third never runs."""
    cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(2.5)") for _ in range(3)] + [_grade_cell("pass")]
    nb, error = execution.execute_notebook(nbformat.v4.new_notebook(cells=cells), {}, timeout=3, sandbox=sandbox,
                                           notebook_timeout=6)
    assert error and "per-notebook limit" in error
    assert nb.cells[-1].outputs[-1]["ename"] == "NotExecuted"


def test_a_timed_out_cell_says_which_limit_and_the_next_cells_still_run():
    cells = [nbformat.v4.new_code_cell("while True:\n    pass"), nbformat.v4.new_code_cell("print('after')")]
    nb, error = execution.execute_notebook(nbformat.v4.new_notebook(cells=cells), {}, timeout=2, sandbox=True)
    assert error is None
    assert "longer than the per-cell limit of 2 s" in "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert nb.cells[1].outputs[0]["text"] == "after\n"


def test_outputs_are_capped_per_notebook_whatever_the_route():
    cells = [nbformat.v4.new_code_cell("print('x' * 900_000)") for _ in range(8)]
    cells.append(nbformat.v4.new_code_cell("h = display('a', display_id=True)\nfor i in range(50):\n"
                                           "    h.update('y' * 200_000 + str(i))"))
    nb, _ = execution.execute_notebook(nbformat.v4.new_notebook(cells=cells), {}, timeout=30, sandbox=False)
    size = len(nbformat.writes(nb))
    assert size < execution.MAX_NOTEBOOK_OUTPUT + (1 << 20)
    assert "output truncated" in nbformat.writes(nb)


def test_an_unstartable_kernel_is_an_infrastructure_error(monkeypatch):
    from conv_course.autograding.execution import InfrastructureError

    monkeypatch.setattr(execution, "_take_kernel", lambda *a: (_ for _ in ()).throw(OSError("no kernelspec")))
    with pytest.raises(InfrastructureError, match="did not start"):
        execution.execute_notebook(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), {}, timeout=5)
