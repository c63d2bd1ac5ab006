// The view of conv_course.widgets.BackpropStampExplorer: an anywidget ES module with no imports,
// run as is by JupyterLab and by the static book (through the offline widget manager). It computes
// the backward pass of the convolution itself, so selecting a pixel needs no Python kernel.

/** Output length of a convolution: floor((n + 2p - d(k - 1) - 1) / s) + 1. */
export function outputSize(n, k, s, p, d) {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Why the dilated kernel does not fit in the padded input, or null (the same words as Python's `no_output`). */
export function noOutput(H, W, kh, kw, p, d) {
  for (const [lines, n, k] of [["rows", H, kh], ["columns", W, kw]]) {
    const span = d * (k - 1) + 1, padded = n + 2 * p;
    if (span > padded) return `leaves no output: the dilated kernel spans ${span} ${lines}, the padded input has only ${padded}`;
  }
  return null;
}

/** The value a new output-gradient cell gets (Python's `grad_value`), and an h x w grid keeping `old`. */
export const gradValue = (i, j) => 1 + ((i + 2 * j) % 3);
export function filled(h, w, old) {
  return Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => old?.[i]?.[j] ?? gradValue(i, j)));
}

/** G one-hot: 1 at (i, j), 0 elsewhere; the loss is then the single output out[i, j]. */
export function oneHot(h, w, i, j) {
  return Array.from({ length: h }, (_, r) => Array.from({ length: w }, (_, c) => (r === i && c === j ? 1 : 0)));
}

const zeros = (h, w) => Array.from({ length: h }, () => new Array(w).fill(0));

/**
 * The backward pass as a scatter: every G[i, j] stamps G[i, j] * K onto the window of the padded
 * input that produced out[i, j] (taps D apart, starting at (iS, jS)), and adds G[i, j] times that
 * window of x to grad_weight. Returns grad_x on the padded grid, grad_x (H x W) and grad_weight.
 */
export function backward(x, k, G, { stride: s, padding: p, dilation: d }) {
  const H = x.length, W = x[0].length, kh = k.length, kw = k[0].length;
  const padded = zeros(H + 2 * p, W + 2 * p), gradWeight = zeros(kh, kw);
  G.forEach((row, i) => row.forEach((g, j) => {
    if (g === 0) return;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const y = i * s + a * d, xx = j * s + b * d;
        padded[y][xx] += g * k[a][b];
        const inside = y >= p && xx >= p && y < H + p && xx < W + p;
        if (inside) gradWeight[a][b] += g * x[y - p][xx - p];
      }
    }
  }));
  const gradInput = padded.slice(p, p + H).map((row) => row.slice(p, p + W));
  return { padded, gradInput, gradWeight };
}

/**
 * grad_x read from a pixel's side (the chapter's identity): spread G out with S - 1 zeros between
 * its values, pad it by D(k - 1), correlate with the flipped, dilated kernel, crop the padding.
 */
export function fullCorrelationFlipped(G, k, { stride: s, padding: p, dilation: d }, H, W) {
  const kh = k.length, kw = k[0].length, sh = (G.length - 1) * s + 1, sw = (G[0].length - 1) * s + 1;
  const spread = (y, xx) => (y >= 0 && xx >= 0 && y < sh && xx < sw && y % s === 0 && xx % s === 0 ? G[y / s][xx / s] : 0);
  return Array.from({ length: H }, (_, r) => Array.from({ length: W }, (_, c) => {
    let acc = 0;
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        acc += spread(r + p + a * d - d * (kh - 1), c + p + b * d - d * (kw - 1)) * k[kh - 1 - a][kw - 1 - b];
      }
    }
    return acc;
  }));
}

const num = (v) => String(v).replace("-", "\u2212");
/** "rows 2..4", or "rows 2, 4, 6" when the taps are D apart, or "row 3" for one tap. */
export function span(lines, start, d, k) {
  if (k === 1) return `${lines.slice(0, -1)} ${num(start)}`;
  if (d === 1) return `${lines} ${num(start)}..${num(start + k - 1)}`;
  return `${lines} ${Array.from({ length: k }, (_, a) => num(start + a * d)).join(", ")}`;
}

