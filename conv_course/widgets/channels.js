// The view of conv_course.widgets.ChannelsExplorer: an anywidget ES module with no imports, run
// as is by JupyterLab and by the static book (through the offline widget manager). It computes
// the three per-channel correlations, their sum and the output itself, so moving the window or
// editing a weight needs no Python kernel.

const PANEL_PX = 128; // largest side of a picture, in CSS pixels
const MAX_CELL = 8; // largest size of one data pixel, in CSS pixels
const ACCENT = "#f08c00";
export const CHANNELS = ["red", "green", "blue"];

/** The synced image {shape: [H, W, 3], dtype, data (base64)} as {h, w, data: Float64Array}, channels last. */
export function decodeImage(obj) {
  const bin = atob(obj.data);
  const [h, w, c] = obj.shape, n = h * w * c;
  const data = new Float64Array(n);
  if (obj.dtype === "uint8/255") {
    for (let i = 0; i < n; i++) data[i] = bin.charCodeAt(i) / 255;
  } else {
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) data[i] = view.getFloat64(8 * i, true);
  }
  return { h, w, data };
}

/** Channel c of the image (0 red, 1 green, 2 blue) as a plane {h, w, data}. */
export function channel(img, c) {
  const data = new Float64Array(img.h * img.w);
  for (let i = 0; i < data.length; i++) data[i] = img.data[3 * i + c];
  return { h: img.h, w: img.w, data };
}

/** Value of a plane at padded coordinates (y, x): zero in the padding. */
function padded(plane, p, y, x) {
  const r = y - p, c = x - p;
  return r < 0 || c < 0 || r >= plane.h || c >= plane.w ? 0 : plane.data[r * plane.w + c];
}

/** Cross-correlation of one plane with one kernel slice (rows), stride 1, zero padding p. */
export function corr2d(plane, slice, p) {
  const kh = slice.length, kw = slice[0].length;
  const h = plane.h + 2 * p - kh + 1, w = plane.w + 2 * p - kw + 1;
  const data = new Float64Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      let acc = 0;
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) acc += padded(plane, p, r + i, c + j) * slice[i][j];
      data[r * w + c] = acc;
    }
  }
  return { h, w, data };
}

/** The three per-channel maps: channel c correlated with kernel slice c. */
export function channelMaps(img, kernel, p) {
  return CHANNELS.map((_, c) => corr2d(channel(img, c), kernel[c], p));
}

/** The maps added pixel by pixel, plus a constant (the bias; 0 for the plain sum). */
export function addMaps(maps, constant = 0) {
  const data = new Float64Array(maps[0].data.length).fill(constant);
  for (const m of maps) for (let i = 0; i < data.length; i++) data[i] += m.data[i];
  return { h: maps[0].h, w: maps[0].w, data };
}

/** v with two decimals (ties away from zero, as Python's ROUND_HALF_UP), U+2212 minus, no −0.00. */
export function twoDecimals(v) {
  const text = Number(v.toFixed(9)).toFixed(2); // first to 9 decimals: the same text for 0.015 ± 1e-17
  return text === "-0.00" ? "0.00" : text.replace("-", "\u2212");
}

/** The sum at output (r, c) in words: the text shown and announced (Python's `equation`). */
export function equation(r, c, parts, bias, out) {
  const terms = CHANNELS.map((name, i) => `${name} ${twoDecimals(parts[i])}`).join(" + ");
  return `output[${r}, ${c}] = ${terms} + bias ${twoDecimals(bias)} = ${twoDecimals(out)}`;
}

/** A weight as the editor shows it: up to 3 decimals. */
export function fmt(v) {
  if (Math.abs(v) < 5e-13) return "0";
  if (Number.isInteger(v)) return String(v).replace("-", "\u2212");
  return v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "").replace("-", "\u2212");
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

/** An offscreen canvas, one pixel per data value, colour rgb(i) = [r, g, b]. */
function bitmap(rows, cols, rgb) {
  const off = document.createElement("canvas");
  off.width = cols;
  off.height = rows;
  const ctx = off.getContext("2d"), pixels = ctx.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) pixels.data.set([...rgb(i), 255], 4 * i);
  ctx.putImageData(pixels, 0, 0);
  return off;
}

