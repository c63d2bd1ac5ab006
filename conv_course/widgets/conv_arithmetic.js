// The view of conv_course.widgets.ConvArithmeticExplorer: an anywidget ES module with no imports,
// run as is by JupyterLab and by the static book (through the offline widget manager). It computes
// the convolution (or the transposed one) itself, so stepping needs no Python kernel.

const STEP_MS = 900; // one animation step

/** Output length of a convolution: floor((n + 2p - d(k - 1) - 1) / s) + 1. */
export function outputSize(n, k, s, p, d) {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/** Output length of a transposed convolution: (n - 1)s - 2p + d(k - 1) + op + 1. */
export function transposedSize(n, k, s, p, d, op) {
  return (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/** The values new cells get (the Python side uses the same two functions). */
export const inputValue = (i, j) => 1 + ((3 * i + j) % 5);
export const kernelValue = (i, j) => 1 + ((2 * i + j) % 3);

/** An h x w grid: `old` where it reaches, value(i, j) elsewhere. */
export function filled(h, w, value, old) {
  return Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => old?.[i]?.[j] ?? value(i, j)));
}

const num = (v) => String(v).replace("-", "\u2212");
const paren = (v) => (v < 0 ? `(${num(v)})` : String(v));
const count = (n, lines) => `${n} ${n === 1 ? lines.slice(0, -1) : lines}`;

/** Settings {H, W, kh, kw, P, S, D, T, OP} from the synced model. */
export function settingsOf(get) {
  const x = get("input"), k = get("kernel");
  return { x, k, H: x.length, W: x[0].length, kh: k.length, kw: k[0].length, P: get("padding"),
           S: get("stride"), D: get("dilation"), T: get("transposed"), OP: get("output_padding") };
}

/** Why the settings give no output, in words, or null (the same text as the Python `problem`). */
export function problem(st) {
  const { P, S, D, OP } = st;
  if (st.T && OP >= Math.max(S, D)) {
    return `output_padding = ${OP} is too large: it must be smaller than max(stride, dilation) = ` +
      `max(${S}, ${D}) = ${Math.max(S, D)}. It adds rows and columns at the bottom and right to ` +
      "recover input sizes that the forward convolution's floor dropped, and PyTorch (like " +
      "ops.conv_transpose2d) accepts only values below max(stride, dilation).";
  }
  const axes = [["height", "rows", "H", st.H, st.kh], ["width", "columns", "W", st.W, st.kw]];
  for (const [axis, lines, L, n, K] of axes) {
    if (!st.T) {
      const span = D * (K - 1) + 1, padded = n + 2 * P;
      const out = Math.floor((padded - span) / S) + 1;
      if (out >= 1) continue;
      const fixes = [`padding \u2265 ${Math.ceil((span - n) / 2)}`];
      if (D > 1 && Math.floor((padded - 1) / (K - 1)) >= 1) fixes.push(`dilation \u2264 ${Math.floor((padded - 1) / (K - 1))}`);
      fixes.push(`a kernel of at most ${count(Math.floor((padded - 1) / D) + 1, lines)}`);
      return `No output along the ${axis}: ${L}_out = \u230a(${L} + 2P \u2212 D(K\u22121) \u2212 1) / S\u230b + 1 = ` +
        `\u230a(${n} + 2\u00b7${P} \u2212 ${D}\u00b7(${K}\u22121) \u2212 1) / ${S}\u230b + 1 = ${num(out)}, ` +
        `less than 1. The term D(K\u22121) = ${D * (K - 1)} is larger than ${L} + 2P \u2212 1 = ` +
        `${padded - 1}: the dilated kernel spans ${count(span, lines)}, the padded input has ` +
        `only ${padded}. It fits with ${fixes.join(" or ")}.`;
    }
    const full = (n - 1) * S + D * (K - 1) + OP + 1, out = full - 2 * P;
    if (out >= 1) continue;
    return `No output along the ${axis}: ${L}_out = (${L}\u22121)\u00b7S \u2212 2P + D(K\u22121) + output_padding + 1 = ` +
      `(${n}\u22121)\u00b7${S} \u2212 2\u00b7${P} + ${D}\u00b7(${K}\u22121) + ${OP} + 1 = ${num(out)}, less than 1. ` +
      `The term 2P = ${2 * P} is not smaller than the full output's ${count(full, lines)}: the ` +
      `transposed convolution's padding removes P ${lines} on each side of the full output, ` +
      `(${L}\u22121)\u00b7S + D(K\u22121) + output_padding + 1 = ${full}. It fits with padding \u2264 ${Math.floor((full - 1) / 2)}.`;
  }
  return null;
}

/** The size formula of the mode with the numbers substituted, one line per axis. */
export function formulaLines(st) {
  const { P, S, D, OP } = st;
  return [["H", st.H, st.kh], ["W", st.W, st.kw]].map(([L, n, K]) => {
    if (st.T) {
      return `${L}_out = (${L}\u22121)\u00b7S \u2212 2P + D(K\u22121) + output_padding + 1 = ` +
        `(${n}\u22121)\u00b7${S} \u2212 2\u00b7${P} + ${D}\u00b7(${K}\u22121) + ${OP} + 1 = ${num(transposedSize(n, K, S, P, D, OP))}`;
    }
    const inner = n + 2 * P - D * (K - 1) - 1;
    return `${L}_out = \u230a(${L} + 2P \u2212 D(K\u22121) \u2212 1) / S\u230b + 1 = ` +
      `\u230a(${n} + 2\u00b7${P} \u2212 ${D}\u00b7(${K}\u22121) \u2212 1) / ${S}\u230b + 1 = ` +
      `\u230a${num(inner)} / ${S}\u230b + 1 = ${num(outputSize(n, K, S, P, D))}`;
  });
}

/** Cross-correlation of x with k (rows of numbers), as ops.conv2d: rows of the output. */
export function conv2d(x, k, { padding: p, stride: s, dilation: d }) {
  const H = x.length, W = x[0].length, kh = k.length, kw = k[0].length;
  const ho = outputSize(H, kh, s, p, d), wo = outputSize(W, kw, s, p, d);
  return Array.from({ length: ho }, (_, r) => Array.from({ length: wo }, (_, c) => {
    let acc = 0;
    for (let i = 0; i < kh; i++) {
      const y = r * s + i * d - p;
      if (y < 0 || y >= H) continue;
      for (let j = 0; j < kw; j++) {
        const xx = c * s + j * d - p;
        if (xx >= 0 && xx < W) acc += x[y][xx] * k[i][j];
      }
    }
    return acc;
  }));
}

/** The full (uncropped) transposed output after the stamps of input cells 0..last (row-major). */
export function stamps(x, k, { stride: s, dilation: d, output_padding: op }, last = Infinity) {
  const H = x.length, W = x[0].length, kh = k.length, kw = k[0].length;
  const fh = (H - 1) * s + d * (kh - 1) + 1 + op, fw = (W - 1) * s + d * (kw - 1) + 1 + op;
  const full = Array.from({ length: fh }, () => new Array(fw).fill(0));
  for (let t = 0; t < Math.min(H * W, last + 1); t++) {
    const i = Math.floor(t / W), j = t % W;
    for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) full[i * s + a * d][j * s + b * d] += x[i][j] * k[a][b];
  }
  return full;
}

