// The view of conv_course.widgets.NetworkExplorer: an anywidget ES module with no imports, run as
// is by JupyterLab and by the static book. It decodes the exported weights and computes the
// network's forward pass itself on every stroke, so drawing needs no Python kernel.

export const SIDE = 28;          // the drawing pad, as the network takes it: (1, 1, 28, 28)
const BRUSH_CORE = 0.7;          // brush: full ink within this distance (pixels) of the pen ...
const BRUSH_EDGE = 1.9;          // ... fading linearly to none at this one: MNIST-like strokes,
                                 // 1 on the line, 0.75 one pixel off it, 0 two pixels off
const VECTOR_COLUMNS = 60;       // a flat vector is drawn as rows of this many cells

/** Little-endian float32 base64 (as the Python side exports tensors) -> Float32Array. */
export function decode(b64) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/** An 8-bit base64 image -> Float64Array of SIDE*SIDE values k / 255; and back. */
export function pixelsOf(b64) {
  return Float64Array.from(atob(b64), (ch) => ch.charCodeAt(0) / 255);
}
export function pixelsTo64(px) {
  let s = "";
  for (const v of px) s += String.fromCharCode(Math.round(v * 255));
  return btoa(s);
}

/** The layer specs with their tensors decoded (done once per network). */
export function prepare(layers) {
  return layers.map((spec) => {
    const L = { ...spec };
    for (const key of ["weight", "bias", "mean", "var"]) if (typeof spec[key] === "string") L[key] = decode(spec[key]);
    return L;
  });
}

/** Output length of a pooling window: floor or ceil((n + 2p - d(k-1) - 1) / s) + 1, as torch. */
export function poolSize(n, k, s, p, d, ceil) {
  const span = n + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  if (ceil && (out - 1) * s >= n + p) out -= 1;   // the last window must start inside the input
  return out;
}

/** Cross-correlation as nn.Conv2d: x {shape: [C, H, W], data}, any stride, padding, dilation, groups. */
export function conv2d(x, L) {
  const [C, H, W] = x.shape, [kh, kw] = L.kernel, [sh, sw] = L.stride, [dh, dw] = L.dilation;
  const [pt, pl, pb, pr] = L.padding, g = L.groups, cin = C / g, cout = L.out_channels, perGroup = cout / g;
  const ho = Math.floor((H + pt + pb - dh * (kh - 1) - 1) / sh) + 1, wo = Math.floor((W + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(cout * ho * wo), xd = x.data, wt = L.weight;
  for (let o = 0; o < cout; o++) {
    const base = o * ho * wo, first = Math.floor(o / perGroup) * cin;
    if (L.bias) out.fill(L.bias[o], base, base + ho * wo);
    for (let i = 0; i < cin; i++) {
      const xoff = (first + i) * H * W;
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const wv = wt[((o * cin + i) * kh + a) * kw + b];
          for (let r = 0; r < ho; r++) {
            const y = r * sh + a * dh - pt;
            if (y < 0 || y >= H) continue;
            const row = xoff + y * W, orow = base + r * wo;
            for (let c = 0; c < wo; c++) {
              const xx = c * sw + b * dw - pl;
              if (xx >= 0 && xx < W) out[orow + c] += wv * xd[row + xx];
            }
          }
        }
      }
    }
  }
  return { shape: [cout, ho, wo], data: out };
}