/** Size a canvas to rows x cols data pixels of `cell` CSS pixels, sharp on high-DPI screens. */
function sizeCanvas(canvas, rows, cols, cell) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cols * cell * dpr);
  canvas.height = Math.round(rows * cell * dpr);
  canvas.style.width = `${cols * cell}px`;
  canvas.style.aspectRatio = `${cols} / ${rows}`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.imageSmoothingEnabled = false;
  return ctx;
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
  const st = {};

  // -- settings: recompute the maps and their pictures ----------------------------------------
  function recompute() {
    const img = st.imageObj === get("image") ? st.img : decodeImage(get("image"));
    const k = get("kernel"), p = get("padding");
    // between two changes of one update (image, then kernel) the slices may not fit yet: wait
    if (img.h + 2 * p < k[0].length || img.w + 2 * p < k[0][0].length) return;
    st.img = img;
    st.imageObj = get("image");
    st.kernel = k;
    st.p = p;
    st.bias = get("bias");
    st.kh = k[0].length; st.kw = k[0][0].length;
    st.planes = CHANNELS.map((_, c) => channel(st.img, c));
    st.maps = channelMaps(st.img, st.kernel, st.p);
    st.sum = addMaps(st.maps);
    st.out = addMaps(st.maps, st.bias);
    st.hp = st.img.h + 2 * st.p; st.wp = st.img.w + 2 * st.p;
    st.cell = Math.min(MAX_CELL, PANEL_PX / Math.max(st.hp, st.wp));
    drawBitmaps();
    syncControls();
    redraw();
  }

  function drawBitmaps() {
    const { p, img, hp, wp, cell } = st;
    const inside = (i) => { // the image pixel of padded pixel i, or -1 in the padding
      const y = Math.floor(i / wp) - p, x = (i % wp) - p;
      return y >= 0 && x >= 0 && y < img.h && x < img.w ? y * img.w + x : -1;
    };
    const PAD = [150, 170, 205]; // the padding: bluish, and outlined dashed
    st.inBitmaps = st.planes.map((plane) => bitmap(hp, wp, (i) => {
      const k = inside(i);
      if (k < 0) return PAD;
      const g = 255 * plane.data[k];
      return [g, g, g];
    }));
    st.photoBitmap = bitmap(hp, wp, (i) => {
      const k = inside(i);
      return k < 0 ? PAD : [0, 1, 2].map((c) => 255 * img.data[3 * k + c]);
    });
    // one signed scale for all five maps: mid-gray is 0, so the bias shows as a shift
    let m = 0;
    for (const map of [...st.maps, st.sum, st.out]) for (const v of map.data) m = Math.max(m, Math.abs(v));
    st.scale = m || 1;
    const gray = (map) => bitmap(map.h, map.w, (i) => {
      const g = 127.5 + (127.5 * map.data[i]) / st.scale;
      return [g, g, g];
    });
    st.mapBitmaps = [...st.maps.map(gray), gray(st.sum), gray(st.out)];
    st.inCtx = [...ui.inputs, ui.photo].map((cv) => sizeCanvas(cv, hp, wp, cell));
    st.mapCtx = [...ui.maps, ui.sumMap, ui.outMap].map((cv) => sizeCanvas(cv, st.out.h, st.out.w, cell));
  }

  function syncControls() {
    const presets = get("presets");
    ui.preset.value = get("preset") in presets ? get("preset") : "custom";
    if (document.activeElement !== ui.padding) ui.padding.value = st.p;
    if (document.activeElement !== ui.bias || Number(ui.bias.value) !== st.bias) ui.bias.value = st.bias;
    const shape = `${st.kh}x${st.kw}`;
    if (ui.root.dataset.shape !== shape) {
      ui.root.dataset.shape = shape;
      ui.slices.forEach((node, c) => {
        node.style.gridTemplateColumns = `repeat(${st.kw}, auto)`;
        node.replaceChildren(...Array.from({ length: st.kh * st.kw }, (_, t) => {
          const i = Math.floor(t / st.kw), j = t % st.kw;
          const cell = h("input", { class: "cx-weight", type: "text", inputmode: "decimal",
                                    "aria-label": `${CHANNELS[c]} slice, weight row ${i} column ${j}` });
          on(cell, "change", () => editWeight(c, i, j, cell));
          return cell;
        }));
      });
      for (const node of ui.windows) {
        node.style.gridTemplateColumns = `repeat(${st.kw}, auto)`;
        node.replaceChildren(...Array.from({ length: st.kh * st.kw }, () => h("span", { class: "cx-cell" })));
      }
    }
    ui.slices.forEach((node, c) => st.kernel[c].flat().forEach((v, t) => {
      const cell = node.children[t];
      if (document.activeElement !== cell || Number(cell.value.replace("\u2212", "-")) !== v) cell.value = fmt(v);
    }));
    const size = `${st.img.h}\u00d7${st.img.w}`;
    ui.inCaption.forEach((cap, c) => { cap.textContent = `${CHANNELS[c]} values, ${size}` + (st.p ? `, padding ${st.p}` : ""); });
    ui.outCaption.textContent = `output channel, ${st.out.h}\u00d7${st.out.w}`;
  }

  function editWeight(c, i, j, cell) {
    const text = cell.value.trim().replace("\u2212", "-"), v = Number(text);
    if (text === "" || !Number.isFinite(v)) { cell.value = fmt(st.kernel[c][i][j]); return; }
    const k = st.kernel.map((slice) => slice.map((row) => row.slice()));
    k[c][i][j] = v;
    model.set("preset", "custom");
    model.set("kernel", k);
    save();
  }

  // -- position: redraw the window, the highlighted pixel and the arithmetic -------------------
  function position() {
    const [r, c] = get("position");
    return [Math.min(Math.max(r, 0), st.out.h - 1), Math.min(Math.max(c, 0), st.out.w - 1)];
  }

  function redraw() {
    const [r, c] = position(), { cell, kh, kw, p } = st;
    st.inCtx.forEach((ctx, t) => {
      const bmp = t < 3 ? st.inBitmaps[t] : st.photoBitmap;
      ctx.drawImage(bmp, 0, 0, st.wp * cell, st.hp * cell);
      if (p) {
        ctx.setLineDash([3, 2]); ctx.strokeStyle = "#1a3d7c"; ctx.lineWidth = 1;
        ctx.strokeRect(p * cell + 0.5, p * cell + 0.5, st.img.w * cell - 1, st.img.h * cell - 1);
        ctx.setLineDash([]);
      }
      box(ctx, c * cell, r * cell, kw * cell, kh * cell);
    });
    st.mapCtx.forEach((ctx, t) => {
      ctx.drawImage(st.mapBitmaps[t], 0, 0, st.out.w * cell, st.out.h * cell);
      const m = Math.max(cell, 6);
      box(ctx, (c + 0.5) * cell - m / 2, (r + 0.5) * cell - m / 2, m, m);
    });
    const at = r * st.out.w + c, parts = st.maps.map((map) => map.data[at]);
    st.planes.forEach((plane, ch) => {
      const cells = ui.windows[ch].children;
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) {
          const y = r + i, x = c + j, pad = y < p || x < p || y >= p + plane.h || x >= p + plane.w;
          const node = cells[i * kw + j];
          node.textContent = pad ? "0" : twoDecimals(padded(plane, p, y, x));
          node.classList.toggle("cx-pad", pad);
        }
      }
      ui.partials[ch].textContent = twoDecimals(parts[ch]);
      ui.partials[ch].dataset.value = String(parts[ch]);
    });
    ui.sumValue.textContent = twoDecimals(st.sum.data[at]);
    ui.outValue.textContent = twoDecimals(st.out.data[at]);
    ui.outValue.dataset.value = String(st.out.data[at]);
    ui.status.textContent = equation(r, c, parts, st.bias, st.out.data[at]);
    ui.where.textContent = `Window at output row ${r}, column ${c}: it covers padded-input rows ${r} to ${r + kh - 1}, ` +
      `columns ${c} to ${c + kw - 1} of every channel.`;
  }

  function box(ctx, x, y, w, hh) {
    ctx.strokeStyle = "rgba(0, 0, 0, 0.75)"; ctx.lineWidth = 3;
    ctx.strokeRect(x - 1.5, y - 1.5, w + 3, hh + 3);
    ctx.strokeStyle = ACCENT; ctx.lineWidth = 1.5;
    ctx.strokeRect(x - 0.5, y - 0.5, w + 1, hh + 1);
  }

  function moveTo(r, c) {
    r = Math.min(Math.max(r, 0), st.out.h - 1);
    c = Math.min(Math.max(c, 0), st.out.w - 1);
    const [r0, c0] = get("position");
    if (r === r0 && c === c0) return;
    model.set("position", [r, c]);
    save();
  }

  // pointer (mouse, pen, touch) on any picture; on an input the window centres on the pointer
  let dragging = false;
  function fromPointer(ev) {
    const canvas = ev.currentTarget, rect = canvas.getBoundingClientRect();
    const fy = (ev.clientY - rect.top) / rect.height, fx = (ev.clientX - rect.left) / rect.width;
    if (canvas.classList.contains("cx-in")) moveTo(Math.round(fy * st.hp - st.kh / 2), Math.round(fx * st.wp - st.kw / 2));
    else moveTo(Math.floor(fy * st.out.h), Math.floor(fx * st.out.w));
  }
  for (const canvas of [...ui.inputs, ui.photo, ...ui.maps, ui.sumMap, ui.outMap]) {
    on(canvas, "pointerdown", (ev) => {
      dragging = true;
      canvas.setPointerCapture?.(ev.pointerId);
      ui.stage.focus({ preventScroll: true });
      fromPointer(ev);
      ev.preventDefault();
    });
    on(canvas, "pointermove", (ev) => { if (dragging) fromPointer(ev); });
    for (const type of ["pointerup", "pointercancel"]) on(canvas, type, () => { dragging = false; });
  }
  on(ui.stage, "keydown", (ev) => {
    if (ev.target !== ui.stage || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const step = ev.shiftKey ? 5 : 1, [r, c] = position();
    const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
    if (ev.key in moves) moveTo(r + moves[ev.key][0], c + moves[ev.key][1]);
    else if (ev.key === "Home") moveTo(0, 0);
    else if (ev.key === "End") moveTo(st.out.h - 1, st.out.w - 1);
    else return;
    ev.preventDefault();
  });

  // -- controls -------------------------------------------------------------------------------
  function clampPosition() {
    const ho = st.img.h + 2 * get("padding") - st.kh + 1, wo = st.img.w + 2 * get("padding") - st.kw + 1;
    const [r, c] = get("position");
    if (r >= ho || c >= wo) model.set("position", [Math.min(r, ho - 1), Math.min(c, wo - 1)]);
  }
  on(ui.preset, "change", () => {
    const k = get("presets")[ui.preset.value];
    if (!k) return;
    model.set("preset", ui.preset.value);
    model.set("kernel", k);
    clampPosition();
    save();
  });
  on(ui.padding, "input", () => {
    const v = Number(ui.padding.value);
    if (!Number.isInteger(v) || v < 0 || v > Number(ui.padding.max) ||
        st.img.h + 2 * v < st.kh || st.img.w + 2 * v < st.kw) return;
    model.set("padding", v);
    clampPosition();
    save();
  });
  on(ui.padding, "change", () => { ui.padding.value = get("padding"); });
  const setBias = () => {
    const v = Number(ui.bias.value);
    if (ui.bias.value.trim() === "" || !Number.isFinite(v)) return;
    model.set("bias", v);
    save();
  };
  on(ui.bias, "input", setBias);
  on(ui.bias, "change", () => { setBias(); ui.bias.value = get("bias"); });

  const settings = ["image", "kernel", "padding", "bias", "preset"];
  for (const name of settings) model.on(`change:${name}`, recompute);
  model.on("change:position", redraw);
  recompute();

  // a small handle for tests and for measuring redraw time
  const plain = (map) => ({ h: map.h, w: map.w, data: Array.from(map.data) });
  ui.root.cx = {
    get partials() { return st.maps.map(plain); },
    get sum() { return plain(st.sum); },
    get output() { return plain(st.out); },
    moveTo, redraw,
  };

  return () => {
    ac.abort();
    for (const name of settings) model.off(`change:${name}`, recompute);
    model.off("change:position", redraw);
  };
}