/** Transposed convolution, as ops.conv_transpose2d: the full output with `padding` cropped on each side. */
export function convTranspose2d(x, k, params) {
  const p = params.padding, full = stamps(x, k, params);
  return full.slice(p, full.length - p).map((row) => row.slice(p, row.length - p));
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

function render({ model, el }) {
  const ui = buildDom(model);
  el.append(ui.root);
  const ac = new AbortController();
  const on = (node, type, fn) => node.addEventListener(type, fn, { signal: ac.signal });
  const get = (name) => model.get(name);
  const save = () => {
    try { model.save_changes(); } catch (err) { /* static page: no kernel to sync with */ }
  };
  let st = null, dirty = true, timer = null;

  // -- settings: rebuild the grids -----------------------------------------------------------
  function flush() {
    if (!dirty) return;
    dirty = false;
    rebuild();
  }
  function schedule() {
    dirty = true;
    queueMicrotask(() => { if (dirty) { flush(); redraw(); } });
  }

  function geometry(s) {
    s.problem = problem(s);
    if (s.problem) { s.gh = 0; s.gw = 0; return s; }
    const { H, W, kh, kw, P, S, D, OP } = s;
    if (s.T) {
      s.ho = transposedSize(H, kh, S, P, D, OP); s.wo = transposedSize(W, kw, S, P, D, OP);
      s.fh = s.ho + 2 * P; s.fw = s.wo + 2 * P; // the full output before cropping
      s.gh = H; s.gw = W;
      s.out = convTranspose2d(s.x, s.k, { padding: P, stride: S, dilation: D, output_padding: OP });
    } else {
      s.ho = outputSize(H, kh, S, P, D); s.wo = outputSize(W, kw, S, P, D);
      s.gh = s.ho; s.gw = s.wo;
      s.out = conv2d(s.x, s.k, { padding: P, stride: S, dilation: D });
    }
    return s;
  }

  function grid(node, rows, cols, cell) {
    node.style.gridTemplateColumns = `repeat(${cols}, var(--ca-cell))`;
    const cells = [];
    for (let y = 0; y < rows; y++) for (let x = 0; x < cols; x++) cells.push(cell(y, x));
    const frame = h("span", { class: "ca-frame", "aria-hidden": "true" });
    node.replaceChildren(...cells, frame);
    return { cells, cols, frame };
  }
  const cellOf = (cls, text) => h("span", { class: `ca-cell ${cls}`, text: String(text) });

  function rebuild() {
    stop();
    st = geometry(settingsOf(get));
    const { x, k, H, W, kh, kw, P, S, D, T, OP } = st;
    syncControls();
    ui.formula.replaceChildren(...formulaLines(st).map((line) => h("span", { text: line })));
    ui.problem.hidden = !st.problem;
    ui.problemText.textContent = st.problem || "";
    ui.root.classList.toggle("ca-transposed", T);
    ui.root.classList.toggle("ca-invalid", !!st.problem);
    // the input: padded for a convolution; each cell of it stamps the kernel when transposed
    const pin = T ? 0 : P;
    st.inGrid = grid(ui.inGrid, H + 2 * pin, W + 2 * pin, (y, xx) => {
      const inside = y >= pin && xx >= pin && y < H + pin && xx < W + pin;
      return inside ? cellOf("ca-x", num(x[y - pin][xx - pin])) : cellOf("ca-pad", 0);
    });
    ui.inCaption.textContent = T ? `Input, ${H}\u00d7${W}: each cell stamps the kernel` :
      `Input, ${H}\u00d7${W}` + (P ? `, zero padding P = ${P} (hatched) makes it ${H + 2 * P}\u00d7${W + 2 * P}` : ", no padding");
    grid(ui.kGrid, kh, kw, (i, j) => cellOf("ca-k", num(k[i][j])));
    ui.kCaption.textContent = `Kernel, ${kh}\u00d7${kw}` +
      (D > 1 ? `, dilation D = ${D}: taps ${D} cells apart, spanning ${D * (kh - 1) + 1}\u00d7${D * (kw - 1) + 1}` : "");
    st.prodGrid = grid(ui.prodGrid, kh, kw, () => cellOf("ca-k", ""));
    ui.prodCaption.textContent = T ? "Stamp: input value \u00d7 kernel" : "Window \u00d7 kernel, summed";
    if (st.problem) {
      st.outGrid = grid(ui.outGrid, 0, 0, () => null);
      ui.outCaption.textContent = "No output: see the explanation above";
    } else if (T) {
      const extraH = st.fh - OP, extraW = st.fw - OP;
      st.outGrid = grid(ui.outGrid, st.fh, st.fw, (y, xx) => {
        const cropped = y < P || xx < P || y >= P + st.ho || xx >= P + st.wo;
        const extra = y >= extraH || xx >= extraW;
        return cellOf(`ca-o${cropped ? " ca-crop" : ""}${extra ? " ca-extra" : ""}`, 0);
      });
      st.shown = new Array(st.fh * st.fw).fill(0);
      ui.outCaption.textContent = `Output, ${st.ho}\u00d7${st.wo}: running sums of the stamps so far` +
        (P ? `; padding P = ${P} crops the hatched border of the full ${st.fh}\u00d7${st.fw}` : "") +
        (OP ? `; output_padding = ${OP} adds the dotted ${OP === 1 ? "row and column" : "rows and columns"} at the ` +
              `bottom and right of the full output, so the crop keeps ${OP} more` : "");
    } else {
      st.outGrid = grid(ui.outGrid, st.ho, st.wo, (r, c) => cellOf("ca-o", num(st.out[r][c])));
      ui.outCaption.textContent = `Output, ${st.ho}\u00d7${st.wo}` + (S > 1 ? `: the window moves ${S} cells a step` : "");
    }
    const maxCols = Math.max(W + 2 * pin, st.fw || st.wo || 1, kw);
    ui.root.style.setProperty("--ca-cell", `${Math.max(16, Math.min(34, Math.floor(300 / maxCols)))}px`);
    ui.root.classList.toggle("ca-small", maxCols > 14);
    for (const b of ui.buttons) b.disabled = !!st.problem;
    st.taps = [];
    st.current = [];
  }

  function syncControls() {
    const presets = get("presets").map((p) => p.name);
    ui.preset.value = presets.includes(get("preset")) ? get("preset") : "custom";
    for (const [name, input] of Object.entries(ui.numbers)) {
      if (document.activeElement !== input || Number(input.value) !== value(name)) input.value = value(name);
    }
    ui.numbers.output_padding.disabled = !st.T;
    for (const radio of ui.modes) radio.checked = (radio.value === "transposed") === st.T;
  }
  function value(name) {
    if (name === "input_h") return st.H;
    if (name === "input_w") return st.W;
    if (name === "kernel_h") return st.kh;
    if (name === "kernel_w") return st.kw;
    return get(name);
  }

  // -- position: redraw the window or the stamp ---------------------------------------------
  function position() {
    const [r, c] = get("position");
    return [Math.min(Math.max(r, 0), Math.max(st.gh - 1, 0)), Math.min(Math.max(c, 0), Math.max(st.gw - 1, 0))];
  }

  function mark(g, y, x, text) {
    const cell = g.cells[y * g.cols + x];
    if (!cell) return;
    cell.classList.add("ca-tap");
    cell.dataset.w = text;
    st.taps.push(cell);
  }
  function frame(g, top, left, rows, cols) {
    Object.assign(g.frame.style, { display: "block", top: `calc(${top} * var(--ca-cell))`, left: `calc(${left} * var(--ca-cell))`,
                                   width: `calc(${cols} * var(--ca-cell))`, height: `calc(${rows} * var(--ca-cell))` });
  }

  function redraw() {
    flush();
    for (const cell of st.taps) { cell.classList.remove("ca-tap"); delete cell.dataset.w; }
    for (const cell of st.current) cell.classList.remove("ca-current");
    st.taps = []; st.current = [];
    if (st.problem) {
      ui.step.textContent = "no steps";
      ui.arith.textContent = "";
      ui.status.textContent = st.problem;
      st.inGrid.frame.style.display = "none";
      return;
    }
    const [r, c] = position(), { x, k, kh, kw, S, D, T, P } = st, t = r * st.gw + c, n = st.gh * st.gw;
    const spanH = D * (kh - 1) + 1, spanW = D * (kw - 1) + 1;
    ui.step.textContent = `step ${t + 1} of ${n}`;
    const prods = st.prodGrid.cells;
    if (!T) {
      const terms = [];
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const y = r * S + i * D, xx = c * S + j * D, g = st.inGrid;
          const v = y < P || xx < P || y >= P + st.H || xx >= P + st.W ? 0 : x[y - P][xx - P];
          mark(g, y, xx, `\u00d7${num(k[i][j])}`);
          prods[i * kw + j].textContent = num(v * k[i][j]);
          terms.push(`${paren(v)}\u00b7${paren(k[i][j])}`);
        }
      }
      frame(st.inGrid, r * S, c * S, spanH, spanW);
      st.outGrid.frame.style.display = "none";
      const cell = st.outGrid.cells[t];
      cell.classList.add("ca-current"); st.current.push(cell);
      const total = st.out[r][c];
      ui.arith.textContent = `output[${r}, ${c}] = ${terms.join(" + ")} = ${num(total)}`;
      ui.status.textContent = `Step ${t + 1} of ${n}: the window covers padded-input rows ${r * S} to ` +
        `${r * S + spanH - 1}, columns ${c * S} to ${c * S + spanW - 1}; output[${r}, ${c}] = ${num(total)}.`;
    } else {
      const v = x[r][c], full = stamps(x, k, { stride: S, dilation: D, output_padding: st.OP }, t), g = st.outGrid;
      for (let y = 0; y < st.fh; y++) {
        for (let xx = 0; xx < st.fw; xx++) {
          const idx = y * st.fw + xx;
          if (st.shown[idx] !== full[y][xx]) { st.shown[idx] = full[y][xx]; g.cells[idx].textContent = num(full[y][xx]); }
        }
      }
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          mark(g, r * S + a * D, c * S + b * D, `+${paren(v * k[a][b])}`);
          prods[a * kw + b].textContent = num(v * k[a][b]);
        }
      }
      frame(g, r * S, c * S, spanH, spanW);
      st.inGrid.frame.style.display = "none";
      const cell = st.inGrid.cells[t];
      cell.classList.add("ca-current"); st.current.push(cell);
      const rows = [r * S - P, r * S + spanH - 1 - P], cols = [c * S - P, c * S + spanW - 1 - P];
      ui.arith.textContent = `input[${r}, ${c}] = ${num(v)}, so the stamp is ${num(v)} \u00d7 kernel; ` +
        "each +number is added to the running sum under it.";
      ui.status.textContent = `Step ${t + 1} of ${n}: input[${r}, ${c}] = ${num(v)} stamps ${num(v)} \u00d7 kernel onto ` +
        `output rows ${num(rows[0])} to ${num(rows[1])}, columns ${num(cols[0])} to ${num(cols[1])}` +
        (rows[0] < 0 || cols[0] < 0 || rows[1] >= st.ho || cols[1] >= st.wo
          ? `; the cells outside the ${st.ho}\u00d7${st.wo} output are cropped.` : ".");
    }
  }

  // -- stepping -------------------------------------------------------------------------------
  function moveTo(t) {
    if (!st || st.problem) return;
    t = Math.min(Math.max(t, 0), st.gh * st.gw - 1);
    const r = Math.floor(t / st.gw), c = t % st.gw, [r0, c0] = get("position");
    if (r === r0 && c === c0) { redraw(); return; }
    model.set("position", [r, c]);
    save();
  }
  const index = () => { const [r, c] = position(); return r * st.gw + c; };
  const last = () => st.gh * st.gw - 1;
  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    ui.play.replaceChildren(...label("\u25b6", "Play"));
    delete ui.play.dataset.playing;
  }
  function togglePlay() {
    if (timer !== null || st.problem) { stop(); return; }
    if (index() >= last()) moveTo(0);
    timer = setInterval(() => { if (index() >= last()) stop(); else moveTo(index() + 1); }, STEP_MS);
    ui.play.replaceChildren(...label("\u275a\u275a", "Pause"));
    ui.play.dataset.playing = "";
  }
  on(ui.first, "click", () => { stop(); moveTo(0); });
  on(ui.prev, "click", () => { stop(); moveTo(index() - 1); });
  on(ui.next, "click", () => { stop(); moveTo(index() + 1); });
  on(ui.end, "click", () => { stop(); moveTo(last()); });
  on(ui.play, "click", togglePlay);
  on(ui.stage, "keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || !st || st.problem) return;
    const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: st.gw, ArrowUp: -st.gw };
    if (ev.key in moves) moveTo(index() + moves[ev.key]);
    else if (ev.key === "Home") moveTo(0);
    else if (ev.key === "End") moveTo(last());
    else if (ev.key === " " || ev.key === "Enter") { togglePlay(); }
    else return;
    if (ev.key !== " " && ev.key !== "Enter") stop();
    ev.preventDefault();
  });

  // -- controls: every change is accepted; a setting without output explains itself ----------
  function setSettings(changes) {
    stop();
    for (const [name, v] of Object.entries(changes)) model.set(name, v);
    const s = geometry(settingsOf(get));
    const [r, c] = get("position");
    const clamped = [Math.min(r, Math.max(s.gh - 1, 0)), Math.min(c, Math.max(s.gw - 1, 0))];
    if (clamped[0] !== r || clamped[1] !== c) model.set("position", clamped);
    if (!("preset" in changes)) model.set("preset", matchingPreset(s));
    save();
  }
  function matchingPreset(s) {
    const p = get("presets").find((q) => q.input[0] === s.H && q.input[1] === s.W && q.kernel[0] === s.kh &&
      q.kernel[1] === s.kw && q.padding === s.P && q.stride === s.S && q.dilation === s.D &&
      q.transposed === s.T && q.output_padding === s.OP);
    return p ? p.name : "custom";
  }
  on(ui.preset, "change", () => {
    const p = get("presets").find((q) => q.name === ui.preset.value);
    if (!p) return;
    const { padding, stride, dilation, transposed, output_padding } = p;
    setSettings({ preset: p.name, position: [0, 0], input: filled(p.input[0], p.input[1], inputValue, get("input")),
                  kernel: filled(p.kernel[0], p.kernel[1], kernelValue, get("kernel")),
                  padding, stride, dilation, transposed, output_padding });
  });
  for (const [name, input] of Object.entries(ui.numbers)) {
    const apply = () => {
      const v = Number(input.value);
      if (input.value.trim() === "" || !Number.isInteger(v) || v < Number(input.min) || v > Number(input.max)) return false;
      if (v === value(name)) return true;
      if (name.startsWith("input_") || name.startsWith("kernel_")) {
        const which = name.startsWith("input_") ? "input" : "kernel", old = get(which);
        const [hh, ww] = name.endsWith("_h") ? [v, old[0].length] : [old.length, v];
        setSettings({ [which]: filled(hh, ww, which === "input" ? inputValue : kernelValue, old) });
      } else {
        setSettings({ [name]: v });
      }
      return true;
    };
    on(input, "input", apply);
    on(input, "change", () => { if (!apply()) input.value = value(name); });
  }
  for (const radio of ui.modes) on(radio, "change", () => setSettings({ transposed: radio.value === "transposed" }));

  const settings = ["input", "kernel", "padding", "stride", "dilation", "transposed", "output_padding", "preset"];
  for (const name of settings) model.on(`change:${name}`, schedule);
  model.on("change:position", redraw);
  flush();
  redraw();

  // a small handle for tests and for measuring redraw time
  ui.root.ca = {
    get output() { flush(); return st.problem ? null : st.out.map((row) => row.slice()); },
    get problem() { flush(); return st.problem; },
    get steps() { flush(); return st.gh * st.gw; },
    moveTo, redraw, flush,
  };

  return () => {
    stop();
    ac.abort();
    for (const name of settings) model.off(`change:${name}`, schedule);
    model.off("change:position", redraw);
  };
}

