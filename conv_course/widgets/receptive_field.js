// The view of conv_course.widgets.ReceptiveFieldExplorer: an anywidget ES module with no imports,
// run as is by JupyterLab and by the static book (through the offline widget manager). It computes
// every map size, receptive field and reach itself, so selecting and editing need no Python kernel.

const KEYS = ["kind", "kernel", "stride", "dilation", "padding"];
const LOW = { kernel: 1, stride: 1, dilation: 1, padding: 0 };

/** Side of a layer's output map: floor((n + 2p - d(k - 1) - 1) / s) + 1. */
export function outputSize(n, { kernel: k, stride: s, dilation: d, padding: p }) {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** [n_0, n_1, ...]: the input side and each layer's output side. */
export function sizesOf(n, layers) {
  const out = [n];
  for (const layer of layers) out.push(outputSize(out[out.length - 1], layer));
  return out;
}

/** Why this stack is refused, in words (as the Python side's check), or null. */
export function problemOf(n, layers, limits) {
  for (const [i, L] of layers.entries()) {
    for (const key of KEYS.slice(1)) {
      if (!Number.isInteger(L[key]) || L[key] < LOW[key] || L[key] > limits[key]) {
        return `layer ${i + 1}: ${key} must be between ${LOW[key]} and ${limits[key]}`;
      }
    }
    if (L.kind === "pool" && L.padding > Math.floor(L.kernel / 2)) {
      return `layer ${i + 1}: the padding of a pool must be at most half its kernel, ${Math.floor(L.kernel / 2)} ` +
        "(as torch.nn.MaxPool2d)";
    }
    const span = L.dilation * (L.kernel - 1) + 1, padded = n + 2 * L.padding;
    if (span > padded) {
      return `layer ${i + 1} leaves no output: its ${n}\u00d7${n} input, padded to ${padded}\u00d7${padded}, ` +
        `is smaller than its dilated kernel ${span}\u00d7${span}`;
    }
    n = outputSize(n, L);
  }
  return null;
}

/** [{r, j}] after each layer: r_l = r_{l-1} + (k_l - 1) d_l j_{l-1}, j_l = j_{l-1} s_l, r_0 = j_0 = 1. */
export function theory(layers) {
  let r = 1, j = 1;
  return layers.map((L) => {
    r += (L.kernel - 1) * L.dilation * j;
    j *= L.stride;
    return { r, j };
  });
}

/** Sorted indices along one axis of map `target` that unit `index` of map `layer` depends on. */
export function fieldAxis(layers, sizes, layer, index, target = 0) {
  let seen = new Set([index]);
  for (let m = layer; m > target; m--) {
    const L = layers[m - 1], next = new Set();
    for (const a of seen) {
      for (let t = 0; t < L.kernel; t++) {
        const v = a * L.stride - L.padding + t * L.dilation;
        if (v >= 0 && v < sizes[m - 1]) next.add(v);
      }
    }
    seen = next;
  }
  return [...seen].sort((a, b) => a - b);
}

/** Sorted indices along one axis of map `target` (> layer) whose units depend on `index` of map `layer`. */
export function reachAxis(layers, sizes, layer, index, target) {
  let seen = new Set([index]);
  for (let m = layer + 1; m <= target; m++) {
    const L = layers[m - 1], next = new Set();
    for (const v of seen) {
      for (let t = 0; t < L.kernel; t++) {
        const q = v + L.padding - t * L.dilation;
        if (q % L.stride === 0 && q / L.stride >= 0 && q / L.stride < sizes[m]) next.add(q / L.stride);
      }
    }
    seen = next;
  }
  return [...seen].sort((a, b) => a - b);
}

/** Side of the smallest square, shrunk evenly from the field box, that holds half the map's total. */
export function halfMassSide(map, rows, cols) {
  let total = 0;
  for (const row of map) for (const v of row) total += v;
  const side = Math.min(rows[1] - rows[0], cols[1] - cols[0]) + 1;
  for (let t = Math.floor((side - 1) / 2); t >= 0; t--) {
    let inside = 0;
    for (let y = rows[0] + t; y <= rows[1] - t; y++) for (let x = cols[0] + t; x <= cols[1] - t; x++) inside += map[y][x];
    if (total > 0 && inside >= total / 2) return side - 2 * t;
  }
  return side;
}

const span = (idx) => `${idx[0]}..${idx[idx.length - 1]}`;
const extent = (idx) => idx[idx.length - 1] - idx[0] + 1;

/** What the selected unit sees and reaches, in words (the live region's text). */
export function describe(layers, sizes, [m, row, col]) {
  const last = layers.length;
  if (m === 0) {
    const parts = [];
    for (let t = 1; t <= last; t++) {
      const rows = reachAxis(layers, sizes, 0, row, t), cols = reachAxis(layers, sizes, 0, col, t);
      if (!rows.length || !cols.length) { parts.push(`no unit of layer ${t}`); break; }
      parts.push(`${rows.length * cols.length} ${rows.length * cols.length === 1 ? "unit" : "units"} of layer ${t} ` +
        `(rows ${span(rows)}, columns ${span(cols)})`);
    }
    return `Input pixel [${row}, ${col}] is seen by ${parts.join("; ")}.`;
  }
  const rows = fieldAxis(layers, sizes, m, row), cols = fieldAxis(layers, sizes, m, col);
  const h = extent(rows), w = extent(cols), { r } = theory(layers)[m - 1];
  let text = `Output of layer ${m} at [${row}, ${col}] sees input rows ${span(rows)}, columns ${span(cols)}: ` +
    `${h} \u00d7 ${w}.`;
  if (rows.length < h || cols.length < w) {
    text += ` Only ${rows.length} \u00d7 ${cols.length} of these pixels count: strides and dilation leave gaps.`;
  }
  if (h < r || w < r) text += ` The recurrence gives r = ${r}; the rest of its window falls on padding.`;
  if (m < last) {
    const on = reachAxis(layers, sizes, m, row, last), oc = reachAxis(layers, sizes, m, col, last);
    text += on.length && oc.length
      ? ` It is seen by ${on.length * oc.length} ${on.length * oc.length === 1 ? "unit" : "units"} of layer ${last}.`
      : ` No unit of layer ${last} sees it.`;
  }
  return text;
}

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, v] of Object.entries(attrs)) {
    if (key === "text") node.textContent = v;
    else if (v !== false && v !== undefined) node.setAttribute(key, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

const COLORS = { cell: "#f4f4f4", line: "#c8c8c8", field: "#f0a040", hatch: "#6b3400", reach: "#86b6ef",
                 dot: "#0b3d7a", box: "#222", select: "#000" };

/** Draw a map of n x n cells: cells rows x cols marked as `kind` ("field" hatched, "reach" dotted) inside
 *  a dashed bounding box, and the selected cell [y, x] (or null) in a double frame. */
function drawMap(canvas, n, cell, rows, cols, kind, selected) {
  const ctx = canvas.getContext("2d"), px = n * cell + 1, dpr = Math.min(window.devicePixelRatio || 1, 2);
  if (canvas.width !== Math.round(px * dpr)) {
    canvas.width = canvas.height = Math.round(px * dpr);
    canvas.style.width = canvas.style.height = `${px}px`;
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = COLORS.cell;
  ctx.fillRect(0, 0, px, px);
  if (rows && cols) {
    ctx.fillStyle = kind === "field" ? COLORS.field : COLORS.reach;
    for (const y of rows) for (const x of cols) ctx.fillRect(x * cell + 0.5, y * cell + 0.5, cell, cell);
    ctx.beginPath();
    if (kind === "field") {                       // hatched: one diagonal per cell
      for (const y of rows) for (const x of cols) { ctx.moveTo(x * cell + 1, (y + 1) * cell); ctx.lineTo((x + 1) * cell, y * cell + 1); }
      ctx.strokeStyle = COLORS.hatch;
      ctx.lineWidth = 1;
      ctx.stroke();
    } else {                                      // dotted: one dot per cell
      ctx.fillStyle = COLORS.dot;
      const rad = Math.max(1, cell / 6);
      for (const y of rows) {
        for (const x of cols) {
          const cx = (x + 0.5) * cell, cy = (y + 0.5) * cell;
          ctx.moveTo(cx + rad, cy);
          ctx.arc(cx, cy, rad, 0, 2 * Math.PI);
        }
      }
      ctx.fill();
    }
  }
  if (cell >= 6) {
    ctx.beginPath();
    for (let i = 0; i <= n; i++) {
      const at = i * cell + 0.5;
      ctx.moveTo(at, 0); ctx.lineTo(at, px);
      ctx.moveTo(0, at); ctx.lineTo(px, at);
    }
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 1;
    ctx.stroke();
  }
  if (rows && cols && rows.length && cols.length) frameBox(ctx, cell, rows, cols, [5, 3], COLORS.box, 2);
  if (selected) {
    const [y, x] = selected;
    ctx.setLineDash([]);
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff";
    ctx.strokeRect(x * cell + 2, y * cell + 2, cell - 3, cell - 3);
    ctx.lineWidth = 2; ctx.strokeStyle = COLORS.select;
    ctx.strokeRect(x * cell + 0.5, y * cell + 0.5, cell, cell);
  }
}

function frameBox(ctx, cell, rows, cols, dash, color, width) {
  ctx.setLineDash(dash);
  ctx.lineWidth = width;
  ctx.strokeStyle = color;
  ctx.strokeRect(cols[0] * cell + 0.5, rows[0] * cell + 0.5, (cols[cols.length - 1] - cols[0] + 1) * cell,
                 (rows[rows.length - 1] - rows[0] + 1) * cell);
  ctx.setLineDash([]);
}

const cellSize = (n) => Math.max(4, Math.min(28, Math.floor(224 / n)));

function render({ model, el }) {
  const get = (name) => model.get(name);
  const ui = buildDom(get("limits"));
  ui.rows = null;
  el.append(ui.root);
  const ac = new AbortController();
  const on = (node, type, fn) => node.addEventListener(type, fn, { signal: ac.signal });
  const save = () => {
    try { model.save_changes(); } catch (err) { /* static page: no kernel to sync with */ }
  };
  let st = null;

  // -- the stack: rebuild the table and the maps ---------------------------------------------
  function rebuild() {
    const layers = get("layers"), n = get("input_size");
    st = { layers, n, sizes: sizesOf(n, layers), theory: theory(layers) };
    rebuildTable();
    rebuildMaps();
    rebuildEffective();
  }

  // rows are rebuilt only when the number of layers changes, so a focused field keeps its focus
  function rebuildTable() {
    const { layers, sizes, theory: th } = st, limits = get("limits");
    if (!ui.rows || ui.rows.length !== layers.length + 1) {
      const focused = ui.tbody.contains(document.activeElement) ? document.activeElement.getAttribute("name") : null;
      ui.rows = [inputRow(limits), ...layers.map((_, i) => layerRow(i, limits))];
      ui.tbody.replaceChildren(...ui.rows.map((r) => r.tr));
      if (focused) (ui.tbody.querySelector(`[name="${focused}"]`) || ui.add).focus();
    }
    const show = (input, v) => { if (document.activeElement !== input || Number(input.value) !== v) input.value = v; };
    show(ui.rows[0].fields.input_size, st.n);
    layers.forEach((L, i) => {
      const row = ui.rows[i + 1];
      row.kind.value = L.kind;
      for (const key of KEYS.slice(1)) show(row.fields[key], L[key]);
      row.out.textContent = String(sizes[i + 1]);
      row.j.textContent = String(th[i].j);
      row.r.textContent = String(th[i].r);
      row.remove.disabled = layers.length === 1;
    });
    ui.add.disabled = layers.length >= limits.layers;
    ui.trained.hidden = !get("trained_layers").length;
  }

  function inputRow(limits) {
    const size = numberInput("input_size", "input side", 4, limits.input_size,
      (v) => setStack(get("layers"), v, `Input side ${v}.`));
    const dash = () => h("td", { text: "\u2014" });
    const tr = h("tr", {}, [h("th", { scope: "row", text: "input" }), dash(), dash(), dash(), dash(), dash(),
      h("td", {}, [size]), h("td", { text: "1" }), h("td", { text: "1" }), h("td")]);
    return { tr, fields: { input_size: size } };
  }

  function layerRow(i, limits) {
    const kind = h("select", { name: `kind-${i}`, "aria-label": `layer ${i + 1} kind` },
      [h("option", { value: "conv", text: "conv" }), h("option", { value: "pool", text: "max pool" })]);
    on(kind, "change", () => {
      const L = get("layers")[i];
      const padding = kind.value === "pool" ? Math.min(L.padding, Math.floor(L.kernel / 2)) : L.padding;
      if (!edit(i, { kind: kind.value, padding })) kind.value = L.kind;
    });
    const remove = h("button", { type: "button", class: "rf-remove", name: `remove-${i}`,
                                 "aria-label": `remove layer ${i + 1}` }, [h("span", { "aria-hidden": "true", text: "\u2715" })]);
    on(remove, "click", () => setLayers(get("layers").filter((_, k) => k !== i), `Removed layer ${i + 1}.`));
    const fields = {};
    for (const key of KEYS.slice(1)) {
      fields[key] = numberInput(`${key}-${i}`, `layer ${i + 1} ${key}`, LOW[key], limits[key], (v) => edit(i, { [key]: v }));
    }
    const out = h("td"), j = h("td"), r = h("td");
    const tr = h("tr", {}, [h("th", { scope: "row", text: String(i + 1) }), h("td", {}, [kind]),
      ...KEYS.slice(1).map((key) => h("td", {}, [fields[key]])), out, j, r, h("td", {}, [remove])]);
    return { tr, kind, fields, out, j, r, remove };
  }

  /** A labelled number field; `apply(v)` returns whether the value was taken (else it is restored on change). */
  function numberInput(name, label, min, max, apply) {
    const input = h("input", { type: "number", name, min, max, step: 1, inputmode: "numeric", "aria-label": label });
    const commit = () => {
      const v = Number(input.value);
      return input.value.trim() !== "" && Number.isInteger(v) && apply(v);
    };
    on(input, "input", commit);
    on(input, "change", () => { if (!commit()) rebuildTable(); });
    return input;
  }

  function edit(i, changes) {
    const layers = get("layers").map((L, k) => (k === i ? { ...L, ...changes } : L));
    const what = Object.entries(changes).map(([k, v]) => `${k} ${v}`).join(", ");
    return setLayers(layers, `Layer ${i + 1}: ${what}.`);
  }
  const setLayers = (layers, said) => setStack(layers, get("input_size"), said);

  /** Accept a new stack if every layer leaves an output; otherwise say why and keep the old one. */
  function setStack(layers, n, said) {
    const limits = get("limits");
    const why = n < 4 || n > limits.input_size ? `the input side must be between 4 and ${limits.input_size}`
      : problemOf(n, layers, limits);
    if (why) {
      ui.status.textContent = `Not applied: ${why}.`;
      return false;
    }
    if (n === get("input_size") && JSON.stringify(layers) === JSON.stringify(get("layers"))) return true;
    const sizes = sizesOf(n, layers), [m0, r0, c0] = get("selection");
    const m = Math.min(m0, layers.length), side = sizes[m];
    announceAfter = said;                          // every redraw of this change starts with it
    model.set("layers", layers);
    model.set("input_size", n);
    model.set("selection", [m, Math.min(r0, side - 1), Math.min(c0, side - 1)]);
    save();
    redraw();
    announceAfter = "";
    return true;
  }
  let announceAfter = "";

  on(ui.add, "click", () => {
    const layers = get("layers"), limits = get("limits");
    for (const L of [{ kind: "conv", kernel: 3, stride: 1, dilation: 1, padding: 1 },
                     { kind: "pool", kernel: 2, stride: 2, dilation: 1, padding: 0 },
                     { kind: "conv", kernel: 1, stride: 1, dilation: 1, padding: 0 }]) {
      if (!problemOf(get("input_size"), [...layers, L], limits)) {
        setLayers([...layers, L], `Added layer ${layers.length + 1}: ${L.kind} ${L.kernel}\u00d7${L.kernel}.`);
        return;
      }
    }
  });
  on(ui.trained, "click", () => {
    const eff = get("effective");
    setStack(get("trained_layers"), eff.size || get("input_size"), "The trained network's layers.");
  });

  // -- the maps -------------------------------------------------------------------------------
  function rebuildMaps() {
    const { layers, sizes } = st;
    st.maps = sizes.map((n, m) => {
      const canvas = h("canvas", { "aria-hidden": "true" });
      const L = layers[m - 1];
      const title = m === 0 ? `input, ${n}\u00d7${n}`
        : `layer ${m}: ${L.kind === "conv" ? "conv" : "max pool"} ${L.kernel}\u00d7${L.kernel}` +
          `${L.stride > 1 ? `, stride ${L.stride}` : ""}${L.dilation > 1 ? `, dilation ${L.dilation}` : ""}` +
          `${L.padding ? `, padding ${L.padding}` : ""} \u2192 ${n}\u00d7${n}`;
      const box = h("div", { class: "rf-map", tabindex: "0", role: "group", "data-map": m,
        "aria-label": `${title}: arrow keys move the selection, Page Up / Page Down change map`,
        "aria-describedby": ui.keys.id }, [canvas]);
      const fig = h("figure", { class: "rf-panel" }, [h("figcaption", { text: title }), box]);
      const pick = (ev) => {
        const rect = canvas.getBoundingClientRect(), cell = cellSize(n);
        const x = Math.floor((ev.clientX - rect.left) / cell), y = Math.floor((ev.clientY - rect.top) / cell);
        if (x >= 0 && y >= 0 && x < n && y < n) select([m, y, x]);
      };
      on(canvas, "pointermove", pick);
      on(canvas, "click", (ev) => { pick(ev); box.focus(); });
      on(box, "keydown", (ev) => keydown(ev, m));
      return { canvas, box, fig, n, cell: cellSize(n) };
    });
    ui.maps.replaceChildren(...st.maps.map((x) => x.fig));
  }

  function select(sel) {
    const old = get("selection");
    if (old[0] === sel[0] && old[1] === sel[1] && old[2] === sel[2]) return;
    model.set("selection", sel);
    save();
  }

  function keydown(ev, m) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const [m0, r0, c0] = get("selection"), n = st.sizes[m];
    let [r, c] = m0 === m ? [r0, c0] : [Math.floor(n / 2), Math.floor(n / 2)];
    const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
    let target = m;
    if (ev.key in moves) { r += moves[ev.key][0]; c += moves[ev.key][1]; }
    else if (ev.key === "Home") { r = 0; c = 0; }
    else if (ev.key === "End") { r = n - 1; c = n - 1; }
    else if (ev.key === "PageUp" || ev.key === "PageDown") {
      target = Math.min(Math.max(m + (ev.key === "PageDown" ? 1 : -1), 0), st.sizes.length - 1);
      const scale = st.sizes[target] / n;
      r = Math.floor((r + 0.5) * scale); c = Math.floor((c + 0.5) * scale);
    } else return;
    ev.preventDefault();
    const nt = st.sizes[target];
    select([target, Math.min(Math.max(r, 0), nt - 1), Math.min(Math.max(c, 0), nt - 1)]);
    if (target !== m) st.maps[target].box.focus();
  }
  on(ui.root, "focusin", (ev) => {
    const m = Number(ev.target.dataset?.map);
    if (ev.target.classList.contains("rf-map") && get("selection")[0] !== m) {
      const n = st.sizes[m];
      select([m, Math.floor(n / 2), Math.floor(n / 2)]);
    }
  });

  function redraw() {
    const { layers, sizes } = st, [m0, r0, c0] = get("selection");
    const m = Math.min(m0, layers.length), row = Math.min(r0, sizes[m] - 1), col = Math.min(c0, sizes[m] - 1);
    for (const [t, map] of st.maps.entries()) {
      let rows = null, cols = null, kind = null;
      if (t < m) { rows = fieldAxis(layers, sizes, m, row, t); cols = fieldAxis(layers, sizes, m, col, t); kind = "field"; }
      if (t > m) { rows = reachAxis(layers, sizes, m, row, t); cols = reachAxis(layers, sizes, m, col, t); kind = "reach"; }
      drawMap(map.canvas, map.n, map.cell, rows, cols, kind, t === m ? [row, col] : null);
      map.box.classList.toggle("rf-selected", t === m);
    }
    const text = describe(layers, sizes, [m, row, col]);
    ui.status.textContent = announceAfter ? `${announceAfter} ${text}` : text;
  }

  // -- the effective field of the trained network ---------------------------------------------
  function rebuildEffective() {
    const eff = get("effective"), trained = get("trained_layers");
    ui.erf.hidden = !eff || !eff.map;
    if (ui.erf.hidden) return;
    const n = eff.size, cell = cellSize(n), px = n * cell + 1, canvas = ui.erfCanvas, ctx = canvas.getContext("2d");
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    canvas.width = canvas.height = Math.round(px * dpr);
    canvas.style.width = canvas.style.height = `${px}px`;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const v = 255 - Math.round(235 * Math.sqrt(eff.map[y][x]));      // darker = larger gradient
        ctx.fillStyle = `rgb(${v}, ${v}, ${Math.min(255, v + 20)})`;
        ctx.fillRect(x * cell, y * cell, cell + 1, cell + 1);
      }
    }
    const sizes = sizesOf(n, trained);
    const rows = fieldAxis(trained, sizes, eff.layer, eff.row), cols = fieldAxis(trained, sizes, eff.layer, eff.col);
    frameBox(ctx, cell, rows, cols, [5, 3], "#c25e00", 2);
    const half = halfMassSide(eff.map, [rows[0], rows[rows.length - 1]], [cols[0], cols[cols.length - 1]]);
    const t0 = (extent(rows) - half) / 2, t1 = (extent(cols) - half) / 2;
    ctx.lineWidth = 2; ctx.strokeStyle = "#c25e00";
    ctx.strokeRect((cols[0] + t1) * cell + 0.5, (rows[0] + t0) * cell + 0.5, half * cell, half * cell);
    const same = JSON.stringify(trained) === JSON.stringify(st.layers) && n === st.n;
    ui.erfCaption.textContent = `Effective receptive field of the trained network: |\u2202 output / \u2202 input| of ` +
      `unit [${eff.row}, ${eff.col}] of its layer ${eff.layer}, averaged over ${eff.digits} digits (darker = larger). ` +
      `Dashed: its theoretical field, ${extent(rows)} \u00d7 ${extent(cols)}; solid: the central ${half} \u00d7 ${half} ` +
      "that holds half of the gradient.";
    ui.erfNote.textContent = (same ? "" : "This is the trained network's stack, not the one above: the button " +
      "\u201cTrained network\u2019s layers\u201d loads it. ") + "Computed in Python; in JupyterLab with the network " +
      "attached it follows your selection.";
    ui.erf.dataset.half = half;
  }

  const onStack = () => { rebuild(); redraw(); };
  const onEffective = () => rebuildEffective();
  model.on("change:layers", onStack);
  model.on("change:input_size", onStack);
  model.on("change:selection", redraw);
  model.on("change:effective", onEffective);
  rebuild();
  redraw();

  // a small handle for tests and for measuring redraw time
  ui.root.rf = { redraw, get sizes() { return st.sizes.slice(); } };

  return () => {
    ac.abort();
    model.off("change:layers", onStack);
    model.off("change:input_size", onStack);
    model.off("change:selection", redraw);
    model.off("change:effective", onEffective);
  };
}

