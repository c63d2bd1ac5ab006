// The view of conv_course.widgets.KernelExplorer: an anywidget ES module with no imports, run
// as is by JupyterLab and by the static book (through the offline widget manager).
// It recomputes the feature map in the browser, so dragging needs no Python kernel; it links
// each output pixel to the input pixels its window reads (both ways) and writes the settings
// as one torch.nn.functional.conv2d call.

const MAX_PX = 384; // largest side of a panel, in CSS pixels
const MAX_CELL = 48; // largest size of one data pixel, in CSS pixels
const ACCENT = "#f08c00";

/** Output length along one axis: floor((n + 2p - d(k - 1) - 1) / s) + 1. */
export function outputSize(n, k, stride, padding, dilation) {
  return Math.floor((n + 2 * padding - dilation * (k - 1) - 1) / stride) + 1;
}

/** The synced image {shape: [H, W], dtype, data (base64)} as {h, w, data: Float64Array}. */
export function decodeImage(obj) {
  const bin = atob(obj.data);
  const [h, w] = obj.shape;
  const data = new Float64Array(h * w);
  if (obj.dtype === "uint8/255") {
    for (let i = 0; i < h * w; i++) data[i] = bin.charCodeAt(i) / 255;
  } else {
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < h * w; i++) data[i] = view.getFloat64(8 * i, true);
  }
  return { h, w, data };
}

/** Kernel rows -> {kh, kw, data}; flipped both ways in "convolution" mode. */
export function effectiveWeights(kernel, mode) {
  const kh = kernel.length, kw = kernel[0].length;
  const data = new Float64Array(kh * kw);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      data[i * kw + j] = mode === "convolution" ? kernel[kh - 1 - i][kw - 1 - j] : kernel[i][j];
    }
  }
  return { kh, kw, data };
}

/** Input value at padded coordinates (y, x): zero in the padding. */
function padded(img, p, y, x) {
  const r = y - p, c = x - p;
  return r < 0 || c < 0 || r >= img.h || c >= img.w ? 0 : img.data[r * img.w + c];
}

/** The window at output (row, col): patch values, products with the weights and their sum. */
export function windowAt(img, wts, params, row, col) {
  const { padding: p, stride: s, dilation: d } = params;
  const n = wts.kh * wts.kw;
  const patch = new Float64Array(n), products = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < wts.kh; i++) {
    for (let j = 0; j < wts.kw; j++) {
      const v = padded(img, p, row * s + i * d, col * s + j * d);
      patch[i * wts.kw + j] = v;
      products[i * wts.kw + j] = v * wts.data[i * wts.kw + j];
      sum += products[i * wts.kw + j];
    }
  }
  return { patch, products, sum };
}

/** Padded input coordinates [y, x] of the kh*kw taps of the window at output (row, col). */
export function windowTaps(params, kh, kw, row, col) {
  const { stride: s, dilation: d } = params, taps = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) taps.push([row * s + i * d, col * s + j * d]);
  return taps;
}

/** Output indices along one axis whose window reads padded index y: r*s + i*d = y, 0 <= i < k. */
function readersAlong(y, k, stride, dilation, nOut) {
  const found = [];
  for (let i = k - 1; i >= 0; i--) {
    const t = y - i * dilation;
    if (t >= 0 && t % stride === 0 && t / stride < nOut) found.push(t / stride);
  }
  return found;
}

/** Output pixels [r, c] whose window reads the padded input pixel (y, x): rows x columns. */
export function readersOf(params, kh, kw, outH, outW, y, x) {
  const rows = readersAlong(y, kh, params.stride, params.dilation, outH);
  const cols = readersAlong(x, kw, params.stride, params.dilation, outW);
  return rows.flatMap((r) => cols.map((c) => [r, c]));
}

/** The settings as Python: torch.nn.functional.conv2d on the image X, flipping K for convolution. */
export function torchCode(kernel, mode, params, imgShape, outShape) {
  const lead = "K = torch.tensor([";
  const rows = kernel.map((row) => `[${row.map((v) => String(v)).join(", ")}]`);
  return [
    "import torch",
    "import torch.nn.functional as F",
    "",
    `# X: the image, a (${imgShape.join(", ")}) float64 tensor; in a notebook X = torch.from_numpy(explorer.image)`,
    `${lead}${rows.join(`,\n${" ".repeat(lead.length)}`)}], dtype=torch.float64)`,
    ...(mode === "convolution" ? ["K = K.flip(0, 1)  # convolution: F.conv2d cross-correlates, so flip the kernel"] : []),
    `Y = F.conv2d(X[None, None], K[None, None], stride=${params.stride}, padding=${params.padding}, ` +
      `dilation=${params.dilation})[0, 0]  # (${outShape.join(", ")})`,
  ].join("\n");
}

