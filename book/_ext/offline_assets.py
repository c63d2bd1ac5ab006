"""Sphinx extension: the book serves its own JavaScript, so every page works with no network.

Jupyter Book 1 pages load MathJax, require.js, the ipywidgets HTML manager and widget modules
from CDNs. This extension
  * fetches the pinned npm packages when missing (scripts/fetch_assets.py, into node_modules/)
    and stages what pages need into ``<outdir>/../.offline-assets/offline/``, a folder it adds
    to ``html_static_path`` (so it lands in ``_static/offline/``; nothing goes into a source
    ``_static/`` folder, which Jupyter Book would add to every page);
  * points ``mathjax_path`` at the local MathJax 3 and myst-nb's ``nb_ipywidgets_js`` (scripts
    added only to pages that carry widget state) at local require.js, a small require.js
    configuration and the HTML manager;
  * refreshes the saved module source (``_esm``, ``_css``) of the course's own widgets in each
    page's widget state from the package files, so a cached execution never ships an old view,
    and rewrites the pages with widgets when those files change;
  * removes sphinx-thebe's scripts when thebe is off (its inline script is added twice, which
    throws "Identifier 'THEBE_JS_URL' has already been declared" on every page).
"""

import filecmp
import hashlib
import json
import pathlib
import shutil

from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
STATIC_DIR = "offline"  # the folder's name under _static/

# (package, source inside the package, destination under _static/offline/); folders copied whole.
FILES = [
    ("requirejs", "require.js", "require.js"),
    ("@jupyter-widgets/html-manager", "dist/embed-amd.js", "html-manager/dist/embed-amd.js"),
    ("@jupyter-widgets/html-manager", "dist/*.woff2", "html-manager/dist/"),
    ("@jupyter-widgets/html-manager", "dist/*.woff", "html-manager/dist/"),
    ("@jupyter-widgets/html-manager", "dist/*.ttf", "html-manager/dist/"),
    ("@jupyter-widgets/html-manager", "dist/*.eot", "html-manager/dist/"),
    ("@jupyter-widgets/html-manager", "dist/*.svg", "html-manager/dist/"),
    ("@jupyter-widgets/html-manager", "dist/embed.js.LICENSE.txt", "html-manager/dist/LICENSE.txt"),
    ("anywidget", "dist/index.js", "anywidget/index.js"),
    ("anywidget", "LICENSE", "anywidget/LICENSE"),
    ("mathjax", "LICENSE", "mathjax/LICENSE"),
    ("mathjax", "es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    ("mathjax", "es5/input/tex", "mathjax/input/tex"),       # autoloaded TeX extensions
    ("mathjax", "es5/input/mml.js", "mathjax/input/mml.js"),  # the speech explorer's enrichment
    ("mathjax", "es5/output/chtml", "mathjax/output/chtml"),  # the CHTML fonts
    ("mathjax", "es5/a11y", "mathjax/a11y"),                  # loaded from MathJax's menu
    ("mathjax", "es5/ui", "mathjax/ui"),
    ("mathjax", "es5/sre", "mathjax/sre"),
]

# Runs after require.js and before the HTML manager: module locations relative to this file.
WIDGETS_CONFIG = """\
// conv-course: load the widget manager's modules from this book, never from a CDN.
(function () {
  var here = document.currentScript.src.replace(/[^\\/]*$/, "");
  window.__jupyter_widgets_assets_path__ = here + "html-manager/dist/";
  window.require.config({
    paths: {
      "@jupyter-widgets/html-manager": here + "html-manager",
      "anywidget": here + "anywidget/index"
    }
  });
})();
"""

# anywidget id (module.Class, saved in the state) -> the view files the page should run
WIDGET_FILES = {
    "conv_course.widgets.kernel_explorer.KernelExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "kernel_explorer.js",
        "_css": ROOT / "conv_course" / "widgets" / "kernel_explorer.css",
    },
    "conv_course.widgets.conv_arithmetic.ConvArithmeticExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "conv_arithmetic.js",
        "_css": ROOT / "conv_course" / "widgets" / "conv_arithmetic.css",
    },
    "conv_course.widgets.backprop_stamp.BackpropStampExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "backprop_stamp.js",
        "_css": ROOT / "conv_course" / "widgets" / "backprop_stamp.css",
    },
    "conv_course.widgets.receptive_field.ReceptiveFieldExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "receptive_field.js",
        "_css": ROOT / "conv_course" / "widgets" / "receptive_field.css",
    },
    "conv_course.widgets.channels.ChannelsExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "channels.js",
        "_css": ROOT / "conv_course" / "widgets" / "channels.css",
    },
    "conv_course.widgets.network_explorer.NetworkExplorer": {
        "_esm": ROOT / "conv_course" / "widgets" / "network_explorer.js",
        "_css": ROOT / "conv_course" / "widgets" / "network_explorer.css",
    },
}
WIDGET_STATE_TYPE = "application/vnd.jupyter.widget-state+json"

MATHJAX_PATH = f"{STATIC_DIR}/mathjax/tex-chtml.js"
IPYWIDGETS_JS = {
    f"{STATIC_DIR}/require.js": {},
    f"{STATIC_DIR}/widgets-config.js": {},
    f"{STATIC_DIR}/html-manager/dist/embed-amd.js": {},
}