function buildDom(limits) {
  const uid = Math.random().toString(36).slice(2);
  const head = ["map", "kind", "kernel k", "stride s", "dilation d", "padding p", "side n", "jump j", "field r", ""];
  const tbody = h("tbody");
  const table = h("table", { class: "rf-table" }, [
    h("caption", { text: "The stack: edit any value; side, jump and receptive field follow " +
      "(r\u2097 = r\u2097\u208b\u2081 + (k\u2097 \u2212 1)\u00b7d\u2097\u00b7j\u2097\u208b\u2081, j\u2097 = j\u2097\u208b\u2081\u00b7s\u2097)" }),
    h("thead", {}, [h("tr", {}, head.map((t, i) => h(i === head.length - 1 ? "td" : "th", { scope: "col", text: t })))]),
    tbody]);
  const add = h("button", { type: "button", class: "rf-add" }, [h("span", { "aria-hidden": "true", text: "+ " }),
    `Add a layer (up to ${limits.layers})`]);
  const trained = h("button", { type: "button", class: "rf-trained" }, ["Trained network\u2019s layers"]);
  const keys = h("p", { class: "rf-keys", id: `rf-keys-${uid}`, text: "Hover or click a cell, or Tab to a map and use " +
    "the arrow keys; Home / End corners; Page Up / Page Down the previous / next map." });
  const maps = h("div", { class: "rf-maps" });
  const status = h("p", { class: "rf-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const erfCanvas = h("canvas", { "aria-hidden": "true" });
  const erfCaption = h("figcaption"), erfNote = h("p", { class: "rf-note" });
  const erf = h("figure", { class: "rf-erf" }, [erfCaption, erfCanvas, erfNote]);
  const swatch = (cls, label) => h("li", {}, [h("span", { class: `rf-swatch ${cls}`, "aria-hidden": "true" }), ` ${label}`]);
  const legend = h("ul", { class: "rf-legend", "aria-label": "legend" }, [
    swatch("rf-sw-select", "selected unit: black frame"),
    swatch("rf-sw-field", "in its receptive field (earlier maps): orange, hatched"),
    swatch("rf-sw-reach", "units that see it (later maps): blue, dotted"),
    swatch("rf-sw-box", "bounding box: dashed"),
  ]);
  const root = h("div", { class: "rf" }, [
    h("div", { class: "rf-table-wrap" }, [table]),
    h("div", { class: "rf-actions" }, [add, trained]),
    keys, maps, status, legend, erf,
  ]);
  return { root, tbody, add, trained, keys, maps, status, erf, erfCanvas, erfCaption, erfNote };
}

export default { render };