/** nn.MaxPool2d (padding counts as -infinity) and nn.AvgPool2d (divisor as torch's CPU kernel). */
export function pool2d(x, L) {
  const [C, H, W] = x.shape, [kh, kw] = L.kernel, [sh, sw] = L.stride, [ph, pw] = L.padding;
  const [dh, dw] = L.dilation || [1, 1], max = L.kind === "MaxPool2d";
  const ho = poolSize(H, kh, sh, ph, dh, L.ceil_mode), wo = poolSize(W, kw, sw, pw, dw, L.ceil_mode);
  const out = new Float64Array(C * ho * wo), xd = x.data;
  for (let ch = 0; ch < C; ch++) {
    for (let r = 0; r < ho; r++) {
      for (let c = 0; c < wo; c++) {
        let acc = max ? -Infinity : 0;
        const y0 = r * sh - ph, x0 = c * sw - pw;
        for (let a = 0; a < kh; a++) {
          const y = y0 + a * dh;
          if (y < 0 || y >= H) continue;
          for (let b = 0; b < kw; b++) {
            const xx = x0 + b * dw;
            if (xx < 0 || xx >= W) continue;
            const v = xd[(ch * H + y) * W + xx];
            acc = max ? Math.max(acc, v) : acc + v;
          }
        }
        if (!max) {
          const y1 = Math.min(y0 + kh, H + ph), x1 = Math.min(x0 + kw, W + pw);
          const inside = (Math.min(y1, H) - Math.max(y0, 0)) * (Math.min(x1, W) - Math.max(x0, 0));
          acc /= L.divisor_override || (L.count_include_pad ? (y1 - y0) * (x1 - x0) : inside);
        }
        out[(ch * ho + r) * wo + c] = acc;
      }
    }
  }
  return { shape: [C, ho, wo], data: out };
}

/** nn.BatchNorm2d in eval mode: (x - running_mean) / sqrt(running_var + eps) * weight + bias. */
export function batchNorm2d(x, L) {
  const [C, H, W] = x.shape, n = H * W, out = new Float64Array(x.data.length);
  for (let ch = 0; ch < C; ch++) {
    const scale = L.weight[ch] / Math.sqrt(L.var[ch] + L.eps), mean = L.mean[ch], shift = L.bias[ch];
    for (let i = ch * n; i < (ch + 1) * n; i++) out[i] = (x.data[i] - mean) * scale + shift;
  }
  return { shape: x.shape, data: out };
}

/** nn.Linear on a flat vector: out[o] = bias[o] + sum_i weight[o, i] x[i]. */
export function linear(x, L) {
  const n = L.in_features, m = L.out_features, out = new Float64Array(m);
  for (let o = 0; o < m; o++) {
    let acc = L.bias ? L.bias[o] : 0;
    for (let i = 0; i < n; i++) acc += L.weight[o * n + i] * x.data[i];
    out[o] = acc;
  }
  return { shape: [m], data: out };
}

const LAYERS = {
  Conv2d: conv2d, MaxPool2d: pool2d, AvgPool2d: pool2d, BatchNorm2d: batchNorm2d, Linear: linear,
  ReLU: (x) => ({ shape: x.shape, data: x.data.map((v) => (v > 0 ? v : 0)) }),
  Flatten: (x) => ({ shape: [x.data.length], data: x.data }),
};

/** Every layer's output for one (SIDE x SIDE) image in [0, 1]: the network's forward pass. */
export function forward(layers, pixels) {
  let x = { shape: [1, SIDE, SIDE], data: Float64Array.from(pixels) };
  return layers.map((L) => (x = LAYERS[L.kind](x, L)));
}

/** softmax(z) = exp(z - max z) / sum exp(z - max z). */
export function softmax(z) {
  const top = Math.max(...z), e = Array.from(z, (v) => Math.exp(v - top)), sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** Ink the brush leaves at distance d (pixels) from the pen: 1 near it, fading to 0. */
export const ink = (d) => Math.min(1, Math.max(0, (BRUSH_EDGE - d) / (BRUSH_EDGE - BRUSH_CORE)));

/** Paint a soft stroke from (x0, y0) to (x1, y1), in pixel units, into px (values only grow). */
export function stroke(px, x0, y0, x1, y1) {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) * 4));
  for (let t = 0; t <= steps; t++) {
    const cx = x0 + ((x1 - x0) * t) / steps, cy = y0 + ((y1 - y0) * t) / steps;
    for (let i = Math.max(0, Math.floor(cy - BRUSH_EDGE)); i < Math.min(SIDE, Math.ceil(cy + BRUSH_EDGE)); i++) {
      for (let j = Math.max(0, Math.floor(cx - BRUSH_EDGE)); j < Math.min(SIDE, Math.ceil(cx + BRUSH_EDGE)); j++) {
        const v = ink(Math.hypot(j + 0.5 - cx, i + 0.5 - cy));
        if (v > px[i * SIDE + j]) px[i * SIDE + j] = v;
      }
    }
  }
}

