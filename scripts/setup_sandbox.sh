#!/usr/bin/env bash
# Install and check the sandboxed grading kernel (called by `scripts/setup.sh --system`, `make sandbox`).
#   - bubblewrap must be installed (Debian: apt-get install bubblewrap; setup.sh --system does it as root);
#   - run as root, bwrap needs no user namespaces; otherwise the kernel must allow unprivileged ones;
#   - installs the kernelspec "conv-course-sandbox" into .venv and runs `conv-course sandbox check`.
# Without a working sandbox, autograding refuses to run student code unless you pass --no-sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "setup_sandbox: $*" >&2
    echo "setup_sandbox: autograding will refuse to run student code; see book/appendix/grading-security.md" >&2
    exit 1
}

command -v bwrap >/dev/null 2>&1 || fail "bubblewrap (bwrap) is not installed: sudo apt-get install bubblewrap"
if [ "$(id -u)" != 0 ]; then
    if [ -r /proc/sys/kernel/unprivileged_userns_clone ] &&
       [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" = 0 ]; then
        fail "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=1)"
    fi
    if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)" = 0 ]; then
        fail "user namespaces are disabled (sysctl user.max_user_namespaces > 0)"
    fi
fi
[ -x .venv/bin/python ] || fail ".venv is missing: run scripts/setup.sh first"
.venv/bin/python -m conv_course.cli sandbox install || fail "the sandbox check failed (see above)"
