"""Fetch the static book's JavaScript from the npm registry into node_modules/, verified.

The packages and their exact versions and npm integrity hashes (sha512) are pinned in
scripts/assets.json (axe-core among them, which only tests/browser/test_accessibility.py uses). Each tarball is downloaded from the registry, checked against its hash
and unpacked to node_modules/<name>/, as npm would. A stamp file records what was fetched, so a
second run with everything present does nothing and takes milliseconds (no network).

    python scripts/fetch_assets.py            # fetch what is missing or outdated
    python scripts/fetch_assets.py --check    # exit 1 if anything is missing (no network)
    python scripts/fetch_assets.py --force    # fetch everything again
"""

import argparse
import base64
import hashlib
import io
import json
import pathlib
import shutil
import sys
import tarfile
import urllib.request

__all__ = ["load_pins", "tarball_url", "verify_integrity", "missing", "ensure", "main"]

ROOT = pathlib.Path(__file__).resolve().parents[1]
PINS = ROOT / "scripts" / "assets.json"
DEST = ROOT / "node_modules"
STAMP = ".conv-course-assets.json"


def load_pins(path=PINS):
    """The pin file as a dict: {"registry": url, "packages": {name: {"version", "integrity"}}}."""
    with open(path) as f:
        return json.load(f)


def tarball_url(registry, name, version):
    """npm's tarball address: <registry>/<name>/-/<basename>-<version>.tgz (scope kept in <name>)."""
    return f"{registry.rstrip('/')}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def verify_integrity(data, integrity):
    """Raise ValueError unless `data` matches the Subresource-Integrity string `integrity`."""
    algo, _, want = integrity.partition("-")
    if algo not in ("sha512", "sha384", "sha256"):
        raise ValueError(f"fetch_assets: unsupported integrity algorithm {algo!r} in {integrity!r}")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode("ascii")
    if got != want:
        raise ValueError(f"fetch_assets: integrity mismatch: expected {integrity}, got {algo}-{got}")


def _stamp_path(dest):
    return pathlib.Path(dest) / STAMP


def missing(pins, dest=DEST):
    """Names of pinned packages that are absent or at another version in `dest`."""
    dest = pathlib.Path(dest)
    try:
        stamp = json.loads(_stamp_path(dest).read_text())
    except (OSError, ValueError):
        stamp = {}
    out = []
    for name, pin in pins["packages"].items():
        if stamp.get(name) != pin or not (dest / name / "package.json").is_file():
            out.append(name)
    return out


def _unpack(data, target):
    """Unpack an npm tarball (members under package/) into `target`, replacing what was there."""
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = []
        for m in tar.getmembers():
            parts = pathlib.PurePosixPath(m.name).parts
            if not parts or ".." in parts or not (m.isfile() or m.isdir()):
                continue
            m.name = "/".join(parts[1:])  # drop the top folder ("package/")
            if m.name:
                members.append(m)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp, members=members, **kwargs)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def ensure(pins=None, dest=DEST, force=False, log=print):
    """Fetch every pinned package that is missing (all of them with `force`); return their names."""
    pins = pins or load_pins()
    dest = pathlib.Path(dest)
    todo = list(pins["packages"]) if force else missing(pins, dest)
    if not todo:
        return []
    try:
        stamp = json.loads(_stamp_path(dest).read_text())
    except (OSError, ValueError):
        stamp = {}
    for name in todo:
        pin = pins["packages"][name]
        url = tarball_url(pins["registry"], name, pin["version"])
        log(f"fetch_assets: {name}@{pin['version']} from {url}")
        with urllib.request.urlopen(url, timeout=120) as resp:
            data = resp.read()
        verify_integrity(data, pin["integrity"])
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        _unpack(data, target)
        stamp[name] = pin
        _stamp_path(dest).write_text(json.dumps(stamp, indent=1, sort_keys=True))
    return todo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if anything is missing")
    parser.add_argument("--force", action="store_true", help="fetch every package again")
    parser.add_argument("--dest", default=str(DEST), help="where to unpack (default: node_modules/)")
    args = parser.parse_args(argv)
    pins = load_pins()
    if args.check:
        gone = missing(pins, args.dest)
        print("fetch_assets: missing " + ", ".join(gone) if gone else "fetch_assets: all assets present")
        return 1 if gone else 0
    try:
        fetched = ensure(pins, args.dest, force=args.force)
    except (OSError, ValueError) as err:
        print(f"fetch_assets: {err}\nfetch_assets: the book needs these files to work offline; "
              f"check access to {pins['registry']}", file=sys.stderr)
        return 1
    if not fetched:
        print("fetch_assets: all assets present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
