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
from attacks import attacks, plant
from tinycourse import make_course

pytestmark = pytest.mark.security


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/security" in str(item.fspath):
            item.add_marker(pytest.mark.security)
            item.add_marker(pytest.mark.slow)


def _tree_digest(folder):
    """Digest of a tree: names, link targets and regular files' bytes (links and FIFOs not followed)."""
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(base, d))]):
            path = os.path.join(base, name)
            h.update(os.fsencode(name))
            if os.path.islink(path):
                h.update(os.fsencode(os.readlink(path)))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope="session")
def hostile_class(tmp_path_factory):
    """Grade the whole hostile class once (jobs=2); returns a namespace of what the tests need."""
    from conv_course.autograding.autograde import autograde
    from conv_course.autograding.sandbox_kernel import preflight

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
    make_course(root, attacks(root, listener.getsockname()[1]), timeout=5)
    plant(root)
    before = {d: _tree_digest(os.path.join(root, d)) for d in ("solutions", "submitted", "exercises")}
    import resource
    import time

    from conv_course.autograding import course

    start = time.perf_counter()
    records = autograde(root, "tiny", jobs=2, progress=False)
    wall = time.perf_counter() - start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    stop.set()
    assert course.feedback("tiny", root, quiet=True) == 0
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
    r.wall, r.peak_kib = wall, peak
    print(f"hostile class: {len(records)} submissions graded in {wall:.1f} s, peak RSS {peak / 1024:.0f} MiB")
    return r