/** The announcement for the selected pixel: where its stamp lands, in x's coordinates. */
export function stampSentence(st, i, j) {
  const { S, P, D, kh, kw, H, W } = st, g = st.G[i][j], top = i * S - P, left = j * S - P;
  const where = `${span("rows", top, D, kh)}, ${span("columns", left, D, kw)}`;
  const scale = g === 1 ? "" : `${num(g)}\u00b7`;
  let text = `G[${i}, ${j}] = ${num(g)} stamps ${scale}K onto grad_x ${where} and adds ${scale}x ${where} to grad_weight`;
  const outRows = Array.from({ length: kh }, (_, a) => top + a * D).filter((y) => y < 0 || y >= H);
  const outCols = Array.from({ length: kw }, (_, b) => left + b * D).filter((c) => c < 0 || c >= W);
  if (outRows.length || outCols.length) {
    const parts = [outRows.length ? `${outRows.length === 1 ? "row" : "rows"} ${outRows.map(num).join(", ")}` : "",
                   outCols.length ? `${outCols.length === 1 ? "column" : "columns"} ${outCols.map(num).join(", ")}` : ""];
    text += `; the taps on ${parts.filter(Boolean).join(" and ")} fall on the zero padding: their gradient is dropped and they add 0`;
  }
  return `${text}.`;
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

/** Settings from the synced model; G keeps the output's shape even between two synced changes. */
export function settingsOf(get) {
  const x = get("x"), k = get("kernel");
  const st = { x, k, H: x.length, W: x[0].length, kh: k.length, kw: k[0].length, P: get("padding"),
               S: get("stride"), D: get("dilation") };
  st.problem = noOutput(st.H, st.W, st.kh, st.kw, st.P, st.D);
  st.Ho = st.problem ? 0 : outputSize(st.H, st.kh, st.S, st.P, st.D);
  st.Wo = st.problem ? 0 : outputSize(st.W, st.kw, st.S, st.P, st.D);
  const g = get("grad_out");
  st.grad = g.length === st.Ho && g[0]?.length === st.Wo ? g : filled(st.Ho, st.Wo, g);
  return st;
}

function render({ model, el }) {
  const ui = buildDom(model);
  el.append(ui.root);
  const ac = new AbortController();
  const on = (node, type, fn) => node.addEventListener(type, fn, { signal: ac.signal });
  const get = (name) => model.get(name);
  const save = () => {
    try { model.save_changes(); } catch (err) { /* static page: no kernel to sync with */ }
  };
  let st = null, dirty = true, marked = [];

  // -- settings: rebuild the grids -------------------------------------------------------------
  function flush() {
    if (!dirty) return;
    dirty = false;
    rebuild();
  }
  function schedule() {
    dirty = true;
    queueMicrotask(() => { if (dirty) redraw(); });
  }

  function grid(node, rows, cols, cell) {
    node.style.gridTemplateColumns = `repeat(${cols}, var(--bs-w, var(--bs-cell)))`;
    const cells = [];
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) cells.push(cell(y, x));
    node.replaceChildren(...cells);
    return { cells, cols };
  }
  const cellOf = (cls, text = "") => h("span", { class: `bs-cell ${cls}`, text: String(text) });
  const padGrid = (node, fill) => grid(node, st.H + 2 * st.P, st.W + 2 * st.P, (y, xx) => {
    const inside = y >= st.P && xx >= st.P && y < st.H + st.P && xx < st.W + st.P;
    return inside ? cellOf("bs-in", fill(y - st.P, xx - st.P)) : cellOf("bs-pad", 0);
  });

  function rebuild() {
    st = settingsOf(get);
    const { x, k, H, W, kh, kw, P, S, D } = st;
    marked = [];
    for (const [name, input] of Object.entries(ui.numbers)) {
      if (document.activeElement !== input || Number(input.value) !== get(name)) input.value = get(name);
    }
    ui.xGrid.grid = padGrid(ui.xGrid.node, (y, xx) => num(x[y][xx]));
    ui.xGrid.caption.textContent = `x, ${H}\u00d7${W}` + (P ? `, zero padding P = ${P} (hatched)` : "");
    grid(ui.kGrid.node, kh, kw, (a, b) => cellOf("bs-k", num(k[a][b])));
    ui.kGrid.caption.textContent = `K, ${kh}\u00d7${kw}` + (D > 1 ? `, dilation D = ${D}: taps ${D} apart` : "");
    ui.gGrid.grid = grid(ui.gGrid.node, st.Ho, st.Wo, () => cellOf("bs-g"));
    ui.gxGrid.grid = padGrid(ui.gxGrid.node, () => 0);
    ui.gxGrid.caption.textContent = `grad_x, ${H}\u00d7${W}` + (P ? "; the hatched border is the padding: its gradient is dropped" : "");
    ui.gwGrid.grid = grid(ui.gwGrid.node, kh, kw, () => cellOf("bs-gw"));
    ui.gwGrid.caption.textContent = `grad_weight, ${kh}\u00d7${kw}`;
    const widest = Math.max(W + 2 * P, st.Wo, 1);
    ui.root.style.setProperty("--bs-cell", `${Math.max(24, Math.min(32, Math.floor(300 / widest)))}px`);
    ui.problem.hidden = !st.problem;
    ui.problem.textContent = st.problem ? `With these settings the kernel ${st.problem}.` : "";
    ui.strideNote.textContent = st.problem ? "" : `G is ${st.Ho}\u00d7${st.Wo}, the output's shape. One step along G ` +
      `moves the window ${S} ${S === 1 ? "cell" : "cells"} in x, so the stamps of neighbouring G pixels ${overlap(S, D, kw)}.`;
  }

  // -- selection: the gradients and the marks ------------------------------------------------
  function selection() {
    const [i, j] = get("selection");
    return [Math.min(Math.max(i, 0), Math.max(st.Ho - 1, 0)), Math.min(Math.max(j, 0), Math.max(st.Wo - 1, 0))];
  }
  function show(g, values) {
    let t = 0;
    for (const row of values) {
      for (const v of row) {
        const text = num(v), cell = g.cells[t++];
        if (cell.textContent !== text) cell.textContent = text;
      }
    }
  }
  function mark(g, y, x, cls, text) {
    const cell = g.cells[y * g.cols + x];
    cell.classList.add(cls);
    if (text !== undefined) cell.dataset.w = text;
    marked.push(cell);
  }

  function redraw() {
    flush();
    for (const cell of marked) { cell.classList.remove("bs-tap", "bs-current"); delete cell.dataset.w; }
    marked = [];
    if (st.problem) {
      ui.status.textContent = `With these settings the kernel ${st.problem}.`;
      ui.arith.textContent = ui.check.textContent = "";
      return;
    }
    const [i, j] = selection(), acc = get("accumulate"), params = { stride: st.S, padding: st.P, dilation: st.D };
    st.G = acc ? st.grad : oneHot(st.Ho, st.Wo, i, j);
    st.result = backward(st.x, st.k, st.G, params);
    show(ui.gGrid.grid, st.G);
    show(ui.gxGrid.grid, st.result.padded);
    show(ui.gwGrid.grid, st.result.gradWeight);
    markStamp(i, j);
    st.check = acc ? fullCorrelationFlipped(st.G, st.k, params, st.H, st.W) : null;
    explain(i, j, acc);
  }

  /** The selected G pixel, its window on x (kernel index), and what it adds to grad_x and grad_weight. */
  function markStamp(i, j) {
    const { x, k, kh, kw, S, P, D, H, W } = st, g = st.G[i][j];
    mark(ui.gGrid.grid, i, j, "bs-current");
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const y = i * S + a * D, xx = j * S + b * D, inside = y >= P && xx >= P && y < H + P && xx < W + P;
        mark(ui.xGrid.grid, y, xx, "bs-tap", `${a},${b}`);
        mark(ui.gxGrid.grid, y, xx, "bs-tap", `+${num(g * k[a][b])}`);
        mark(ui.gwGrid.grid, a, b, "bs-tap", `+${num(inside ? g * x[y - P][xx - P] : 0)}`);
      }
    }
  }

  function explain(i, j, acc) {
    const sentence = stampSentence(st, i, j), n = st.Ho * st.Wo;
    if (!acc) {
      ui.arith.textContent = `G is one-hot at (${i}, ${j}), so the loss is out[${i}, ${j}]: ` +
        "grad_x is K on its window, grad_weight is the window of x.";
      ui.check.textContent = "";
      ui.status.textContent = sentence;
      return;
    }
    const diff = maxDiff(st.check, st.result.gradInput);
    ui.arith.textContent = `G is all of grad_out: grad_x and grad_weight are the sums of all ${n} stamps; ` +
      `the marked +numbers are what G[${i}, ${j}] adds.`;
    ui.check.textContent = `Check: the full correlation of G (spread out with S \u2212 1 = ${st.S - 1} zeros between ` +
      `its values, zero-padded) with the flipped kernel gives the same grad_x; largest difference ${diff}.`;
    ui.status.textContent = `${sentence} All ${n} stamps summed: grad_x ${diff === 0 ? "equals" : "differs from"} ` +
      "the full correlation with the flipped kernel.";
  }

  // -- selecting: arrow keys on the grids, a click on a G cell -------------------------------
  function select(i, j) {
    if (!st || st.problem) return;
    i = Math.min(Math.max(i, 0), st.Ho - 1); j = Math.min(Math.max(j, 0), st.Wo - 1);
    const [i0, j0] = get("selection");
    if (i === i0 && j === j0) { redraw(); return; }
    model.set("selection", [i, j]);
    save();
  }
  on(ui.stage, "keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || !st || st.problem) return;
    const [i, j] = selection();
    const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
    if (ev.key in moves) select(i + moves[ev.key][0], j + moves[ev.key][1]);
    else if (ev.key === "Home") select(0, 0);
    else if (ev.key === "End") select(st.Ho - 1, st.Wo - 1);
    else return;
    ev.preventDefault();
  });
  on(ui.gGrid.node, "click", (ev) => {
    const t = ui.gGrid.grid?.cells.indexOf(ev.target.closest(".bs-cell"));
    if (t === undefined || t < 0) return;
    select(Math.floor(t / st.Wo), t % st.Wo);
    ui.stage.focus();
  });

  // -- controls: a setting that leaves no output is refused and explained --------------------
  for (const [name, input] of Object.entries(ui.numbers)) {
    const apply = (final) => {
      const v = Number(input.value);
      if (input.value.trim() === "" || !Number.isInteger(v) || v < Number(input.min) || v > Number(input.max)) {
        if (final) input.value = get(name);
        return;
      }
      if (v === get(name)) return;
      const next = { P: get("padding"), D: get("dilation"), [name === "padding" ? "P" : "D"]: v };
      const why = name === "stride" ? null : noOutput(st.H, st.W, st.kh, st.kw, next.P, next.D);
      if (why) {
        input.value = get(name);
        ui.status.textContent = `${input.dataset.label} = ${v} ${why}; it stays ${get(name)}.`;
        return;
      }
      model.set(name, v);
      const s = settingsOf(get), [i, j] = get("selection");
      model.set("grad_out", s.grad);
      model.set("selection", [Math.min(i, s.Ho - 1), Math.min(j, s.Wo - 1)]);
      save();
    };
    on(input, "input", () => apply(false));
    on(input, "change", () => apply(true));
  }
  for (const radio of ui.modes) {
    on(radio, "change", () => { model.set("accumulate", radio.value === "all"); save(); });
  }
  function syncModes() {
    for (const radio of ui.modes) radio.checked = (radio.value === "all") === get("accumulate");
  }

  const settings = ["x", "kernel", "grad_out", "padding", "stride", "dilation"];
  for (const name of settings) model.on(`change:${name}`, schedule);
  const onMode = () => { syncModes(); redraw(); };
  model.on("change:selection", redraw);
  model.on("change:accumulate", onMode);
  syncModes();
  redraw();

  // a small handle for tests and for measuring redraw time
  ui.root.bs = {
    get gradInput() { redraw(); return st.problem ? null : st.result.gradInput; },
    get gradWeight() { redraw(); return st.problem ? null : st.result.gradWeight; },
    get fullCorrelation() { redraw(); return st.check; },
    select, redraw,
  };

  return () => {
    ac.abort();
    for (const name of settings) model.off(`change:${name}`, schedule);
    model.off("change:selection", redraw);
    model.off("change:accumulate", onMode);
  };
}