function buildDom(model) {
  const uid = Math.random().toString(36).slice(2);
  const preset = h("select", { class: "cx-preset", id: `cx-preset-${uid}` }, [
    ...Object.keys(model.get("presets")).map((n) => h("option", { value: n, text: n })),
    h("option", { value: "custom", text: "custom weights", disabled: true }),
  ]);
  const padding = h("input", { class: "cx-padding", type: "number", min: 0, max: 2, step: 1, inputmode: "numeric",
                               id: `cx-padding-${uid}` });
  const bias = h("input", { class: "cx-bias", type: "number", step: 0.1, inputmode: "decimal", id: `cx-bias-${uid}` });
  const field = (input, text) => h("div", { class: "cx-field" }, [h("label", { for: input.id, text }), input]);
  const canvas = (cls) => h("canvas", { class: cls, "aria-hidden": "true" });
  const inputs = [], maps = [], slices = [], windows = [], partials = [], inCaption = [];
  const cards = CHANNELS.map((name, c) => {
    inputs.push(canvas("cx-in")); maps.push(canvas("cx-map"));
    slices.push(h("div", { class: "cx-grid cx-slice", role: "group", "aria-label": `kernel slice for ${name}` }));
    windows.push(h("div", { class: "cx-grid cx-window", "aria-label": `${name} values in the window`, role: "group" }));
    partials.push(h("b", { class: "cx-partial" }));
    inCaption.push(h("span", { class: "cx-caption" }));
    return h("div", { class: `cx-card cx-${name}`, role: "group", "aria-label": `${name} channel` }, [
      h("strong", { class: "cx-title", text: `${name} channel` }),
      inputs[c], inCaption[c],
      h("span", { class: "cx-label", text: `${name} slice (editable)` }), slices[c],
      h("span", { class: "cx-label", text: `${name} in the window` }), windows[c],
      h("span", { class: "cx-label", text: `${name} correlation map` }), maps[c],
      h("p", { class: "cx-dot" }, ["window \u00b7 slice = ", partials[c]]),
    ]);
  });
  const photo = canvas("cx-in cx-photo"), sumMap = canvas("cx-map"), outMap = canvas("cx-map");
  const sumValue = h("b", { class: "cx-sum" }), outValue = h("b", { class: "cx-out" }), outCaption = h("span", { class: "cx-label" });
  const result = h("div", { class: "cx-card cx-result", role: "group", "aria-label": "sum, bias and output" }, [
    h("strong", { class: "cx-title", text: "sum, bias, output" }),
    photo, h("span", { class: "cx-caption", text: "the photo, all channels" }),
    h("span", { class: "cx-label", text: "sum of the three maps" }), sumMap,
    h("p", { class: "cx-dot" }, ["sum = ", sumValue]),
    field(bias, "+ bias b (editable)"),
    outCaption, outMap,
    h("p", { class: "cx-dot" }, ["output = sum + b = ", outValue]),
  ]);
  const keysHelp = h("p", { class: "cx-keys", id: `cx-keys-${uid}`,
    text: "Keys: \u2190 \u2191 \u2192 \u2193 move the window one pixel (Shift: five), Home / End first / last position; " +
          "or click or drag on any picture. Maps: mid-gray is 0, lighter positive, darker negative, one scale for all " +
          "five; padding is bluish with a dashed outline." });
  const stage = h("div", { class: "cx-stage", tabindex: "0", role: "group", "aria-describedby": keysHelp.id,
                           "aria-label": "window position: use the arrow keys to move it" }, [...cards, result]);
  const where = h("p", { class: "cx-where" });
  const status = h("p", { class: "cx-status", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const root = h("div", { class: "cx" }, [
    h("div", { class: "cx-controls" }, [field(preset, "kernel preset"), field(padding, "padding P")]),
    stage, where, status, keysHelp,
  ]);
  return { root, preset, padding, bias, stage, inputs, photo, maps, sumMap, outMap, slices, windows, partials,
           inCaption, sumValue, outValue, outCaption, where, status };
}

export default { render };
