// Painter: the photo with the heatmap (coloured here from the map Python sends); strokes go back as trigger values.
// Strokes carry increasing ids and every unacknowledged stroke is re-sent with each trigger and
// on a timer, so a burst coalesced by Streamlit loses nothing; Python applies each id once and
// acknowledges the highest id through `data.ack`.
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".iea-painter");
  if (!root || !data) return;
  let st = root.__iea;
  if (!st) {
    st = root.__iea = {
      token: null, nextId: 0, pending: [], ack: -1, drawing: null, photoUrl: null,
      values: null, valuesToken: null, valuesRev: -1, data: null, upTimes: {}, latencies: [], lastSend: 0, hover: null,
    };
    setup(root, st, setTriggerValue);
  }
  update(root, st, data, setTriggerValue);
}

function $(root, sel) { return root.querySelector(sel); }

function setup(root, st, setTriggerValue) {
  const preview = $(root, "canvas.preview");
  const toImage = (ev) => {
    const r = preview.getBoundingClientRect();
    const d = st.data;
    return [((ev.clientX - r.left) * d.width) / r.width - 0.5, ((ev.clientY - r.top) * d.height) / r.height - 0.5];
  };
  preview.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || !st.data) return;
    try { preview.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic events */ }
    st.drawing = [toImage(ev)];
    drawPreview(root, st);
    ev.preventDefault();
  });
  preview.addEventListener("pointermove", (ev) => {
    if (!st.data) return;
    const p = toImage(ev);
    st.hover = p;
    showValue(root, st, p);
    if (st.drawing) {
      const last = st.drawing[st.drawing.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 0.5) st.drawing.push(p);
    }
    drawPreview(root, st);
  });
  const finish = (ev) => {
    if (!st.drawing) return;
    const b = st.data.brush;
    st.nextId += 1;
    const stroke = {
      id: st.nextId, points: st.drawing.map((p) => [round2(p[0]), round2(p[1])]), radius: b.radius,
      value: b.value, hardness: b.hardness, flow: b.flow, mode: b.mode,
    };
    st.drawing = null;
    st.pending.push(stroke);
    st.upTimes[stroke.id] = performance.now();
    send(st, setTriggerValue);
    drawPreview(root, st);
  };
  preview.addEventListener("pointerup", finish);
  preview.addEventListener("pointercancel", finish);
  preview.addEventListener("pointerleave", () => { st.hover = null; showValue(root, st, null); drawPreview(root, st); });
  // keyboard shortcuts: Ctrl+Z undo, Ctrl+Y / Ctrl+Shift+Z redo, Ctrl+S save, Alt+N next
  const onKey = (ev) => {
    if (!root.isConnected) { document.removeEventListener("keydown", onKey); return; }
    const t = ev.composedPath()[0];
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    const k = ev.key.toLowerCase();
    let action = null;
    if ((ev.ctrlKey || ev.metaKey) && k === "z") action = ev.shiftKey ? "redo" : "undo";
    else if ((ev.ctrlKey || ev.metaKey) && k === "y") action = "redo";
    else if ((ev.ctrlKey || ev.metaKey) && k === "s") action = "save";
    else if (ev.altKey && k === "n") action = "next";
    if (!action) return;
    ev.preventDefault();
    act(st, setTriggerValue, action);
  };
  document.addEventListener("keydown", onKey);
  root.querySelectorAll("button[data-action]").forEach((btn) =>
    btn.addEventListener("click", () => act(st, setTriggerValue, btn.dataset.action)));
  // re-send unacknowledged strokes until Python acknowledges them
  st.timer = setInterval(() => {
    if (!root.isConnected) { clearInterval(st.timer); return; }
    if (st.pending.length && performance.now() - st.lastSend > 600) send(st, setTriggerValue);
    if (st.needResync && st.needResync === st.token) resync(st, st.token);
  }, 300);
}

function act(st, setTriggerValue, action) {
  // an action waits until every stroke before it is acknowledged, so "undo" never overtakes a stroke
  if (st.pending.length) { st.queued = action; return; }
  setTriggerValue("action", { token: st.token, action, n: performance.now() });
}

function round2(v) { return Math.round(v * 100) / 100; }

function send(st, setTriggerValue) {
  if (!st.pending.length) return;
  st.lastSend = performance.now();
  setTriggerValue("strokes", { token: st.token, strokes: st.pending.slice() });
}