/** Indices as short text: "4", "3–5" when consecutive, else "1, 3, 5". */
function spanText(list) {
  if (list.length === 1) return String(list[0]);
  const consecutive = list.every((v, i) => i === 0 || v === list[i - 1] + 1);
  return consecutive ? `${list[0]}–${list[list.length - 1]}` : list.join(", ");
}

/** Cross-correlation of img with wts: {h, w, data} of size outputSize(...) per axis. */
export function conv2d(img, wts, params) {
  const { padding: p, stride: s, dilation: d } = params;
  const h = outputSize(img.h, wts.kh, s, p, d), w = outputSize(img.w, wts.kw, s, p, d);
  const data = new Float64Array(Math.max(h, 0) * Math.max(w, 0));
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      let acc = 0;
      for (let i = 0; i < wts.kh; i++) {
        const y = r * s + i * d - p;
        if (y < 0 || y >= img.h) continue;
        for (let j = 0; j < wts.kw; j++) {
          const x = c * s + j * d - p;
          if (x >= 0 && x < img.w) acc += img.data[y * img.w + x] * wts.data[i * wts.kw + j];
        }
      }
      data[r * w + c] = acc;
    }
  }
  return { h, w, data };
}

/** Short label for a number: integers as is, others with up to 3 decimals. */
export function fmt(v) {
  if (Object.is(v, -0) || Math.abs(v) < 5e-13) return "0";
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) < 0.001) return v.toExponential(1);
  return v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
}

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function slider(label, name, min, max) {
  const input = h("input", { type: "range", min, max, step: 1, name, "aria-label": label });
  const value = h("output", { class: "kx-value" });
  return { input, value, node: h("label", { class: "kx-field" }, [h("span", { text: label }), input, value]) };
}

/** Gray levels (0..255) for values: [0, 1] as is, else min..max; signed data centre 0 on mid-gray. */
function grayMapper(data, signedCentre) {
  let lo = Infinity, hi = -Infinity;
  for (const v of data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (signedCentre && lo < 0) {
    const m = Math.max(-lo, hi) || 1;
    return (v) => 127.5 + 127.5 * (v / m);
  }
  if (!signedCentre && lo >= 0 && hi <= 1) return (v) => 255 * v;
  const span = hi - lo || 1;
  return (v) => (255 * (v - lo)) / span;
}

/** A canvas drawn at `cell` CSS pixels per data pixel, sharp on high-DPI screens. */
function sizeCanvas(canvas, rows, cols) {
  const cell = Math.min(MAX_CELL, MAX_PX / Math.max(rows, cols));
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cols * cell * dpr);
  canvas.height = Math.round(rows * cell * dpr);
  canvas.style.maxWidth = `${cols * cell}px`;
  canvas.style.aspectRatio = `${cols} / ${rows}`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.imageSmoothingEnabled = false;
  return { ctx, cell };
}

function bitmap(rows, cols, gray) {
  const off = document.createElement("canvas");
  off.width = cols;
  off.height = rows;
  const ctx = off.getContext("2d");
  const pixels = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const [r, g, b] = gray(i);
    pixels.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(pixels, 0, 0);
  return off;
}

