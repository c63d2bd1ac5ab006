"""The static book's offline plumbing: scripts/fetch_assets.py and book/_ext/offline_assets.py."""

import base64
import hashlib
import importlib.util
import io
import json
import pathlib
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch = _load("fetch_assets", "scripts/fetch_assets.py")
ext = _load("offline_assets", "book/_ext/offline_assets.py")


def _tarball(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sri(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def registry(tmp_path):
    """A file:// npm registry holding @demo/pkg 1.2.3; returns (pins, dest)."""
    data = _tarball({"package.json": '{"name": "@demo/pkg", "version": "1.2.3"}', "dist/index.js": "x = 1;"})
    tgz = tmp_path / "reg" / "@demo" / "pkg" / "-" / "pkg-1.2.3.tgz"
    tgz.parent.mkdir(parents=True)
    tgz.write_bytes(data)
    pins = {"registry": (tmp_path / "reg").as_uri(),
            "packages": {"@demo/pkg": {"version": "1.2.3", "integrity": _sri(data)}}}
    return pins, tmp_path / "node_modules"


def test_tarball_url_keeps_scope_in_path_not_file_name():
    assert (fetch.tarball_url("https://registry.npmjs.org/", "@jupyter-widgets/html-manager", "1.0.15")
            == "https://registry.npmjs.org/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz")


def test_verify_integrity_accepts_match_and_rejects_other_bytes():
    fetch.verify_integrity(b"abc", _sri(b"abc"))
    with pytest.raises(ValueError, match="integrity mismatch"):
        fetch.verify_integrity(b"abd", _sri(b"abc"))


def test_ensure_unpacks_then_is_idempotent(registry):
    pins, dest = registry
    assert fetch.missing(pins, dest) == ["@demo/pkg"]
    assert fetch.ensure(pins, dest, log=lambda msg: None) == ["@demo/pkg"]
    assert (dest / "@demo" / "pkg" / "dist" / "index.js").read_text() == "x = 1;"
    assert fetch.missing(pins, dest) == []
    assert fetch.ensure(pins, dest, log=lambda msg: None) == []


def test_ensure_refuses_tampered_tarball(registry):
    pins, dest = registry
    pins["packages"]["@demo/pkg"]["integrity"] = _sri(b"something else")
    with pytest.raises(ValueError, match="integrity mismatch"):
        fetch.ensure(pins, dest, log=lambda msg: None)
    assert not (dest / "@demo" / "pkg").exists()


def test_new_pin_version_is_missing_again(registry):
    pins, dest = registry
    fetch.ensure(pins, dest, log=lambda msg: None)
    pins["packages"]["@demo/pkg"]["version"] = "1.2.4"
    assert fetch.missing(pins, dest) == ["@demo/pkg"]


def test_pins_are_exact_and_anywidget_matches_pip():
    import anywidget

    pins = fetch.load_pins()["packages"]
    assert pins["anywidget"]["version"] == anywidget.__version__
    assert pins["@jupyter-widgets/html-manager"]["version"].startswith("1.0.")
    assert pins["mathjax"]["version"].startswith("3.")
    for name, pin in pins.items():
        assert pin["integrity"].startswith("sha512-"), name
        assert all(part.isdigit() for part in pin["version"].split(".")), f"{name} must be an exact version"


def test_stage_copies_only_what_pages_need(tmp_path):
    if fetch.missing(fetch.load_pins()):
        pytest.fail("npm assets missing: run `python scripts/fetch_assets.py` (scripts/setup.sh does)")
    out = ext.stage(tmp_path) / "offline"
    for rel in ["require.js", "widgets-config.js", "html-manager/dist/embed-amd.js", "anywidget/index.js",
                "mathjax/tex-chtml.js", "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff"]:
        assert (out / rel).is_file(), rel
    assert list((out / "html-manager" / "dist").glob("*.woff2"))   # the manager's icon fonts
    assert not list(out.rglob("*.map"))                           # no source maps
    assert not (out / "mathjax" / "tex-svg.js").exists()          # only the one MathJax component
    assert 'define(["@jupyter-widgets/base"]' in (out / "anywidget" / "index.js").read_text()


def test_stage_without_fetched_packages_names_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="run `python scripts/fetch_assets.py`"):
        ext.stage(tmp_path / "stage", node_modules=tmp_path / "empty")


class _Config:
    def __init__(self, thebe):
        self.html_theme_options = {"launch_buttons": {"thebe": thebe}}
        self.thebe_config = {}


class _App:
    def __init__(self, thebe):
        self.config = _Config(thebe)


def _scripts():
    from sphinx.builders.html._assets import _JavaScript

    body = 'const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"'
    return [_JavaScript("_static/doctools.js"), _JavaScript("", body=body),
            _JavaScript("_static/sphinx-thebe.js", **{"async": "async"}), _JavaScript("", body=body)]


def test_page_context_drops_thebe_scripts_when_thebe_off():
    context = {"script_files": _scripts()}
    ext._page_context(_App(False), "index", "page.html", context, None)
    assert [s.filename for s in context["script_files"]] == ["_static/doctools.js"]


def test_page_context_keeps_one_thebe_config_when_thebe_on():
    context = {"script_files": _scripts()}
    ext._page_context(_App(True), "index", "page.html", context, None)
    bodies = [s.attributes.get("body", "") for s in context["script_files"]]
    assert sum("THEBE_JS_URL" in b for b in bodies) == 1
    assert len(context["script_files"]) == 3


def test_widgets_config_maps_modules_next_to_itself():
    config = ext.WIDGETS_CONFIG
    assert '"anywidget": here + "anywidget/index"' in config
    assert "document.currentScript.src" in config
    assert list(ext.IPYWIDGETS_JS) == ["offline/require.js", "offline/widgets-config.js",
                                       "offline/html-manager/dist/embed-amd.js"]
    assert json.dumps(ext.IPYWIDGETS_JS).count("http") == 0


def _state_body(esm, anywidget_id="conv_course.widgets.kernel_explorer.KernelExplorer"):
    return json.dumps({"version_major": 2, "version_minor": 0, "state": {
        "m1": {"model_name": "AnyModel", "state": {"_anywidget_id": anywidget_id, "_esm": esm, "padding": 2}},
        "m2": {"model_name": "LayoutModel", "state": {"width": "10px"}}}})


def test_refresh_widget_state_ships_current_view_files():
    body = ext.refresh_widget_state(_state_body("export default {}; // from an old cached run"))
    state = json.loads(body)["state"]["m1"]["state"]
    js = (ROOT / "conv_course" / "widgets" / "kernel_explorer.js").read_text()
    assert state["_esm"] == js and state["_css"].startswith("/* KernelExplorer")
    assert state["padding"] == 2                                   # the executed values stay
    assert "</" not in body                                        # safe inside <script>


def test_refresh_widget_state_leaves_other_widgets_and_fresh_state_alone():
    other = _state_body("old", anywidget_id="somebody.Else")
    assert ext.refresh_widget_state(other) == other
    fresh = ext.refresh_widget_state(_state_body("old"))
    assert ext.refresh_widget_state(fresh) == fresh


def test_page_context_refreshes_widget_state_script():
    from sphinx.builders.html._assets import _JavaScript

    script = _JavaScript("", type=ext.WIDGET_STATE_TYPE, body=_state_body("old"))
    context = {"script_files": [script]}
    ext._page_context(_App(False), "ch4", "page.html", context, None)
    esm = json.loads(context["script_files"][0].attributes["body"])["state"]["m1"]["state"]["_esm"]
    assert "export default { render }" in esm


def test_widget_pages_are_rewritten_only_when_the_view_changes():
    class Env:
        found_docs = {"ch4", "ch1"}
        nb_metadata = {"ch4": {"js_files": {"ipywidgets_state": (None, {}), "ipywidgets_0": ("x", {})}},
                       "ch1": {"js_files": {}}, "gone": {"js_files": {"ipywidgets_state": (None, {})}}}

    env = Env()
    env.offline_assets_view_digest = "digest of an older kernel_explorer.js"
    assert ext._outdated_widget_pages(None, env, set(), set(), set()) == ["ch4"]
    assert env.offline_assets_view_digest == ext.view_digest()
    assert ext._outdated_widget_pages(None, env, set(), set(), set()) == []