function update(root, st, d, setTriggerValue) {
  st.data = d;
  if (d.token !== st.token) {  // a new image or painting session: start the ids after what Python has
    st.token = d.token;
    st.pending = [];
    st.nextId = Math.max(d.ack, 0);  // stroke ids start at 1
    st.upTimes = {};
  }
  st.ack = d.ack;
  st.nextId = Math.max(st.nextId, d.ack);
  st.pending = st.pending.filter((s) => s.id > d.ack);
  layout(root, d);
  if (!st.resizeObserver) {
    st.resizeObserver = new ResizeObserver(() => { if (st.data) layout(root, st.data); });
    st.resizeObserver.observe($(root, ".viewport"));
  }
  const layer = $(root, "canvas.layer");  // the heatmap at map resolution, composited into the view
  if (layer.width !== d.width || layer.height !== d.height) { layer.width = d.width; layer.height = d.height; }
  const viewKey = `${d.show}:${d.opacity}`;
  if (st.viewKey !== viewKey) { st.viewKey = viewKey; redrawView(root, st, null); }
  $(root, ".undo").disabled = !d.can_undo;
  $(root, ".redo").disabled = !d.can_redo;
  $(root, ".status").textContent = d.status || "";
  if (d.photo) {
    st.photoToken = d.token;
    if (d.photo !== st.photoUrl) {
      st.photoUrl = d.photo;
      const img = new Image();
      img.onload = () => { if (st.photoUrl === d.photo) { st.photoImg = img; redrawView(root, st, null); } };
      img.src = d.photo;
    }
  }
  // values: the whole map, then patches; processed in order, one update at a time
  st.setTriggerValue = setTriggerValue;
  const job = () => applyValues(root, st, d);
  st.chain = (st.chain || Promise.resolve()).then(job, job);
  if (st.pending.length) send(st, setTriggerValue);
  else if (st.queued) { const a = st.queued; st.queued = null; act(st, setTriggerValue, a); }
}

function layout(root, d) {
  // fit the image to the viewport's width and to 75% of the window's height, then zoom
  const view = $(root, ".viewport");
  const avail = view.clientWidth || 900;
  const fitW = Math.min(avail, (window.innerHeight * 0.75 * d.width) / d.height);
  const wrap = $(root, ".stack");
  const w = Math.max(50, Math.round(fitW * d.zoom));
  const h = Math.round((w * d.height) / d.width);
  if (wrap.style.width !== `${w}px`) {
    wrap.style.width = `${w}px`;
    wrap.style.height = `${h}px`;
  }
  // the view and the preview are drawn at screen resolution: nothing is rescaled when composited
  const dpr = window.devicePixelRatio || 1;
  const bw = Math.round(w * dpr), bh = Math.round(h * dpr);
  for (const c of [$(root, "canvas.view"), $(root, "canvas.preview")]) {
    if (c.width !== bw || c.height !== bh) { c.width = bw; c.height = bh; c.dataset.stale = "1"; }
  }
  const st = root.__iea;
  if ($(root, "canvas.view").dataset.stale && st) {
    delete $(root, "canvas.view").dataset.stale;
    redrawView(root, st, null);
    drawPreview(root, st);
  }
}

function redrawView(root, st, regions) {
  // photo, then the heatmap layer at the chosen opacity, inside the given map-pixel boxes
  const d = st.data;
  if (!d) return;
  const view = $(root, "canvas.view");
  const layer = $(root, "canvas.layer");
  const ctx = view.getContext("2d");
  const sx = view.width / d.width, sy = view.height / d.height;
  for (const [x, y, w, h] of regions || [[0, 0, d.width, d.height]]) {
    const X = Math.max(0, Math.floor(x * sx) - 1), Y = Math.max(0, Math.floor(y * sy) - 1);
    const W = Math.min(view.width, Math.ceil((x + w) * sx) + 1) - X, H = Math.min(view.height, Math.ceil((y + h) * sy) + 1) - Y;
    ctx.save();
    ctx.beginPath();
    ctx.rect(X, Y, W, H);
    ctx.clip();
    ctx.clearRect(X, Y, W, H);
    if (st.photoImg) ctx.drawImage(st.photoImg, 0, 0, view.width, view.height);
    if (d.show && d.opacity > 0 && layer.width === d.width) {
      ctx.globalAlpha = d.opacity;
      ctx.drawImage(layer, 0, 0, view.width, view.height);
    }
    ctx.restore();
  }
}

function resync(st, token) {
  // the browser lost track of the map or the photo (a remount, a skipped update): ask for
  // everything; the timer repeats the request until a full update arrives
  st.needResync = token;
  if (performance.now() - (st.lastResync || -1e9) < 1000) return;
  st.lastResync = performance.now();
  st.setTriggerValue("resync", { token, n: st.lastResync });
}

