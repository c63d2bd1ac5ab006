"""The instructor's grading pipeline (no chapter imports it; notebooks' test cells use `grading`).

- `course`: release, feedback and grade export over nbgrader (the ``conv-course`` commands);
- `autograde`: collected submissions graded in parallel (a pool, or Dask), each sandboxed and
  re-checked, every result recorded by `gradebook`, the one writer of nbgrader's database;
- `execution`: one notebook run in a (sandboxed, optionally warm) kernel, outputs capped;
- `sandbox`: the bubblewrap layer (limits, cgroups, the bwrap command line and its checks);
- `sandbox_kernel`: the Jupyter kernelspec whose kernels run inside `sandbox` (``conv-course
  sandbox install|check``); `_preload_kernel` is what it starts, after importing the assignment's
  modules;
- `recheck`: the trusted re-check: record the instructor's calls, replay them on the student's
  code in a sandbox with no reference implementation, judge the answers with the real checkers
  (the replay and judge processes are `_replay`);
- `plaindata`: the codec at the trust boundary: everything that comes back from student code is
  JSON and raw arrays, read with size, depth and type limits, never unpickled;
- `nbgrader_env`: how nbgrader is run (PATH, warnings).
"""