function drawValues(ctx, cell, rows, cols, value, level) {
  if (cell < 30) return;
  ctx.font = `${Math.min(14, Math.floor(cell / 3))}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      ctx.fillStyle = level(r, c) > 140 ? "#000" : "#fff";
      ctx.fillText(fmt(value(r, c)), (c + 0.5) * cell, (r + 0.5) * cell);
    }
  }
}

/** A diagonal hatch, black and white and half transparent, that reads on any gray. */
function hatchPattern(ctx) {
  const tile = document.createElement("canvas");
  tile.width = tile.height = 8;
  const t = tile.getContext("2d");
  t.lineWidth = 2;
  for (const [colour, off] of [["rgba(0, 0, 0, 0.7)", 0], ["rgba(255, 255, 255, 0.7)", 4]]) {
    t.strokeStyle = colour;
    t.beginPath();
    for (const shift of [-8, 0, 8]) { t.moveTo(shift + off, 8); t.lineTo(shift + off + 8, 0); }
    t.stroke();
  }
  return ctx.createPattern(tile, "repeat");
}

/** Mark cells [r, c] of a panel as linked: hatched, or on tiny cells a white dot on black. */
function markCells(ctx, cell, cells, hatch) {
  for (const [r, c] of cells) {
    if (cell >= 8) {
      ctx.fillStyle = hatch;
      ctx.fillRect(c * cell, r * cell, cell, cell);
    } else {
      ctx.fillStyle = "#000";
      ctx.fillRect(c * cell, r * cell, cell, cell);
      ctx.fillStyle = "#fff";
      ctx.fillRect((c + 0.3) * cell, (r + 0.3) * cell, 0.4 * cell, 0.4 * cell);
    }
  }
}

/** A dashed outline, white over black, around the cells, at least 8 CSS pixels wide. */
function dashedBoxAround(ctx, cell, cells) {
  if (!cells.length) return;
  const rs = cells.map(([r]) => r), cs = cells.map(([, c]) => c);
  let x = Math.min(...cs) * cell, y = Math.min(...rs) * cell;
  let w = (Math.max(...cs) + 1) * cell - x, hgt = (Math.max(...rs) + 1) * cell - y;
  if (w < 8) { x -= (8 - w) / 2; w = 8; }
  if (hgt < 8) { y -= (8 - hgt) / 2; hgt = 8; }
  ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.setLineDash([]);
  ctx.strokeRect(x - 1.5, y - 1.5, w + 3, hgt + 3);
  ctx.lineWidth = 1.5; ctx.strokeStyle = "#fff"; ctx.setLineDash([4, 3]);
  ctx.strokeRect(x - 1.5, y - 1.5, w + 3, hgt + 3);
  ctx.setLineDash([]);
}

const ARROWS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

function render({ model, el }) {
  const ui = buildDom(model);
  el.append(ui.root);
  const st = { link: null, pixelMode: false };
  const hatch = { input: hatchPattern(ui.input.getContext("2d")), output: hatchPattern(ui.output.getContext("2d")) };
  const ac = new AbortController();
  const opts = { signal: ac.signal };

  const params = () => ({ padding: model.get("padding"), stride: model.get("stride"), dilation: model.get("dilation") });
  const save = () => {
    try { model.save_changes(); } catch (err) { /* static page: no kernel to sync with */ }
  };

  function recompute() {
    st.img = decodeImage(model.get("image"));
    st.kernel = model.get("kernel");
    st.mode = model.get("mode");
    st.params = params();
    st.wts = effectiveWeights(st.kernel, st.mode);
    st.out = conv2d(st.img, st.wts, st.params);
    const p = st.params.padding, hp = st.img.h + 2 * p, wp = st.img.w + 2 * p;
    st.hp = hp; st.wp = wp;
    const inGray = grayMapper(st.img.data, false);
    st.inLevel = (y, x) => inGray(padded(st.img, p, y, x));
    st.inBitmap = bitmap(hp, wp, (i) => {
      const y = Math.floor(i / wp), x = i % wp;
      const g = st.inLevel(y, x);
      const inside = y >= p && x >= p && y < p + st.img.h && x < p + st.img.w;
      return inside ? [g, g, g] : [0.55 * g + 40, 0.55 * g + 70, 0.55 * g + 110];
    });
    const outGray = grayMapper(st.out.data, true);
    st.outLevel = (r, c) => outGray(st.out.data[r * st.out.w + c]);
    st.outBitmap = bitmap(st.out.h, st.out.w, (i) => { const g = outGray(st.out.data[i]); return [g, g, g]; });
    Object.assign(st, { inC: sizeCanvas(ui.input, hp, wp), outC: sizeCanvas(ui.output, st.out.h, st.out.w) });
    st.link = null;
    st.pixelMode = false;
    say("");
    ui.copied.textContent = "";
    ui.code.textContent = torchCode(st.kernel, st.mode, st.params, [st.img.h, st.img.w], [st.out.h, st.out.w]);
    syncControls();
    drawOutputBase();
    redraw();
  }

  function syncControls() {
    const k = st.kernel;
    ui.preset.value = model.get("preset") in model.get("presets") ? model.get("preset") : "custom";
    ui.size.value = k.length === k[0].length && (k.length === 3 || k.length === 5) ? String(k.length) : "other";
    for (const [name, s] of Object.entries(ui.sliders)) { s.input.value = st.params[name]; s.value.textContent = st.params[name]; }
    for (const radio of ui.modes) radio.checked = radio.value === st.mode;
    const shape = `${k.length}x${k[0].length}`;
    if (ui.editor.dataset.shape !== shape) {
      ui.editor.dataset.shape = shape;
      ui.editor.style.gridTemplateColumns = `repeat(${k[0].length}, auto)`;
      ui.editor.replaceChildren(...k.flatMap((row, i) => row.map((v, j) => {
        const cell = h("input", { class: "kx-weight", type: "text", inputmode: "decimal",
                                  "aria-label": `kernel weight row ${i} column ${j}` });
        cell.addEventListener("change", () => editWeight(i, j, cell), opts);
        return cell;
      })));
    }
    k.flat().forEach((v, i) => {
      const cell = ui.editor.children[i];
      if (document.activeElement !== cell || Number(cell.value) !== v) cell.value = fmt(v);
    });
    const { h: H, w: W } = st.img, { kh, kw } = st.wts, { padding: P, stride: S, dilation: D } = st.params;
    ui.inCaption.textContent = `Input ${H}×${W}` + (P ? `, zero-padded to ${st.hp}×${st.wp}` : "");
    const signed = st.out.data.some((v) => v < 0);
    ui.outCaption.textContent = `Output ${st.out.h}×${st.out.w}` + (signed ? " (mid-gray = 0, darker < 0)" : "");
    ui.formula.textContent = `H_out = ⌊(H + 2P − D(K−1) − 1) / S⌋ + 1 = ⌊(${H} + 2·${P} − ${D}·(${kh}−1) − 1) / ${S}⌋ + 1 = ${st.out.h}` +
      (W !== H || kw !== kh ? `;  W_out = ⌊(${W} + 2·${P} − ${D}·(${kw}−1) − 1) / ${S}⌋ + 1 = ${st.out.w}` : "");
    ui.usedLabel.textContent = st.mode === "convolution" ? "kernel flipped 180°" : "kernel (not flipped)";
    const grid = (node) => { node.style.gridTemplateColumns = `repeat(${kw}, auto)`; node.replaceChildren(
      ...Array.from({ length: kh * kw }, () => h("span", { class: "kx-cell" }))); };
    grid(ui.patch); grid(ui.used); grid(ui.products);
  }

  function editWeight(i, j, cell) {
    const v = Number(cell.value.trim());
    if (cell.value.trim() === "" || !Number.isFinite(v)) { cell.value = fmt(st.kernel[i][j]); return; }
    const k = st.kernel.map((row) => row.slice());
    k[i][j] = v;
    model.set("preset", "custom");
    model.set("kernel", k);
    save();
  }

  function drawOutputBase() {
    const { ctx, cell } = st.outC;
    ctx.drawImage(st.outBitmap, 0, 0, st.out.w * cell, st.out.h * cell);
    drawValues(ctx, cell, st.out.h, st.out.w, (r, c) => st.out.data[r * st.out.w + c], st.outLevel);
    st.outBase = ctx.getImageData(0, 0, ui.output.width, ui.output.height);
  }

  function position() {
    const [r, c] = model.get("position");
    return [Math.min(Math.max(r, 0), st.out.h - 1), Math.min(Math.max(c, 0), st.out.w - 1)];
  }

  function redraw() {
    const [r, c] = position();
    const { padding: p, stride: s, dilation: d } = st.params, { kh, kw } = st.wts;
    // input: image, padding, then the window and its taps
    const { ctx, cell } = st.inC;
    ctx.drawImage(st.inBitmap, 0, 0, st.wp * cell, st.hp * cell);
    drawValues(ctx, cell, st.hp, st.wp, (y, x) => padded(st.img, p, y, x), st.inLevel);
    if (p) {
      ctx.setLineDash([4, 3]); ctx.strokeStyle = "#8ab4f8"; ctx.lineWidth = 1;
      ctx.strokeRect(p * cell + 0.5, p * cell + 0.5, st.img.w * cell - 1, st.img.h * cell - 1);
      ctx.setLineDash([]);
    }
    const y0 = r * s, x0 = c * s;
    ctx.fillStyle = "rgba(240, 140, 0, 0.35)";
    for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) ctx.fillRect((x0 + j * d) * cell, (y0 + i * d) * cell, cell, cell);
    const bw = ((kw - 1) * d + 1) * cell, bh = ((kh - 1) * d + 1) * cell;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.7)"; ctx.lineWidth = 4;
    ctx.strokeRect(x0 * cell - 2, y0 * cell - 2, bw + 4, bh + 4);
    ctx.strokeStyle = ACCENT; ctx.lineWidth = 2;
    ctx.strokeRect(x0 * cell - 1, y0 * cell - 1, bw + 2, bh + 2);
    // output: the cached map plus the highlighted pixel
    const o = st.outC;
    o.ctx.putImageData(st.outBase, 0, 0);
    const m = Math.max(o.cell, 6), cx = (c + 0.5) * o.cell, cy = (r + 0.5) * o.cell;
    o.ctx.strokeStyle = ACCENT; o.ctx.lineWidth = 2;
    o.ctx.strokeRect(cx - m / 2, cy - m / 2, m, m);
    drawLink();
    // the arithmetic of this position
    const win = windowAt(st.img, st.wts, st.params, r, c);
    st.win = win;
    fill(ui.patch, win.patch); fill(ui.used, st.wts.data); fill(ui.products, win.products);
    ui.sum.textContent = fmt(win.sum);
    ui.sum.dataset.value = String(win.sum);
    ui.where.textContent = `output[${r}, ${c}]`;
    ui.input.setAttribute("aria-valuetext", `window at output row ${r}, column ${c}; sum ${fmt(win.sum)}`);
  }

  // -- the link: an output pixel and the input pixels of its window, or an input pixel and its readers
  /** {taps: padded input cells, readers: output cells} of a link from an output or an input pixel. */
  function linkCells(link) {
    const { kh, kw } = st.wts;
    if (link.from === "output") return { taps: windowTaps(st.params, kh, kw, link.r, link.c), readers: [[link.r, link.c]] };
    return { taps: [[link.y, link.x]], readers: readersOf(st.params, kh, kw, st.out.h, st.out.w, link.y, link.x) };
  }

  function drawLink() {
    if (!st.link) return;
    const { taps, readers } = linkCells(st.link);
    markCells(st.inC.ctx, st.inC.cell, taps, hatch.input);
    dashedBoxAround(st.inC.ctx, st.inC.cell, taps);
    markCells(st.outC.ctx, st.outC.cell, readers, hatch.output);
    dashedBoxAround(st.outC.ctx, st.outC.cell, readers);
  }

  const inImage = (y, x) => { const p = st.params.padding; return y >= p && x >= p && y < p + st.img.h && x < p + st.img.w; };
  const unique = (values) => [...new Set(values)].sort((a, b) => a - b);

  /** The link in words, for the live region: coordinates of the image, padding named as such. */
  function describeLink(link) {
    const p = st.params.padding, { taps, readers } = linkCells(link);
    if (link.from === "output") {
      const onPad = taps.filter(([y, x]) => !inImage(y, x)).length;
      return `Output [${link.r}, ${link.c}] = ${fmt(st.out.data[link.r * st.out.w + link.c])} reads input rows ` +
        `${spanText(unique(taps.map(([y]) => y - p)))}, columns ${spanText(unique(taps.map(([, x]) => x - p)))}` +
        (onPad ? `; ${onPad} of its ${taps.length} taps are zero padding` : "") + " (hatched, dashed outline).";
    }
    const at = `[${link.y - p}, ${link.x - p}]`;
    const what = inImage(link.y, link.x) ? `Input ${at} = ${fmt(padded(st.img, p, link.y, link.x))}` : `Zero padding at ${at}`;
    if (!readers.length) return `${what} is read by no output window.`;
    return `${what} is read by ${readers.length} output pixel${readers.length === 1 ? "" : "s"}: rows ` +
      `${spanText(unique(readers.map(([r]) => r)))}, columns ${spanText(unique(readers.map(([, c]) => c)))} (hatched, dashed outline).`;
  }

  /** Announce `text`; `stale` keeps the last sentence, plain, in place (no layout shift under a click). */
  function say(text, stale = false) {
    if (!stale) ui.status.textContent = text;
    ui.status.classList.toggle("kx-stale", stale);
  }

  function showLink(link) {
    const same = (a, b) => a === b || (a && b && a.from === b.from && a.r === b.r && a.c === b.c && a.y === b.y && a.x === b.x);
    if (same(st.link, link)) return;
    st.link = link;
    redraw();
    say(link ? describeLink(link) : "", !link);
  }

  function fill(node, values) {
    const cells = node.children;
    for (let i = 0; i < values.length; i++) cells[i].textContent = fmt(values[i]);
  }

  function moveTo(r, c) {
    r = Math.min(Math.max(r, 0), st.out.h - 1);
    c = Math.min(Math.max(c, 0), st.out.w - 1);
    const [r0, c0] = model.get("position");
    if (r === r0 && c === c0) return;
    model.set("position", [r, c]);
    save();
  }

  // pointer (mouse, pen, touch): centre the window on the pointer
  function fromPointer(ev) {
    const box = ui.input.getBoundingClientRect();
    const y = ((ev.clientY - box.top) / box.height) * st.hp, x = ((ev.clientX - box.left) / box.width) * st.wp;
    const { stride: s, dilation: d } = st.params;
    const spanH = (st.wts.kh - 1) * d + 1, spanW = (st.wts.kw - 1) * d + 1;
    moveTo(Math.round((y - spanH / 2) / s), Math.round((x - spanW / 2) / s));
  }
  let dragging = false;
  ui.input.addEventListener("pointerdown", (ev) => {
    dragging = true;
    st.pixelMode = false;
    showLink(null);
    ui.input.setPointerCapture?.(ev.pointerId);
    ui.input.focus({ preventScroll: true });
    fromPointer(ev);
    ev.preventDefault();
  }, opts);
  const cellAt = (canvas, ev, rows, cols) => {
    const box = canvas.getBoundingClientRect();
    return [clamp(Math.floor(((ev.clientY - box.top) / box.height) * rows), 0, rows - 1),
            clamp(Math.floor(((ev.clientX - box.left) / box.width) * cols), 0, cols - 1)];
  };
  ui.input.addEventListener("pointermove", (ev) => {
    if (dragging) { fromPointer(ev); return; }
    if (ev.pointerType === "touch") return;
    const [y, x] = cellAt(ui.input, ev, st.hp, st.wp);
    showLink({ from: "input", y, x });
  }, opts);
  ui.input.addEventListener("pointerleave", () => { if (!st.pixelMode && st.link?.from === "input") showLink(null); }, opts);
  ui.output.addEventListener("pointermove", (ev) => {
    if (ev.pointerType === "touch") return;
    const [r, c] = cellAt(ui.output, ev, st.out.h, st.out.w);
    showLink({ from: "output", r, c });
  }, opts);
  ui.output.addEventListener("pointerleave", () => {
    if (document.activeElement !== ui.output && st.link?.from === "output") showLink(null);
  }, opts);
  for (const type of ["pointerup", "pointercancel"]) ui.input.addEventListener(type, () => { dragging = false; }, opts);
  ui.output.addEventListener("pointerdown", (ev) => moveTo(...cellAt(ui.output, ev, st.out.h, st.out.w)), opts);

  // keyboard: on the input the arrows move the window, or after P one input pixel (its readers
  // are outlined in the output); on the output map they move a cursor whose window is outlined
  /** The input pixel the keys move: the linked one, else the centre tap of the window. */
  function pixelCursor() {
    if (st.link?.from === "input") return [st.link.y, st.link.x];
    const [r, c] = position(), { stride: s, dilation: d } = st.params;
    return [r * s + Math.floor(st.wts.kh / 2) * d, c * s + Math.floor(st.wts.kw / 2) * d];
  }
  function togglePixelMode() {
    st.pixelMode = !st.pixelMode;
    if (!st.pixelMode) { showLink(null); say("Arrow keys move the window."); return; }
    const [y, x] = pixelCursor();
    showLink({ from: "input", y, x });
  }
  ui.input.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const step = ev.shiftKey ? 5 : 1, [r, c] = position(), move = ARROWS[ev.key];
    if (ev.key === "p" || ev.key === "P" || (ev.key === "Escape" && st.pixelMode)) togglePixelMode();
    else if (move && st.pixelMode) {
      const [y, x] = pixelCursor();
      showLink({ from: "input", y: clamp(y + step * move[0], 0, st.hp - 1), x: clamp(x + step * move[1], 0, st.wp - 1) });
    } else if (move) moveTo(r + step * move[0], c + step * move[1]);
    else if (ev.key === "Home") moveTo(0, 0);
    else if (ev.key === "End") moveTo(st.out.h - 1, st.out.w - 1);
    else return;
    ev.preventDefault();
  }, opts);
  ui.input.addEventListener("blur", () => { if (st.pixelMode) { st.pixelMode = false; showLink(null); } }, opts);
  ui.output.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const step = ev.shiftKey ? 5 : 1, move = ARROWS[ev.key];
    const [r, c] = st.link?.from === "output" ? [st.link.r, st.link.c] : position();
    const to = (r2, c2) => showLink({ from: "output", r: clamp(r2, 0, st.out.h - 1), c: clamp(c2, 0, st.out.w - 1) });
    if (move) to(r + step * move[0], c + step * move[1]);
    else if (ev.key === "Home") to(0, 0);
    else if (ev.key === "End") to(st.out.h - 1, st.out.w - 1);
    else if (ev.key === "Enter" || ev.key === " ") moveTo(r, c);
    else return;
    ev.preventDefault();
  }, opts);
  ui.output.addEventListener("focus", () => { const [r, c] = position(); showLink({ from: "output", r, c }); }, opts);
  ui.output.addEventListener("blur", () => { if (st.link?.from === "output") showLink(null); }, opts);

  // copy as code: to the clipboard when the page may write it; the code is always shown below
  ui.copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(ui.code.textContent);
      ui.copied.textContent = "Copied to the clipboard.";
    } catch {
      window.getSelection().selectAllChildren(ui.code);
      ui.copied.textContent = "No clipboard access here: the code below is selected, copy it with Ctrl+C (⌘C).";
    }
  }, opts);

  // controls; a change that would leave no output position is refused (the control snaps back)
  function fits(kernel, p) {
    return outputSize(st.img.h, kernel.length, p.stride, p.padding, p.dilation) >= 1 &&
           outputSize(st.img.w, kernel[0].length, p.stride, p.padding, p.dilation) >= 1;
  }
  function setKernel(kernel, preset) {
    if (!fits(kernel, st.params)) { syncControls(); return; }
    model.set("preset", preset);
    model.set("kernel", kernel);
    clampPosition();
    save();
  }
  ui.preset.addEventListener("change", () => {
    const name = ui.preset.value, sizes = model.get("presets")[name];
    if (!sizes) return;
    setKernel(sizes[ui.size.value in sizes ? ui.size.value : Object.keys(sizes)[0]], name);
  }, opts);
  ui.size.addEventListener("change", () => {
    const n = Number(ui.size.value), preset = model.get("presets")[model.get("preset")];
    if (!n) return;
    if (preset && preset[String(n)]) { setKernel(preset[String(n)], model.get("preset")); return; }
    const old = st.kernel, offR = Math.floor((n - old.length) / 2), offC = Math.floor((n - old[0].length) / 2);
    setKernel(Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => old[i - offR]?.[j - offC] ?? 0)),
              "custom");
  }, opts);
  for (const [name, s] of Object.entries(ui.sliders)) {
    s.input.addEventListener("input", () => {
      const v = Number(s.input.value);
      if (!fits(st.kernel, { ...st.params, [name]: v })) { s.input.value = st.params[name]; return; }
      model.set(name, v);
      clampPosition();
      save();
    }, opts);
  }
  for (const radio of ui.modes) radio.addEventListener("change", () => { model.set("mode", radio.value); save(); }, opts);

  function clampPosition() {
    const p = params(), kh = st.kernel.length, kw = st.kernel[0].length;
    const ho = outputSize(st.img.h, kh, p.stride, p.padding, p.dilation), wo = outputSize(st.img.w, kw, p.stride, p.padding, p.dilation);
    const [r, c] = model.get("position");
    if (r >= ho || c >= wo) model.set("position", [Math.min(r, ho - 1), Math.min(c, wo - 1)]);
  }

  const onParams = () => recompute();
  const onPosition = () => redraw();
  const structural = ["image", "kernel", "padding", "stride", "dilation", "mode", "preset"];
  for (const name of structural) model.on(`change:${name}`, onParams);
  model.on("change:position", onPosition);
  recompute();

  // a small handle for tests and for measuring redraw time
  ui.root.kx = {
    get output() { return { h: st.out.h, w: st.out.w, data: Array.from(st.out.data) }; },
    get window() { return { sum: st.win.sum, patch: Array.from(st.win.patch), products: Array.from(st.win.products) }; },
    get link() { return st.link && { ...st.link, ...linkCells(st.link) }; },
    get pixelMode() { return st.pixelMode; },
    moveTo, redraw,
    panelBox: () => ui.input.getBoundingClientRect(),
  };

  return () => {
    ac.abort();
    for (const name of structural) model.off(`change:${name}`, onParams);
    model.off("change:position", onPosition);
  };
}

function buildDom(model) {
  const preset = h("select", { class: "kx-preset", "aria-label": "kernel preset" }, [
    ...Object.keys(model.get("presets")).map((n) => h("option", { value: n, text: n.replace("_", " ") })),
    h("option", { value: "custom", text: "custom", disabled: "" }),
  ]);
  const size = h("select", { class: "kx-size", "aria-label": "kernel size" }, [
    h("option", { value: "3", text: "3×3" }), h("option", { value: "5", text: "5×5" }),
    h("option", { value: "other", text: "other", disabled: "" }),
  ]);
  const sliders = { padding: slider("padding", "padding", 0, 3), stride: slider("stride", "stride", 1, 4),
                    dilation: slider("dilation", "dilation", 1, 4) };
  const group = `kx-mode-${Math.random().toString(36).slice(2)}`;
  const modes = ["correlation", "convolution"].map((v) => h("input", { type: "radio", name: group, value: v }));
  const modeBox = h("fieldset", { class: "kx-mode" }, [
    h("legend", { text: "operation" }),
    h("label", {}, [modes[0], " cross-correlation (PyTorch)"]),
    h("label", {}, [modes[1], " convolution (flipped kernel)"]),
  ]);
  const editor = h("div", { class: "kx-editor", role: "group", "aria-label": "kernel weights" });
  const keys = h("p", { class: "kx-keys", id: `${group}-keys`, text: "Hover a pixel to link it: an output " +
    "pixel to the input pixels of its window, an input pixel to every output pixel that reads it (hatched, " +
    "dashed outline). Keys: on the input, arrows move the window (Shift: 5 steps) and P switches them to one " +
    "input pixel; on the output map, arrows move a cursor and Enter moves the window there." });
  const input = h("canvas", { class: "kx-input", tabindex: "0", role: "slider", "aria-describedby": keys.id,
                              "aria-label": "kernel window: drag, or use the arrow keys; P: one input pixel" });
  const output = h("canvas", { class: "kx-output", tabindex: "0", role: "application", "aria-describedby": keys.id,
                               "aria-label": "output feature map: arrow keys link a pixel to its window; Enter or click selects it" });
  const status = h("p", { class: "kx-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const copy = h("button", { type: "button", class: "kx-copy", text: "Copy as PyTorch code" });
  const copied = h("span", { class: "kx-copied", role: "status", "aria-live": "polite" });
  const code = h("code");
  const inCaption = h("figcaption"), outCaption = h("figcaption");
  const patch = h("div", { class: "kx-grid" }), used = h("div", { class: "kx-grid kx-used" });
  const products = h("div", { class: "kx-grid" });
  const sum = h("b", { class: "kx-sum", "aria-live": "polite" }), where = h("span", { class: "kx-where" });
  const usedLabel = h("span");
  const formula = h("p", { class: "kx-formula" });
  const block = (label, node) => h("div", { class: "kx-block" }, [h("span", { class: "kx-label" }, [label]), node]);
  const root = h("div", { class: "kx" }, [
    h("div", { class: "kx-controls" }, [
      h("label", { class: "kx-field" }, [h("span", { text: "kernel" }), preset]),
      h("label", { class: "kx-field" }, [h("span", { text: "size" }), size]),
      sliders.padding.node, sliders.stride.node, sliders.dilation.node, modeBox,
      h("div", { class: "kx-field kx-edit" }, [h("span", { text: "weights (editable)" }), editor]),
    ]),
    h("div", { class: "kx-panels" }, [
      h("figure", { class: "kx-panel" }, [input, inCaption]),
      h("figure", { class: "kx-panel" }, [output, outCaption]),
    ]),
    status, keys,
    h("div", { class: "kx-math" }, [
      block("input patch", patch), h("span", { class: "kx-op", text: "⊙" }), block(usedLabel, used),
      h("span", { class: "kx-op", text: "=" }), block("products", products),
      h("span", { class: "kx-op", text: "→ sum" }),
      h("div", { class: "kx-result" }, [sum, " = ", where]),
    ]),
    formula,
    h("div", { class: "kx-codebox" }, [h("div", { class: "kx-copyrow" }, [copy, copied]),
                                       h("pre", { class: "kx-code", tabindex: "0" }, [code])]),
  ]);
  return { root, preset, size, sliders, modes, editor, input, output, inCaption, outCaption, patch, used,
           products, sum, where, usedLabel, formula, status, copy, copied, code };
}

export default { render };