async function applyValues(root, st, d) {
  const v = d.values;
  const regions = [];
  if (v.full) {
    if (d.photo) st.needResync = null;
    if (!(st.valuesToken === d.token && st.valuesRev === v.rev && st.values)) {
      st.values = await inflate(v.full);
      st.valuesToken = d.token;
      st.valuesRev = v.rev;
      regions.push([0, 0, d.width, d.height]);
    }
  } else if (st.valuesToken !== d.token || !st.values || (v.rev !== st.valuesRev && v.from_rev !== st.valuesRev)) {
    resync(st, d.token);
    return;
  } else if (v.rev !== st.valuesRev) {
    for (const p of v.patches) {
      const patch = await inflate(p.data);
      for (let r = 0; r < p.h; r++) st.values.set(patch.subarray(r * p.w, (r + 1) * p.w), (p.y + r) * d.width + p.x);
      regions.push([p.x, p.y, p.w, p.h]);
    }
    st.valuesRev = v.rev;
  }
  if (st.photoToken !== d.token) resync(st, d.token);
  if (!st.lut || st.lutKey !== d.lut) {
    st.lut = Uint8Array.from(atob(d.lut), (c) => c.charCodeAt(0));
    st.lutKey = d.lut;
    st.colorKey = null;
  }
  const colorKey = `${d.vmax}:${d.color_scale}`;
  if (st.colorKey !== colorKey) { st.colorKey = colorKey; regions.length = 0; regions.push([0, 0, d.width, d.height]); }
  const layer = $(root, "canvas.layer");
  for (const [x, y, w, h] of regions) colorRegion(layer, st, d, x, y, w, h);
  if (regions.length) redrawView(root, st, regions);
  await new Promise((resolve) => requestAnimationFrame(resolve));
  // at the frame that shows it: record the latency of every stroke this map acknowledges
  const now = performance.now();
  for (const id of Object.keys(st.upTimes)) {
    if (Number(id) <= d.ack) { st.latencies.push(now - st.upTimes[id]); delete st.upTimes[id]; }
  }
  root.dataset.latencies = JSON.stringify(st.latencies.slice(-200));
  root.dataset.rev = String(d.rev);
  root.dataset.ack = String(d.ack);
  drawPreview(root, st);
}

function colorRegion(canvas, st, d, x0, y0, w, h) {
  // the colours of iea_data.heatmaps: row rint((clip(v / vmax, -1, 1) + 1) * 255) of its RGBA table
  if (w <= 0 || h <= 0) return;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const out = img.data, lut = st.lut, vals = st.values, W = d.width;
  const k = (d.values_step * d.color_scale) / d.vmax;
  for (let r = 0; r < h; r++) {
    let src = (y0 + r) * W + x0, dst = r * w * 4;
    for (let c = 0; c < w; c++, src++, dst += 4) {
      let t = vals[src] * k;
      t = t < -1 ? -1 : t > 1 ? 1 : t;
      const i = Math.round((t + 1) * 255) * 4;
      out[dst] = lut[i]; out[dst + 1] = lut[i + 1]; out[dst + 2] = lut[i + 2]; out[dst + 3] = lut[i + 3];
    }
  }
  ctx.putImageData(img, x0, y0);
}

async function inflate(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const buf = await new Response(stream).arrayBuffer();
  return new Int16Array(buf);
}

function showValue(root, st, p) {
  const out = $(root, ".readout");
  const d = st.data;
  if (!p || !st.values) { out.textContent = "value under the cursor: -"; return; }
  const x = Math.round(p[0]), y = Math.round(p[1]);
  if (x < 0 || y < 0 || x >= d.width || y >= d.height) { out.textContent = "value under the cursor: -"; return; }
  const v = st.values[y * d.width + x] * d.values_step;
  const [neg, zero, pos] = d.words;
  const word = Math.abs(v) <= d.ideal_tolerance ? zero : v < 0 ? neg : pos;
  out.textContent = `x ${x}, y ${y}: ${v >= 0 ? "+" : ""}${v.toFixed(3)}${d.unit ? " " + d.unit : ""} (${word})`;
}

function drawPreview(root, st) {
  const c = $(root, "canvas.preview");
  const ctx = c.getContext("2d");
  const d = st.data;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, c.width, c.height);
  if (!d) return;
  // draw in map pixels (pixel centres at integers) on the screen-resolution canvas
  const sx = c.width / d.width, sy = c.height / d.height;
  ctx.setTransform(sx, 0, 0, sy, 0.5 * sx, 0.5 * sy);
  const b = d.brush;
  const color = b.mode === "add" || b.mode === "set" ? (b.value < 0 ? "33,102,172" : "178,24,43") : "80,80,80";
  const paths = st.pending.filter((s) => s.id > d.ack).map((s) => s.points);
  if (st.drawing) paths.push(st.drawing);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const pts of paths) {
    ctx.strokeStyle = `rgba(${color},0.35)`;
    ctx.fillStyle = `rgba(${color},0.35)`;
    ctx.lineWidth = 2 * b.radius;
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    if (pts.length === 1) { ctx.arc(pts[0][0], pts[0][1], b.radius, 0, 2 * Math.PI); ctx.fill(); continue; }
    for (const p of pts.slice(1)) ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  }
  if (st.hover) {  // the brush outline under the cursor
    ctx.lineWidth = 1.5 / sx;
    ctx.strokeStyle = "rgba(0,0,0,0.8)";
    ctx.beginPath();
    ctx.arc(st.hover[0], st.hover[1], b.radius, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.strokeStyle = "rgba(255,255,255,0.9)";
    ctx.beginPath();
    ctx.arc(st.hover[0], st.hover[1], b.radius + ctx.lineWidth, 0, 2 * Math.PI);
    ctx.stroke();
  }
}