/** A layer's description: its kind and the arguments that differ from the defaults. */
export function describe(L) {
  const pair = (p) => (p[0] === p[1] ? `${p[0]}` : `(${p[0]}, ${p[1]})`);
  const args = (items) => items.filter(Boolean).map((s) => `, ${s}`).join("");
  if (L.kind === "Conv2d") {
    const pad = L.padding.every((p) => p === L.padding[0]) ? `${L.padding[0]}` : `(${L.padding.join(", ")})`;
    return `Conv2d ${L.in_channels}\u2192${L.out_channels}, ${L.kernel.join("\u00d7")}` + args([
      L.stride.some((s) => s !== 1) && `stride ${pair(L.stride)}`, L.padding.some((p) => p) && `padding ${pad}`,
      L.dilation.some((d) => d !== 1) && `dilation ${pair(L.dilation)}`, L.groups > 1 && `groups ${L.groups}`]);
  }
  if (L.kind === "MaxPool2d" || L.kind === "AvgPool2d") {
    return `${L.kind} ${L.kernel.join("\u00d7")}` + args([`stride ${pair(L.stride)}`,
      L.padding.some((p) => p) && `padding ${pair(L.padding)}`, L.ceil_mode && "ceil_mode"]);
  }
  if (L.kind === "Linear") return `Linear ${L.in_features}\u2192${L.out_features}`;
  if (L.kind === "BatchNorm2d") return "BatchNorm2d, running statistics";
  return L.kind;
}

const fmt = (v, digits = 2) => (Math.abs(v) < 0.005 ? "0" : v.toFixed(digits).replace("-", "\u2212"));
const percent = (p) => `${(100 * p).toFixed(1)}%`;
const shapeText = (shape) => shape.join("\u00d7");

// colour ramps, 256 entries each: 0 = black, larger |value| = brighter; orange above 0, blue below
function ramp(stops) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
    for (let ch = 0; ch < 3; ch++) lut[i * 3 + ch] = stops[k][ch] + f * (stops[k + 1][ch] - stops[k][ch]);
  }
  return lut;
}
const POSITIVE = ramp([[0, 0, 0], [179, 89, 0], [255, 233, 168]]);
const NEGATIVE = ramp([[0, 0, 0], [33, 102, 172], [198, 219, 239]]);
const GRAY = ramp([[0, 0, 0], [255, 255, 255]]);

/** Paint values into an ImageData: |v| / top sets the brightness, the sign the ramp. */
function paint(image, data, offset, count, top, lut = null) {
  const px = image.data;
  for (let i = 0; i < count; i++) {
    const v = data[offset + i], k = Math.min(255, Math.round((Math.abs(v) / top) * 255)) * 3;
    const table = lut || (v < 0 ? NEGATIVE : POSITIVE);
    px[4 * i] = table[k]; px[4 * i + 1] = table[k + 1]; px[4 * i + 2] = table[k + 2]; px[4 * i + 3] = 255;
  }
}

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, v] of Object.entries(attrs)) {
    if (key === "text") node.textContent = v;
    else if (v !== false && v !== undefined && v !== null) node.setAttribute(key, v === true ? "" : v);
  }
  for (const child of children) node.append(child);
  return node;
}

function canvas(w, hgt, cls) {
  const c = h("canvas", { class: cls, width: w, height: hgt, "aria-hidden": "true" });
  return { node: c, ctx: c.getContext("2d"), image: new ImageData(w, hgt) };
}