/** A button's content: the word, with a glyph hidden from screen readers before (or after) it. */
function label(glyph, word, after = false) {
  const g = h("span", { "aria-hidden": "true", text: glyph });
  return after ? [`${word} `, g] : [g, ` ${word}`];
}

function buildDom(model) {
  const limits = model.get("limits");
  const uid = Math.random().toString(36).slice(2);
  const groups = [["Convolution", (p) => !p.transposed && p.dilation === 1], ["Transposed convolution", (p) => p.transposed],
                  ["Dilated convolution", (p) => !p.transposed && p.dilation > 1]];
  const preset = h("select", { class: "ca-preset", name: "preset" }, [
    ...groups.map(([label, test]) => h("optgroup", { label }, model.get("presets").filter(test).map(
      (p) => h("option", { value: p.name, text: p.name })))),
    h("option", { value: "custom", text: "custom settings", disabled: true }),
  ]);
  const number = (name, label, min, max, hint) => {
    const input = h("input", { type: "number", name, min, max, step: 1, inputmode: "numeric", id: `ca-${name}-${uid}` });
    return [input, h("label", { class: "ca-field", for: input.id }, [h("span", { text: label }), input,
      ...(hint ? [h("small", { text: hint })] : [])])];
  };
  const fields = [["input_h", "input rows H", 1, limits.input], ["input_w", "input columns W", 1, limits.input],
                  ["kernel_h", "kernel rows", 1, limits.kernel], ["kernel_w", "kernel columns", 1, limits.kernel],
                  ["padding", "padding P", 0, limits.padding], ["stride", "stride S", 1, limits.stride],
                  ["dilation", "dilation D", 1, limits.dilation],
                  ["output_padding", "output_padding", 0, limits.output_padding, "transposed only"]];
  const numbers = {}, labels = {};
  for (const [name, label, min, max, hint] of fields) [numbers[name], labels[name]] = number(name, label, min, max, hint);
  const modes = ["convolution", "transposed"].map((v) => h("input", { type: "radio", name: `ca-mode-${uid}`, value: v }));
  const modeBox = h("fieldset", { class: "ca-mode" }, [
    h("legend", { text: "operation" }),
    h("label", {}, [modes[0], " convolution (ops.conv2d)"]),
    h("label", {}, [modes[1], " transposed (ops.conv_transpose2d)"]),
  ]);
  // the name a screen reader gives each button is its word; the arrows are decoration
  const button = (cls, glyph, word, after) => h("button", { type: "button", class: cls }, label(glyph, word, after));
  const first = button("ca-first", "|\u25c0", "First"), prev = button("ca-prev", "\u25c0", "Back");
  const play = button("ca-play", "\u25b6", "Play");
  const next = button("ca-next", "\u25b6", "Next", true), end = button("ca-last", "\u25b6|", "Last", true);
  const step = h("span", { class: "ca-step" });
  const status = h("p", { class: "ca-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const panel = (cls, caption) => {
    const g = h("div", { class: `ca-grid ${cls}` }), cap = h("figcaption");
    return [g, cap, h("figure", { class: `ca-panel ${cls}-panel` }, [cap, g])];
  };
  const [inGrid, inCaption, inPanel] = panel("ca-in");
  const [kGrid, kCaption, kPanel] = panel("ca-kernel");
  const [prodGrid, prodCaption, prodPanel] = panel("ca-prod");
  const [outGrid, outCaption, outPanel] = panel("ca-out");
  const keysHelp = h("p", { class: "ca-keys", id: `ca-keys-${uid}`,
    text: "Keys: \u2190 \u2192 one step, \u2191 \u2193 one row, Home / End first / last, Space play / pause." });
  const stage = h("div", { class: "ca-stage", tabindex: "0", role: "group", "aria-describedby": keysHelp.id,
    "aria-label": "window positions: use the arrow keys to step, Space to play" },
    [inPanel, kPanel, prodPanel, outPanel]);
  const problemText = h("span");
  const problemBox = h("p", { class: "ca-problem", hidden: true }, [h("strong", { text: "\u26a0 ", "aria-hidden": "true" }), problemText]);
  const formula = h("p", { class: "ca-formula", "aria-label": "output size" });
  const arith = h("p", { class: "ca-arith" });
  const swatch = (cls, text, label, w) => h("li", {}, [
    h("span", { class: `ca-cell ${cls}`, "aria-hidden": "true", "data-w": w, text }), ` ${label}`]);
  const legend = h("ul", { class: "ca-legend", "aria-label": "legend" }, [
    swatch("ca-x", "4", "input value"),
    swatch("ca-pad", "0", "zero padding: hatched, dashed border"),
    swatch("ca-tap", "2", "under the kernel: thick border; \u00d7weight, or +amount added when transposed", "\u00d73"),
    swatch("ca-current", "9", "current output cell, or the input cell that stamps: double border, bold"),
    swatch("ca-o ca-crop", "5", "cropped by padding (transposed): hatched, gray"),
    swatch("ca-o ca-extra", "0", "added by output_padding: dotted border"),
  ]);
  const root = h("div", { class: "ca" }, [
    h("div", { class: "ca-controls" }, [
      h("label", { class: "ca-field ca-preset-field" }, [h("span", { text: "example (Dumoulin & Visin)" }), preset]),
      modeBox,
      h("fieldset", { class: "ca-sizes" }, [h("legend", { text: "sizes" }), labels.input_h, labels.input_w,
                                            labels.kernel_h, labels.kernel_w]),
      h("fieldset", { class: "ca-args" }, [h("legend", { text: "arguments" }), labels.padding, labels.stride,
                                           labels.dilation, labels.output_padding]),
    ]),
    formula, problemBox,
    h("div", { class: "ca-stepper", role: "group", "aria-label": "steps" }, [first, prev, play, next, end, step]),
    stage, keysHelp, arith, status, legend,
  ]);
  return { root, preset, numbers, modes, first, prev, play, next, end, buttons: [first, prev, play, next, end], step,
           status, inGrid, inCaption, kGrid, kCaption, prodGrid, prodCaption, outGrid, outCaption, stage,
           problem: problemBox, problemText, formula, arith };
}

export default { render };
