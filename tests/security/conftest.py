"""The hostile class: one course, many attacking submissions, graded in ONE real autograde batch.

Every submission goes through the real pipeline (nbgrader sanitizing, the bubblewrap kernel, the
trusted re-check, the single gradebook writer). The course root's absolute path is written into
the attacks, so they know exactly where the solutions and the gradebook are.
"""

import hashlib
import json
import os
import socket
import subprocess
import threading

import pytest
from tinycourse import HONEST, POINTS, WRONG, make_course

pytestmark = pytest.mark.security


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/security" in str(item.fspath):
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.slow)


def _attacks(root, port):
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
    }


# what the honest part of each submission earns
EXPECTED = {"alice": POINTS, "reader": POINTS, "network": POINTS, "alloc_10gb": POINTS, "big_file": POINTS,
            "orphan": POINTS}


def _tree_digest(folder):
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files):
            with open(os.path.join(base, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


@pytest.fixture(scope="session")
def hostile_class(tmp_path_factory):
    """Grade the whole hostile class once (jobs=2); returns a namespace of what the tests need."""
    from conv_course.autograde import autograde
    from conv_course.sandbox import preflight

    preflight()
    root = str(tmp_path_factory.mktemp("hostile-course"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    make_course(root, _attacks(root, listener.getsockname()[1]), timeout=5)
    before = {d: _tree_digest(os.path.join(root, d)) for d in ("solutions", "submitted", "exercises")}
    records = autograde(root, "tiny", jobs=2, progress=False)
    stop.set()
    after = {d: _tree_digest(os.path.join(root, d)) for d in ("solutions", "submitted", "exercises")}
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    listener.close()

    class Result:
        pass

    r = Result()
    if os.environ.get("CONV_COURSE_KEEP_HOSTILE"):
        with open(os.environ["CONV_COURSE_KEEP_HOSTILE"], "w") as f:
            json.dump(records, f, indent=1)
    r.root, r.records, r.before, r.after, r.accepted, r.ps = root, records, before, after, accepted, ps
    return r