def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or not filecmp.cmp(src, dst, shallow=True):
        shutil.copy2(src, dst)


def stage(stage_root, node_modules=NODE_MODULES):
    """Copy the files pages need into ``stage_root/offline/``; return ``stage_root``.

    Raises: RuntimeError naming the missing package when scripts/fetch_assets.py has not run.
    """
    stage_root = pathlib.Path(stage_root)
    out = stage_root / STATIC_DIR
    for package, src, dst in FILES:
        base = node_modules / package
        if not (base / "package.json").is_file():
            raise RuntimeError(f"offline_assets: {base} is missing; run `python scripts/fetch_assets.py` "
                               "(scripts/setup.sh does) to fetch the pinned npm packages")
        sources = sorted(base.glob(src)) if "*" in src else [base / src]
        for path in sources:
            if path.is_dir():
                for f in path.rglob("*"):
                    if f.is_file():
                        _copy(f, out / dst / f.relative_to(path))
            elif path.is_file():
                _copy(path, out / dst / path.name if dst.endswith("/") else out / dst)
            else:
                raise RuntimeError(f"offline_assets: {path} not found in the fetched {package} package")
    config = out / "widgets-config.js"
    if not config.exists() or config.read_text() != WIDGETS_CONFIG:
        config.write_text(WIDGETS_CONFIG)
    return stage_root


def _thebe_enabled(config):
    options = getattr(config, "html_theme_options", {}) or {}
    thebe_config = getattr(config, "thebe_config", {}) or {}
    return bool((options.get("launch_buttons") or {}).get("thebe") or thebe_config.get("always_load"))


def _fetch_missing():
    """Run scripts/fetch_assets.py's `ensure` (pinned, verified; a no-op when all is present)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_conv_course_fetch_assets", ROOT / "scripts" / "fetch_assets.py")
    fetch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fetch)
    try:
        fetch.ensure(log=lambda msg: logger.info(msg))
    except (OSError, ValueError) as err:
        raise RuntimeError(f"offline_assets: could not fetch the pinned npm packages ({err}); run "
                           "`python scripts/fetch_assets.py` where the npm registry is reachable") from err


def _config_inited(app, config):
    _fetch_missing()
    stage_root = stage(pathlib.Path(app.outdir).parent / ".offline-assets")
    config.html_static_path = list(config.html_static_path) + [str(stage_root)]
    config.mathjax_path = MATHJAX_PATH
    config.nb_ipywidgets_js = dict(IPYWIDGETS_JS)


def _is_thebe(script):
    name = getattr(script, "filename", script) or ""
    body = (getattr(script, "attributes", {}) or {}).get("body", "")
    return str(name).endswith("sphinx-thebe.js") or "THEBE_JS_URL" in body


def refresh_widget_state(body, files=WIDGET_FILES):
    """The widget-state JSON `body` with each known widget's `_esm`/`_css` read from `files`."""
    state = json.loads(body)
    changed = False
    for model in state.get("state", {}).values():
        values = model.get("state", {})
        for key, path in files.get(values.get("_anywidget_id"), {}).items():
            text = pathlib.Path(path).read_text()
            if values.get(key) != text:
                values[key], changed = text, True
    if not changed:
        return body
    return json.dumps(state).replace("</", "<\\/")  # as myst-nb's sanitize_script_content


def view_digest(files=WIDGET_FILES):
    """sha256 over the course widgets' view files."""
    digest = hashlib.sha256()
    for paths in files.values():
        for path in paths.values():
            digest.update(pathlib.Path(path).read_bytes())
    return digest.hexdigest()


def _outdated_widget_pages(app, env, added, changed, removed):
    """Pages carrying widget state, when the widgets' view files changed since the last build."""
    digest, previous = view_digest(), getattr(env, "offline_assets_view_digest", None)
    env.offline_assets_view_digest = digest
    if digest == previous:
        return []
    metadata = getattr(env, "nb_metadata", None) or {}
    return sorted(doc for doc, data in metadata.items()
                  if "ipywidgets_state" in data.get("js_files", {}) and doc in env.found_docs)


def _page_context(app, pagename, templatename, context, doctree):
    """Refresh the course widgets' saved views; drop sphinx-thebe's scripts when thebe is off."""
    scripts = context.get("script_files")
    if not scripts:
        return
    for script in scripts:
        attributes = getattr(script, "attributes", None) or {}
        if attributes.get("type") == WIDGET_STATE_TYPE and attributes.get("body"):
            attributes["body"] = refresh_widget_state(attributes["body"])
    keep, seen = [], set()
    thebe_on = _thebe_enabled(app.config)
    for script in scripts:
        if _is_thebe(script):
            key = (str(getattr(script, "filename", script)), json.dumps(getattr(script, "attributes", {}),
                                                                       sort_keys=True, default=str))
            if not thebe_on or key in seen:
                continue
            seen.add(key)
        keep.append(script)
    scripts[:] = keep


def setup(app):
    app.connect("config-inited", _config_inited, priority=900)
    app.connect("html-page-context", _page_context, priority=900)
    app.connect("env-get-outdated", _outdated_widget_pages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
