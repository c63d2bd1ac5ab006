"""The speed engine behind `conv_course.ops` (private: chapters and graders use `ops`).

- `gemm`: padding, read-only window views, the blocked im2col GEMM and col2im accumulation, and the
  lean path for tiny problems;
- `winograd`: Winograd F(4, 3) for large 3x3, stride-1 float convolutions, forward and backward;
- `threads`: blocks of samples or rows shared among as many Python threads as BLAS may use.

`ops` checks every argument and is the one dispatch point; nothing here checks shapes again.
"""
