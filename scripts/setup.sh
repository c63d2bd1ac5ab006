#!/usr/bin/env bash
# Install everything conv-course needs, idempotently:
#   - .venv with requirements.txt and conv_course (editable), re-run only when they change;
#   - the book's offline JavaScript assets (scripts/fetch_assets.py, from the npm registry);
#   - with --system: the Debian packages the tests need (chromium, bubblewrap, a Chinese font for the
#     Chinese PDF: fonts-wqy-microhei), as root.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    for cand in "${PYTHON:-}" python3.11 python3; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 &&
           "$cand" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))' 2>/dev/null; then
            echo "$cand"; return 0
        fi
    done
    echo "setup: need Python >= 3.10 (3.11 recommended); set PYTHON=/path/to/python" >&2
    return 1
}

if [ "${1:-}" = "--system" ]; then
    need=()
    [ -x /usr/bin/chromium ] || need+=(chromium)
    command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
    [ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei fontconfig)
    if [ ${#need[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "setup: please install Debian packages: ${need[*]} (sudo apt-get install ${need[*]})" >&2
            exit 1
        fi
        echo "setup: installing Debian packages: ${need[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
fi

PY=$(find_python)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.installed-$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into .venv (first run takes a few minutes)"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    rm -f .venv/.installed-*
    touch "$stamp"
fi
if [ -f scripts/fetch_assets.py ]; then
    .venv/bin/python scripts/fetch_assets.py
fi
if [ "${1:-}" = "--system" ] && [ -f scripts/setup_sandbox.sh ]; then
    bash scripts/setup_sandbox.sh
fi