function render({ model, el }) {
  const uid = Math.random().toString(36).slice(2);
  const ui = buildDom(uid);
  el.append(ui.root);
  const ac = new AbortController();
  const on = (node, type, fn, opts = {}) => node.addEventListener(type, fn, { signal: ac.signal, ...opts });
  const save = () => {
    try { model.save_changes(); } catch (err) { /* static page: no kernel to sync with */ }
  };
  let net = [], views = [], px = pixelsOf(model.get("image")), acts = [], probs = [], frame = null;
  const pen = { r: SIDE >> 1, c: SIDE >> 1, down: false, last: null };

  // -- the network: one panel per layer --------------------------------------------------------
  function rebuildNetwork() {
    net = prepare(model.get("layers"));
    views = net.map((L) => layerView(L));
    ui.layers.replaceChildren(...views.map((v) => v.node));
    const classes = model.get("classes");
    ui.bars = classes.map((name) => {
      const bar = h("span", { class: "nexp-bar" }), value = h("span", { class: "nexp-value" });
      const mark = h("span", { class: "nexp-mark" });
      const row = h("li", { class: "nexp-row" }, [h("span", { class: "nexp-class", text: name }),
                                                 h("span", { class: "nexp-track" }, [bar]), value, mark]);
      return { row, bar, value, mark };
    });
    ui.probs.replaceChildren(...ui.bars.map((b) => b.row));
  }
  function layerView(L) {
    const maps = L.shape.length === 3, [C, H, W] = maps ? L.shape : [1, 1, 1];
    const range = h("span", { class: "nexp-range" });
    const cap = h("figcaption", {}, [h("strong", { text: L.name }), ` ${describe(L)} \u2192 ${shapeText(L.shape)} `, range]);
    let tiles;
    if (maps) {
      tiles = Array.from({ length: C }, (_, ch) => {
        const cv = canvas(W, H, "nexp-map");
        cv.node.style.width = `calc(var(--nexp-map) * ${Math.min(1, W / Math.max(H, W))})`;
        return { ...cv, box: h("span", { class: "nexp-tile" }, [cv.node, h("span", { class: "nexp-ch", text: `${ch}` })]) };
      });
    } else {
      const n = L.shape[0], cols = Math.min(n, VECTOR_COLUMNS), cv = canvas(cols, Math.ceil(n / cols), "nexp-vector");
      cv.node.style.width = `${cols * 4}px`;
      cv.node.style.height = `${Math.ceil(n / cols) * 8}px`;
      tiles = [{ ...cv, box: cv.node }];
    }
    const node = h("figure", { class: `nexp-layer ${maps ? "nexp-maps-layer" : "nexp-vector-layer"}`, role: "group" },
                   [cap, h("div", { class: "nexp-tiles" }, tiles.map((t) => t.box))]);
    return { node, tiles, range, maps, per: H * W };
  }

  // -- compute and draw --------------------------------------------------------------------------
  function update() {
    frame = null;
    acts = forward(net, px);
    probs = softmax(acts[acts.length - 1].data);
    paint(ui.pad.image, px, 0, SIDE * SIDE, 1, GRAY);
    ui.pad.ctx.putImageData(ui.pad.image, 0, 0);
    acts.forEach((a, k) => drawLayer(views[k], a));
    drawProbabilities();
  }
  function drawLayer(view, a) {
    let lo = Infinity, hi = -Infinity, best = 0, bestMax = -Infinity;
    for (let i = 0; i < a.data.length; i++) {
      const v = a.data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      if (v > bestMax) { bestMax = v; best = Math.floor(i / view.per); }
    }
    const top = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    view.range.textContent = `values ${fmt(lo)} to ${fmt(hi)}` +
      (view.maps && view.tiles.length > 1 ? `, strongest map ${best}` : "");
    view.tiles.forEach((t, ch) => {
      paint(t.image, a.data, view.maps ? ch * view.per : 0, view.maps ? view.per : a.data.length, top);
      t.ctx.putImageData(t.image, 0, 0);
    });
  }
  function ranked() {
    return probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
  }
  function drawProbabilities() {
    const [[, best]] = ranked();
    ui.bars.forEach((b, k) => {
      b.bar.style.width = `${(100 * probs[k]).toFixed(1)}%`;
      b.value.textContent = percent(probs[k]);
      b.row.classList.toggle("nexp-top", k === best);
      b.mark.textContent = k === best ? "\u25c0 top" : "";
    });
  }
  function announce() {
    const classes = model.get("classes"), [[p, k], [p2, k2]] = ranked();
    const text = `Top class ${classes[k]}, probability ${percent(p)}; next ${classes[k2]}, ${percent(p2)}.`;
    if (ui.status.textContent !== text) ui.status.textContent = text;
  }
  function schedule() {
    if (frame === null) frame = requestAnimationFrame(update);
  }
  function now() {
    if (frame !== null) cancelAnimationFrame(frame);
    update();
  }

  // -- drawing: pointer, keyboard, clear, test digits --------------------------------------------
  function commit() {
    now();
    announce();
    model.set("image", pixelsTo64(px));
    if (model.get("digit") !== -1) model.set("digit", -1);
    ui.digit.value = "-1";
    save();
  }
  function penText() {
    ui.pen.textContent = `Pen at row ${pen.r}, column ${pen.c}, ${pen.down ? "down (painting)" : "up"}.`;
    ui.penToggle.setAttribute("aria-pressed", String(pen.down));
    ui.cursor.style.transform = `translate(calc(${pen.c} * var(--nexp-cell)), calc(${pen.r} * var(--nexp-cell)))`;
    ui.cursor.classList.toggle("nexp-down", pen.down);
  }
  function pointAt(ev) {
    const rect = ui.pad.node.getBoundingClientRect();
    return [((ev.clientX - rect.left) / rect.width) * SIDE, ((ev.clientY - rect.top) / rect.height) * SIDE];
  }
  on(ui.pad.node, "pointerdown", (ev) => {
    ev.preventDefault();
    ui.pad.node.setPointerCapture?.(ev.pointerId);
    pen.last = pointAt(ev);
    stroke(px, ...pen.last, ...pen.last);
    schedule();
  });
  on(ui.pad.node, "pointermove", (ev) => {
    if (!pen.last) return;
    const p = pointAt(ev);
    stroke(px, ...pen.last, ...p);
    pen.last = p;
    schedule();
  });
  const lift = () => { if (pen.last) { pen.last = null; commit(); } };
  on(ui.pad.node, "pointerup", lift);
  on(ui.pad.node, "pointercancel", lift);
  function penDown(down) {
    pen.down = down;
    if (down) stroke(px, pen.c + 0.5, pen.r + 0.5, pen.c + 0.5, pen.r + 0.5);
    penText();
    if (down) commit();
  }
  on(ui.padBox, "keydown", (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
    if (ev.key in moves) {
      const clamp = (v) => Math.min(SIDE - 1, Math.max(0, v)), [dr, dc] = moves[ev.key];
      const r = clamp(pen.r + dr), c = clamp(pen.c + dc);
      if (pen.down) stroke(px, pen.c + 0.5, pen.r + 0.5, c + 0.5, r + 0.5);
      pen.r = r; pen.c = c;
      penText();
      if (pen.down) commit();
    } else if (ev.key === " " || ev.key === "Enter") penDown(!pen.down);
    else if (ev.key === "Escape") penDown(false);
    else return;
    ev.preventDefault();
  });
  on(ui.penToggle, "click", () => { penDown(!pen.down); ui.padBox.focus(); });
  on(ui.clear, "click", () => { px.fill(0); commit(); });
  on(ui.digit, "change", () => {
    const d = Number(ui.digit.value);
    if (d < 0) return;
    model.set("digit", d);
    model.set("image", model.get("digits")[d].pixels);
    save();
  });

  // -- Python -> view ----------------------------------------------------------------------------
  function digitsChanged() {
    ui.digit.replaceChildren(h("option", { value: "-1", text: "your drawing" }),
      ...model.get("digits").map((d, k) => h("option", {
        value: `${k}`, text: `test digit ${k + 1} (a ${model.get("classes")[d.label] ?? d.label})` })));
    ui.digit.value = `${model.get("digit")}`;
  }
  function imageChanged() {
    const b64 = model.get("image");
    if (b64 === pixelsTo64(px)) return;
    px = pixelsOf(b64);
    now();
    announce();
  }
  const onLayers = () => { rebuildNetwork(); now(); announce(); };
  const onDigits = () => digitsChanged();
  const onDigit = () => { ui.digit.value = `${model.get("digit")}`; };
  model.on("change:layers", onLayers);
  model.on("change:classes", onLayers);
  model.on("change:digits", onDigits);
  model.on("change:digit", onDigit);
  model.on("change:image", imageChanged);
  rebuildNetwork();
  digitsChanged();
  penText();
  now();
  announce();

  // a small handle for tests and for measuring redraw time
  ui.root.ne = {
    get logits() { return Array.from(acts[acts.length - 1].data); },
    get probabilities() { return probs.slice(); },
    get activations() { return acts.map((a) => ({ shape: a.shape, data: Array.from(a.data) })); },
    get pixels() { return Array.from(px); },
    set pixels(values) { px = Float64Array.from(values); now(); },
    update: now,
  };

  return () => {
    if (frame !== null) cancelAnimationFrame(frame);
    ac.abort();
    model.off("change:layers", onLayers);
    model.off("change:classes", onLayers);
    model.off("change:digits", onDigits);
    model.off("change:digit", onDigit);
    model.off("change:image", imageChanged);
  };
}