/** How two stamps S apart share cells: their taps (D apart, k of them) coincide when S is a multiple of D. */
function overlap(S, D, k) {
  if (S % D === 0 && S / D <= k - 1) return "share cells, where they add up";
  return S < D * (k - 1) + 1 ? "interleave without sharing a cell" : "do not overlap";
}

/** The largest |a - b| over two grids of the same shape. */
function maxDiff(a, b) {
  let worst = 0;
  a.forEach((row, r) => row.forEach((v, c) => { worst = Math.max(worst, Math.abs(v - b[r][c])); }));
  return worst;
}

function buildDom(model) {
  const limits = model.get("limits");
  const uid = Math.random().toString(36).slice(2);
  const numbers = {};
  const number = (name, label, min, max) => {
    const input = h("input", { type: "number", name, min, max, step: 1, inputmode: "numeric", id: `bs-${name}-${uid}`,
                               "data-label": label });
    numbers[name] = input;
    return h("label", { class: "bs-field", for: input.id }, [h("span", { text: label }), input]);
  };
  const modes = ["one", "all"].map((v) => h("input", { type: "radio", name: `bs-mode-${uid}`, value: v }));
  const panel = (cls, caption) => {
    const node = h("div", { class: `bs-grid ${cls}` }), cap = h("figcaption", { text: caption || "" });
    return { node, caption: cap, figure: h("figure", { class: `bs-panel ${cls}-panel` }, [cap, node]) };
  };
  const xGrid = panel("bs-x"), kGrid = panel("bs-kernel"), gGrid = panel("bs-gout", "G = \u2202L/\u2202out: click a cell");
  const gxGrid = panel("bs-gx"), gwGrid = panel("bs-gw-grid");
  const keysHelp = h("p", { class: "bs-keys", id: `bs-keys-${uid}`,
    text: "Keys: \u2190 \u2192 \u2191 \u2193 move the selected G pixel, Home / End first / last; or click a cell of G." });
  const stage = h("div", { class: "bs-stage", tabindex: "0", role: "group", "aria-describedby": keysHelp.id,
    "aria-label": "gradients: use the arrow keys to select the output-gradient pixel G[i, j]" },
  [xGrid.figure, kGrid.figure, gGrid.figure, gxGrid.figure, gwGrid.figure]);
  const status = h("p", { class: "bs-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const swatch = (cls, text, label, w) => h("li", {}, [
    h("span", { class: `bs-cell ${cls}`, "aria-hidden": "true", "data-w": w, text }), ` ${label}`]);
  const root = h("div", { class: "bs" }, [
    h("div", { class: "bs-controls" }, [
      h("fieldset", { class: "bs-args" }, [h("legend", { text: "arguments" }), number("stride", "stride S", 1, limits.stride),
        number("padding", "padding P", 0, limits.padding), number("dilation", "dilation D", 1, limits.dilation)]),
      h("fieldset", { class: "bs-mode" }, [h("legend", { text: "output gradient G" }),
        h("label", {}, [modes[0], " one-hot at the selected pixel"]),
        h("label", {}, [modes[1], " all of G: accumulate every stamp"])]),
    ]),
    h("p", { class: "bs-problem", hidden: true }),
    h("p", { class: "bs-note" }),
    stage, keysHelp,
    h("p", { class: "bs-arith" }), h("p", { class: "bs-check" }), status,
    h("ul", { class: "bs-legend", "aria-label": "legend" }, [
      swatch("bs-current", "1", "selected G pixel: double border, bold"),
      swatch("bs-in bs-tap", "9", "window of the selected pixel: thick border; on x the kernel tap a,b", "1,2"),
      swatch("bs-in bs-tap", "6", "on grad_x and grad_weight: +amount this pixel adds", "+6"),
      swatch("bs-pad", "0", "zero padding: hatched, dashed border"),
    ]),
  ]);
  const [problem, strideNote] = root.querySelectorAll(".bs-problem, .bs-note");
  return { root, numbers, modes, stage, status, problem, strideNote, xGrid, kGrid, gGrid, gxGrid, gwGrid,
           arith: root.querySelector(".bs-arith"), check: root.querySelector(".bs-check") };
}

export default { render };
