"""Autograde cost: sandbox + trusted re-check vs plain nbgrader, and throughput with --jobs 2.

One simulated class (default 60 students of assignment 01-corr2d: honest, flipped-kernel, off-by-one
and empty submissions in turn) is graded, in one process, by each configuration in turn (interleaved
over repeats): plain `nbgrader autograde` (one process, instructor's kernel), `conv-course autograde
--jobs 1` without and with the sandbox + re-check, and `--jobs 2`. Prints a table and writes
benchmarks/results/bench_autograde.json. Targets: overhead <= 15 %, >= 60 submissions/minute.

    .venv/bin/python benchmarks/bench_autograde.py [--students 60] [--repeats 3]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import nbformat

from conv_course.autograding.autograde import autograde, load_course_config
from conv_course.bench import environment, limit_threads, write_results
from conv_course.tables import format_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {  # name -> what replaces the end of the corr2d answer
    "honest": "",
    "flipped": "\n_c = corr2d\ncorr2d = lambda image, kernel, stride=1, padding=0: "
               "_c(image, np.asarray(kernel)[::-1, ::-1], stride, padding)\n",
    "off_by_one": "\n_s = conv_output_size\nconv_output_size = lambda *a, **k: _s(*a, **k) + 1\n",
    "empty": None,  # the released stub, untouched
}


def build_class(folder, assignment, students):
    """A course in `folder` with `assignment` released and `students` submissions. Returns the root."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    shutil.copytree(os.path.join(ROOT, "solutions", assignment), os.path.join(folder, "solutions", assignment))
    with open(os.path.join(folder, "nbgrader_config.py"), "w") as f:
        f.write('c = get_config()\nc.CourseDirectory.source_directory = "solutions"\n'
                'c.CourseDirectory.release_directory = "exercises"\nc.Execute.timeout = 30\n')
    cfg = load_course_config(folder)
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id = assignment
    app = GenerateAssignment(coursedir=coursedir, config=cfg)
    app.log.setLevel("ERROR")
    app.start()
    source = nbformat.read(os.path.join(folder, "solutions", assignment, f"{assignment}.ipynb"), 4)
    answers = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    released = nbformat.read(os.path.join(folder, "exercises", assignment, f"{assignment}.ipynb"), 4)
    names = list(VARIANTS)
    for i in range(students):
        variant = names[i % len(names)]
        nb = nbformat.from_dict(released)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers and VARIANTS[variant] is not None:
                cell.source = answers[gid] + (VARIANTS[variant] if gid == "corr2d" or
                                              (variant == "off_by_one" and gid == "conv_output_size") else "")
        out = os.path.join(folder, "submitted", f"s{i:03d}-{variant}", assignment)
        os.makedirs(out)
        nbformat.write(nb, os.path.join(out, f"{assignment}.ipynb"))
    return folder


def plain_nbgrader(root, assignment):
    """What `nbgrader autograde ASSIGNMENT --force` does: one process, the notebook's own kernel."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    cfg = load_course_config(root)
    coursedir = CourseDirectory(config=cfg)
    coursedir.assignment_id, coursedir.student_id = assignment, "*"
    app = Autograde(coursedir=coursedir, config=cfg)
    app.force = True
    app.log.setLevel("ERROR")
    app.start()


class CpuMeter:
    """CPU seconds used by this process and every descendant, killed ones included.

    Uses a cgroup-v1 cpuacct group when it can create one (root): sandboxed kernels that are killed
    are reaped by init, so their time never reaches getrusage. Falls back to getrusage.
    """

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self):
        self.path = os.path.join(self.ROOT, f"conv-course-bench-{os.getpid()}")
        try:
            os.makedirs(self.path, exist_ok=True)
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            self.path = None

    def seconds(self):
        if self.path:
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read()) / 1e9
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def close(self):
        if self.path:
            with open(os.path.join(self.ROOT, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            try:
                os.rmdir(self.path)
            except OSError:
                pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3, help="each repeat grades the class once per config")
    parser.add_argument("--assignment", default="01-corr2d")
    args = parser.parse_args(argv)
    limit_threads(1)
    configs = {
        "plain nbgrader": lambda r: plain_nbgrader(r, args.assignment),
        "jobs 1, no sandbox, no re-check": lambda r: autograde(r, args.assignment, jobs=1, sandbox=False,
                                                               recheck=False, progress=False),
        "jobs 1, sandbox + re-check": lambda r: autograde(r, args.assignment, jobs=1, progress=False),
        "jobs 2, sandbox + re-check": lambda r: autograde(r, args.assignment, jobs=2, progress=False),
    }
    times = {name: [] for name in configs}
    cpu = {name: [] for name in configs}
    meter = CpuMeter()
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        roots = {name: build_class(os.path.join(tmp, f"c{i}"), args.assignment, args.students)
                 for i, name in enumerate(configs)}
        for _ in range(args.repeats):
            for name, run in configs.items():
                start, cpu0 = time.perf_counter(), meter.seconds()
                run(roots[name])
                times[name].append(time.perf_counter() - start)
                cpu[name].append(meter.seconds() - cpu0)
                print(f"  {name}: {times[name][-1]:.1f} s wall, {cpu[name][-1]:.1f} s CPU", file=sys.stderr,
                      flush=True)
    meter.close()
    import numpy as np

    base, base_cpu = float(np.median(times["plain nbgrader"])), float(np.median(cpu["plain nbgrader"]))
    rows = []
    for name, ts in times.items():
        med, med_cpu = float(np.median(ts)), float(np.median(cpu[name]))
        q1, q3 = np.percentile(ts, [25, 75])
        rows.append({"config": name, "median_s": med, "iqr": float(q3 - q1), "ratio": med / base,
                     "cpu_s": med_cpu, "cpu_ratio": med_cpu / base_cpu, "per_min": 60 * args.students / med,
                     "noisy": "yes" if q3 - q1 > 0.1 * med else ""})
    print(format_table(rows, [("config", "configuration", "{}"), ("median_s", "wall s", "{:.1f}"),
                              ("ratio", "wall vs plain", "{:.2f}"), ("cpu_s", "CPU s", "{:.1f}"),
                              ("cpu_ratio", "CPU vs plain", "{:.2f}"), ("per_min", "subs/min", "{:.0f}"),
                              ("noisy", "IQR>10%", "{}")]))
    wall, cpu_ratio = rows[2]["ratio"], rows[2]["cpu_ratio"]
    cores = os.cpu_count() or 1
    print(f"sandbox + re-check overhead vs plain nbgrader: wall {100 * (wall - 1):+.0f}% at --jobs 1, "
          f"CPU {100 * (cpu_ratio - 1):+.0f}% (target <= +15%)\n"
          f"--jobs 2: {rows[3]['per_min']:.0f} submissions/minute measured (target >= 60); CPU-bound bound on an "
          f"idle {cores}-core machine: {60 * args.students * min(2, cores) / rows[3]['cpu_s']:.0f}/minute")
    write_results("bench_autograde", {"students": args.students, "assignment": args.assignment,
                                      "repeats": args.repeats, "times_s": times, "cpu_s": cpu, "rows": rows,
                                      "overhead_wall": wall - 1, "overhead_cpu": cpu_ratio - 1,
                                      "cpu_meter": "cgroup cpuacct" if meter.path else "getrusage",
                                      "load_average": os.getloadavg(), "environment": environment(threads=1)})


if __name__ == "__main__":
    main()