function buildDom(uid) {
  const pad = canvas(SIDE, SIDE, "nexp-pad");
  const cursor = h("span", { class: "nexp-cursor", "aria-hidden": "true" });
  const keys = h("p", { class: "nexp-keys", id: `nexp-keys-${uid}`,
    text: "Mouse or touch: draw on the pad. Keys: arrows move the pen, Space or Enter puts it down " +
          "(paints) or lifts it, Escape lifts it." });
  const padBox = h("div", { class: "nexp-padbox", tabindex: "0", role: "application", "aria-describedby": keys.id,
    "aria-label": `drawing pad, ${SIDE} by ${SIDE} pixels: arrow keys move the pen, Space paints` }, [pad.node, cursor]);
  const digit = h("select", { class: "nexp-digit", id: `nexp-digit-${uid}` });
  const penToggle = h("button", { type: "button", class: "nexp-pen-toggle", "aria-pressed": "false", text: "Pen down" });
  const clear = h("button", { type: "button", class: "nexp-clear", text: "Clear" });
  const pen = h("p", { class: "nexp-pen" });
  const status = h("p", { class: "nexp-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const probs = h("ol", { class: "nexp-probs", start: "0", "aria-label": "class probabilities" });
  const layers = h("div", { class: "nexp-layers" });
  const legend = h("p", { class: "nexp-legend", text: "Each small map is one channel, scaled to its layer's largest |value|: " +
    "black is 0, orange above 0, blue below 0, brighter is larger. The caption gives each layer's range in numbers." });
  const root = h("div", { class: "nexp" }, [
    h("div", { class: "nexp-side" }, [
      h("figure", { class: "nexp-input" }, [
        h("figcaption", { text: `Input: your drawing, 1\u00d7${SIDE}\u00d7${SIDE}, white ink on black` }), padBox]),
      h("div", { class: "nexp-controls" }, [
        h("label", { class: "nexp-field", for: digit.id }, [h("span", { text: "start from" }), digit]), penToggle, clear]),
      pen, keys,
      h("figure", { class: "nexp-output" }, [h("figcaption", { text: "Class probabilities (softmax of the last layer)" }), probs]),
      status,
    ]),
    h("div", { class: "nexp-net" }, [legend, layers]),
  ]);
  return { root, pad, padBox, cursor, digit, penToggle, clear, pen, status, probs, layers };
}

export default { render };
