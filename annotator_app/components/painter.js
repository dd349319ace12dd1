// Painter: the photo with the heatmap (coloured here from the map Python sends); strokes go back as trigger values.
// Strokes carry increasing ids and every unacknowledged stroke is re-sent with each trigger and
// on a timer, so a burst coalesced by Streamlit loses nothing; Python applies each id once and
// acknowledges the highest id through `data.ack`.
// Each stroke is painted here at once (paintStroke, the Python brush ported) on `pred`, the map
// shown; the server stays authoritative: `server` holds what Python sent, and every update
// resets the boxes it touched and those of the predicted strokes to it, then paints the strokes
// Python has not acknowledged yet again. With nothing pending, the screen is the stored map.
// unacknowledged strokes are re-sent after RESEND_MS without an answer, then at doubling intervals up to
// RESEND_MAX_MS until one comes (a catalog outage, a replica lost: the strokes wait in the browser)
const RESEND_MS = 600, RESEND_MAX_MS = 2400;
const READOUT_MS = 150;  // the value under the cursor is rewritten at most this often
const CHANNEL_TIMEOUT_MS = 10000;  // a stroke-channel request without an answer by then is given up (re-sent)

export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const root = parentElement.querySelector(".iea-painter");
  if (!root || !data) return;
  let st = root.__iea;
  if (!st) {
    st = root.__iea = {
      token: null, nextId: 0, pending: [], ack: -1, drawing: null, photoUrl: null,
      values: null, valuesToken: null, valuesRev: -1, data: null, upTimes: {}, latencies: [], lastSend: 0, hover: null,
      resendMs: RESEND_MS,
      server: null, pred: null, base: null, predicted: [], predictions: {}, ackLatencies: [],
    };
    setup(root, st, setTriggerValue);
  }
  update(root, st, data, setTriggerValue);
}

function $(root, sel) { return root.querySelector(sel); }

function setup(root, st, setTriggerValue) {
  warmUp();
  const preview = $(root, "svg.preview");
  // what each mouse step touches, found once
  st.el = { svg: preview, ink: $(root, "svg.preview g.drawing"), brush: $(root, ".stack .brush"), stack: $(root, ".stack") };
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
    // the prediction first, and the message to Python after the frame that shows it: sending
    // reruns Streamlit's front end, work that would otherwise delay that frame (issue 13)
    predict(root, st, stroke);
    drawPreview(root, st);
    requestAnimationFrame(() => setTimeout(() => send(st, setTriggerValue), 0));
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
    if (st.pending.length && performance.now() - st.lastSend > st.resendMs) {
      send(st, setTriggerValue);
      st.resendMs = Math.min(2 * st.resendMs, RESEND_MAX_MS);  // no answer yet: a busy server is not flooded
    }
    if (st.needResync && st.needResync === st.token) resync(st, st.token);
  }, 300);
}

function predict(root, st, stroke) {
  // paint the stroke on the shown map now; the frame after it is the stroke's latency
  const d = st.data, t0 = st.upTimes[stroke.id];
  if (!st.pred || st.valuesToken !== d.token) return;
  const [lo, hi] = d.value_range || [-1, 1];
  const box = paintStroke(st.pred, st.base, d.width, d.height, stroke, lo, hi);
  st.predicted.push({ id: stroke.id, box });
  if (box) {
    const [y0, y1, x0, x1] = box;
    const snap = new Float32Array((y1 - y0) * (x1 - x0));
    for (let y = y0; y < y1; y++) snap.set(st.pred.subarray(y * d.width + x0, y * d.width + x1), (y - y0) * (x1 - x0));
    st.predictions[stroke.id] = { box, values: snap };  // for the tests: the prediction as painted
    for (const id of Object.keys(st.predictions)) if (Number(id) <= stroke.id - 64) delete st.predictions[id];
    const layer = $(root, "canvas.layer");
    colorRegion(layer, st, d, x0, y0, x1 - x0, y1 - y0);
    redrawView(root, st, [[x0, y0, x1 - x0, y1 - y0]]);
  }
  requestAnimationFrame(() => {
    if (t0 === undefined) return;
    st.latencies.push(performance.now() - t0);
    root.dataset.latencies = JSON.stringify(st.latencies.slice(-200));
    root.dataset.predicted = String(stroke.id);
  });
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
  const d = st.data;
  if (d && d.channel && st.channelOff !== st.token) { post(st, d.channel); return; }
  setTriggerValue("strokes", { token: st.token, strokes: st.pending.slice() });
}

async function post(st, url) {
  // the stroke channel (annotator_app/stroke_channel.py): the strokes to the replica of this session,
  // the acknowledgement and the changed boxes in the answer, no Streamlit rerun; one request at a time
  // (the answer's update sends what is left, the timer re-sends after silence)
  if (st.inflight) { st.again = true; return; }
  st.inflight = true;
  st.again = false;
  const token = st.token;
  let answer = null;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), CHANNEL_TIMEOUT_MS);
  try {
    const body = JSON.stringify({ token, rev: st.valuesRev, strokes: st.pending.slice() });
    const r = await fetch(url, {
      method: "POST", body, headers: { "Content-Type": "application/json" }, credentials: "same-origin",
      cache: "no-store", signal: abort.signal,
    });
    if (r.status === 404 && st.token === token) {
      const why = await r.json().catch(() => ({}));
      if (why.instance && st.data && st.data.instance && why.instance !== st.data.instance) {
        // another server process answered: this page's session died with its replica (Streamlit
        // reconnects a page without rerunning it); a new page signs in on a live one
        window.location.reload();
        return;
      }
      // a painter closed meanwhile (submitted, another image): Streamlit's path, which drops the stroke
      st.channelOff = token;
      st.setTriggerValue("strokes", { token, strokes: st.pending.slice() });
    } else if (r.ok) {
      answer = await r.json();
    }
  } catch (e) { /* the network or the server: the timer re-sends */ }
  clearTimeout(timer);
  st.inflight = false;
  if (answer && answer.token === st.token && st.data && st.data.token === token) showAnswer(st, answer);
  // strokes drawn while the request ran go at once
  if (st.again && st.pending.length && st.channelOff !== st.token) { st.again = false; send(st, st.setTriggerValue); }
}

function showAnswer(st, answer) {
  const token = st.token;
  const errors = Array.isArray(answer.errors) ? answer.errors : [];
  const status = [answer.status || ""].concat(errors).filter(Boolean).join(" — ");
  update(st.root, st, Object.assign({}, st.data, {
    ack: answer.ack, rev: answer.values.rev, values: answer.values, photo: null,
    can_undo: answer.can_undo, can_redo: answer.can_redo, status,
  }), st.setTriggerValue);
  if (answer.resync) resync(st, token);
}

function update(root, st, d, setTriggerValue) {
  // strokes are acknowledged by Streamlit's renders and by the channel's answers, in either order
  if (d.token === st.token && d.ack < st.ack) d = Object.assign({}, d, { ack: st.ack });
  st.root = root;
  st.data = d;
  if (d.token !== st.token) {  // a new image or painting session: start the ids after what Python has
    st.token = d.token;
    st.pending = [];
    st.nextId = Math.max(d.ack, 0);  // stroke ids start at 1
    st.upTimes = {};
    st.predicted = [];
    st.predictions = {};
  }
  if (d.ack > st.ack) st.resendMs = RESEND_MS;  // the server answers: re-send at the base pace again
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
  // every send carries all pending strokes, so an answer that acknowledges only some of them needs no
  // new send: the one in flight has the rest (the timer re-sends if it was lost)
  if (st.pending.length) { if (performance.now() - st.lastSend > st.resendMs) send(st, setTriggerValue); }
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
  // the view is drawn at screen resolution: nothing is rescaled when composited
  const dpr = window.devicePixelRatio || 1;
  const bw = Math.round(w * dpr), bh = Math.round(h * dpr);
  const c = $(root, "canvas.view");
  if (c.width !== bw || c.height !== bh) { c.width = bw; c.height = bh; c.dataset.stale = "1"; }
  const st = root.__iea;
  if (c.dataset.stale && st) {
    delete c.dataset.stale;
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
  const regions = [];  // [x, y, w, h] boxes to recolour from `pred`
  const W = d.width, H = d.height, step = d.values_step;
  const same = st.valuesToken === d.token && st.values;
  if (v.full) {
    if (d.photo) st.needResync = null;
    // a full map older than the one shown (a render overtaken by the channel's answers) is not shown
    if (!(same && st.valuesRev >= v.rev)) {
      st.values = await inflate(v.full);
      st.server = Float32Array.from(st.values, (q) => q * step);
      st.base = v.base ? Float32Array.from(await inflate(v.base), (q) => q * step) : new Float32Array(W * H);
      st.pred = new Float32Array(W * H);
      st.valuesToken = d.token;
      st.valuesRev = v.rev;
      regions.push([0, 0, W, H]);
    }
  } else if (!same || (v.rev > st.valuesRev && v.from_rev > st.valuesRev)) {
    // a gap: changes after what is shown and before these patches were never received
    resync(st, d.token);
    return;
  } else if (v.rev > st.valuesRev) {
    // patches hold the current values of every box changed after from_rev: right on any map between
    for (const p of v.patches) {
      const patch = await inflate(p.data);
      for (let r = 0; r < p.h; r++) {
        const row = patch.subarray(r * p.w, (r + 1) * p.w), o = (p.y + r) * W + p.x;
        st.values.set(row, o);
        for (let c = 0; c < p.w; c++) st.server[o + c] = row[c] * step;
      }
      regions.push([p.x, p.y, p.w, p.h]);
    }
    st.valuesRev = v.rev;
  }
  // the server is authoritative: reset to it what changed and what was predicted, then paint
  // again the strokes it has not acknowledged (they are already on screen: no flicker)
  for (const p of st.predicted) if (p.box) regions.push([p.box[2], p.box[0], p.box[3] - p.box[2], p.box[1] - p.box[0]]);
  for (const [x, y, w, h] of regions) for (let r = y; r < y + h; r++) st.pred.set(st.server.subarray(r * W + x, r * W + x + w), r * W + x);
  const [lo, hi] = d.value_range || [-1, 1];
  const ahead = st.pending.filter((s) => s.id > d.ack);
  st.predicted = st.predicted.filter((p) => p.id > d.ack);
  for (const s of ahead) if (st.predicted.some((p) => p.id === s.id)) paintStroke(st.pred, st.base, W, H, s, lo, hi);
  if (st.photoToken !== d.token) resync(st, d.token);
  if (!st.lut || st.lutKey !== d.lut) {
    st.lut = Uint8Array.from(atob(d.lut), (c) => c.charCodeAt(0));
    st.lutKey = d.lut;
    st.colorKey = null;
  }
  const colorKey = `${d.vmax}:${d.color_scale}`;
  if (st.colorKey !== colorKey) { st.colorKey = colorKey; regions.length = 0; regions.push([0, 0, W, H]); }
  const layer = $(root, "canvas.layer");
  for (const [x, y, w, h] of regions) colorRegion(layer, st, d, x, y, w, h);
  if (regions.length) redrawView(root, st, regions);
  await new Promise((resolve) => requestAnimationFrame(resolve));
  // at the frame that shows it: the latency of every stroke this map acknowledges
  const now = performance.now();
  for (const id of Object.keys(st.upTimes)) {
    if (Number(id) <= d.ack) { st.ackLatencies.push(now - st.upTimes[id]); delete st.upTimes[id]; }
  }
  root.dataset.ackLatencies = JSON.stringify(st.ackLatencies.slice(-200));
  root.dataset.rev = String(d.rev);
  root.dataset.ack = String(d.ack);
  root.dataset.token = d.token;  // the painting shown (a new image or a reopened painter has a new one)
  drawPreview(root, st);
}

function colorRegion(canvas, st, d, x0, y0, w, h) {
  // the colours of iea_data.core.heatmaps: row rint((clip(v / vmax, -1, 1) + 1) * 255) of its RGBA table
  if (w <= 0 || h <= 0) return;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const out = img.data, lut = st.lut, vals = st.pred, W = d.width;
  const k = d.color_scale / d.vmax;
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
  // at most every READOUT_MS, and the last position once the cursor rests: the readout lies below the
  // painter, and a frame that changes both it and the brush ring has their joint box (the painter's
  // height) to composite again (issue 13)
  st.readoutP = p;
  if (st.readoutTimer) return;
  const wait = (st.readoutAt || -Infinity) + READOUT_MS - performance.now();
  const show = () => { st.readoutTimer = null; st.readoutAt = performance.now(); writeValue(root, st, st.readoutP); };
  if (wait <= 0) show();
  else st.readoutTimer = setTimeout(show, wait);
}

function writeValue(root, st, p) {
  const out = $(root, ".readout");
  const d = st.data;
  if (!p || !st.pred) { out.textContent = "value under the cursor: -"; return; }
  const x = Math.round(p[0]), y = Math.round(p[1]);
  if (x < 0 || y < 0 || x >= d.width || y >= d.height) { out.textContent = "value under the cursor: -"; return; }
  const v = st.pred[y * d.width + x];
  const [neg, zero, pos] = d.words;
  const word = Math.abs(v) <= d.ideal_tolerance ? zero : v < 0 ? neg : pos;
  out.textContent = `x ${x}, y ${y}: ${v >= 0 ? "+" : ""}${v.toFixed(3)}${d.unit ? " " + d.unit : ""} (${word})`;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function drawPreview(root, st) {
  // The stroke being drawn is SVG over the view, in map pixels (viewBox), and the brush outline a ring
  // above it; a mouse step only adds one segment or moves the ring, so the browser re-rasters and
  // composites that small box alone. A screen-size canvas redrawn per step made the compositor redraw
  // the whole painter on every frame, most of the renderer's work per stroke on a software compositor
  // (issue 13).
  const { svg, ink, brush } = st.el;
  const d = st.data;
  if (!d) { ink.replaceChildren(); brush.style.display = "none"; return; }
  const vb = `-0.5 -0.5 ${d.width} ${d.height}`;  // pixel centres at integers, as on the map
  if (svg.getAttribute("viewBox") !== vb) svg.setAttribute("viewBox", vb);
  const b = d.brush;
  // the stroke being drawn (finished strokes are painted into the heatmap at once): one element a
  // point, opaque, in a group at 35% opacity so overlaps do not darken
  const pts = st.drawing;
  if (!pts) { if (ink.firstChild) ink.replaceChildren(); }
  else {
    if (!ink.firstChild) {
      const color = b.mode === "add" || b.mode === "set" ? (b.value < 0 ? "rgb(33,102,172)" : "rgb(178,24,43)") : "rgb(80,80,80)";
      ink.setAttribute("stroke", color);
      ink.setAttribute("fill", color);
      ink.setAttribute("stroke-width", String(2 * b.radius));
    }
    for (let i = ink.childElementCount; i < pts.length; i++) {
      const [x, y] = pts[i];
      ink.appendChild(i === 0
        ? svgEl("circle", { cx: x, cy: y, r: b.radius, stroke: "none" })
        : svgEl("line", { x1: pts[i - 1][0], y1: pts[i - 1][1], x2: x, y2: y }));
    }
  }
  // the brush outline under the cursor: a ring on its own compositor layer, moved by a transform, so a
  // mouse step is neither painted nor rastered again, only composited
  if (!st.hover) { if (brush.style.display !== "none") brush.style.display = "none"; return; }
  const stack = st.el.stack.style;  // its size as layout() set it: no layout read
  const sx = parseFloat(stack.width) / d.width || 1, sy = parseFloat(stack.height) / d.height || sx;  // screen px a map px
  const R = b.radius * sx + 0.75;  // the black ring centred on the radius, the white one just outside it
  const size = `${2 * R}px`;
  if (brush.style.width !== size) { brush.style.width = size; brush.style.height = size; }
  brush.style.transform = `translate(${(st.hover[0] + 0.5) * sx - R}px, ${(st.hover[1] + 0.5) * sy - R}px)`;
  if (brush.style.display === "none") brush.style.display = "";
}

// ----------------------------------------------------------------------------------------------
// The brush, ported from iea_data/core/painting/_raster.py (one definition: both are tested against
// tests/core/painting/fixtures/brush_strokes.json, generated by the Python rasteriser). Each stroke is
// predicted here at once on the browser's float32 map; the server's patch then replaces the box.

const PATH_TOLERANCE = 0.2, DP_CHUNK = 512, WORK_FACTOR = 64, SEGMENT_COST = 8192;
const f32 = Math.fround;

function dedupe(pts) {
  if (pts.length < 2) return pts;
  const out = [pts[0]];
  for (let i = 1; i < pts.length; i++) if (pts[i][0] !== pts[i - 1][0] || pts[i][1] !== pts[i - 1][1]) out.push(pts[i]);
  return out;
}

// cv::approxPolyDP (OpenCV 4.11+ / 5, imgproc/src/approx.cpp) on float32 points, open curve, line for line
function approxPolyDP(src, eps) {
  const count0 = src.length;
  if (!count0) return [];
  const dst = new Array(count0);
  const stack = [];
  let count = count0, newCount = 0, isClosed = false, initIters = 3, leEps = false, pos = 0, i, j;
  let slice = [0, 0], right = [0, 0], startPt, endPt, pt;
  const read = () => { const p = src[pos]; if (++pos >= count) pos = 0; return p; };
  eps *= eps;
  right[0] = count;
  endPt = src[0];
  startPt = src[count - 1];
  if (startPt[0] !== endPt[0] || startPt[1] !== endPt[1]) { stack.push([0, count - 1]); }
  else { isClosed = true; initIters = 1; }
  if (isClosed) {
    right[0] = 0;
    for (i = 0; i < initIters; i++) {
      let maxDist = 0;
      pos = (pos + right[0]) % count;
      startPt = read();
      for (j = 1; j < count; j++) {
        pt = read();
        const dx = f32(pt[0] - startPt[0]), dy = f32(pt[1] - startPt[1]);
        const dist = dx * dx + dy * dy;
        if (dist > maxDist) { maxDist = dist; right[0] = j; }
      }
      leEps = maxDist <= eps;
    }
    if (!leEps) {
      right[1] = slice[0] = pos % count;
      slice[1] = right[0] = (right[0] + slice[0]) % count;
      stack.push([right[0], right[1]]);
      stack.push([slice[0], slice[1]]);
    } else dst[newCount++] = startPt;
  }
  while (stack.length) {
    slice = stack.pop();
    endPt = src[slice[1]];
    pos = slice[0];
    startPt = read();
    if (pos !== slice[1]) {
      // the distance to the segment (not the line): OpenCV >= 4.11
      let maxD = 0;
      const dx = f32(endPt[0] - startPt[0]), dy = f32(endPt[1] - startPt[1]), len2 = dx * dx + dy * dy;
      while (pos !== slice[1]) {
        pt = read();
        const ax = f32(pt[0] - startPt[0]), ay = f32(pt[1] - startPt[1]), proj = ax * dx + ay * dy;
        let d;
        if (proj < 0) d = f32(f32(ax * ax) + f32(ay * ay)) * len2;
        else if (proj > len2) {
          const bx = f32(pt[0] - endPt[0]), by = f32(pt[1] - endPt[1]);
          d = f32(f32(bx * bx) + f32(by * by)) * len2;
        } else { const c = ay * dx - ax * dy; d = c * c; }
        if (d > maxD) { maxD = d; right[0] = (pos + count - 1) % count; }
      }
      leEps = maxD <= eps * len2;
    } else { leEps = true; startPt = src[slice[0]]; }
    if (leEps) dst[newCount++] = startPt;
    else {
      right[1] = slice[1];
      slice[1] = right[0];
      stack.push([right[0], right[1]]);
      stack.push([slice[0], slice[1]]);
    }
  }
  if (!isClosed) dst[newCount++] = src[count - 1];
  // clean-up: drop points on (almost) straight lines
  count = newCount;
  pos = 0;
  const readDst = () => { const p = dst[pos]; if (++pos >= count) pos = 0; return p; };
  startPt = readDst();
  let wpos = pos;
  pt = readDst();
  for (i = 1; i < count - 1 && newCount > 2; i++) {
    endPt = readDst();
    const dx = f32(endPt[0] - startPt[0]), dy = f32(endPt[1] - startPt[1]);
    const dist = Math.abs(f32(pt[0] - startPt[0]) * dy - f32(pt[1] - startPt[1]) * dx);
    const sip = f32(f32(f32(pt[0] - startPt[0]) * f32(endPt[0] - pt[0])) + f32(f32(pt[1] - startPt[1]) * f32(endPt[1] - pt[1])));
    if (dist * dist <= 0.5 * eps * (dx * dx + dy * dy) && dx !== 0 && dy !== 0 && sip >= 0) {
      newCount--;
      dst[wpos] = startPt = endPt;
      if (++wpos >= count) wpos = 0;
      pt = readDst();
      i++;
      continue;
    }
    dst[wpos] = startPt = pt;
    if (++wpos >= count) wpos = 0;
    pt = endPt;
  }
  dst[wpos] = pt;
  return dst.slice(0, newCount);
}

// _simplify: Douglas-Peucker in pieces of DP_CHUNK points, on float32 offsets from the corner
export function simplifyPath(points, tolerance = PATH_TOLERANCE) {
  const pts = dedupe(points);
  if (pts.length <= 2) return pts;
  let ox = Infinity, oy = Infinity;
  for (const p of pts) { if (p[0] < ox) ox = p[0]; if (p[1] < oy) oy = p[1]; }
  const rel = pts.map((p) => [f32(p[0] - ox), f32(p[1] - oy)]);
  const same = (a, b) => a[0] === b[0] && a[1] === b[1];
  let all = [];
  for (let i = 0; i < rel.length - 1; i += DP_CHUNK) {
    const piece = rel.slice(i, i + DP_CHUNK + 1);
    let kept = approxPolyDP(piece, tolerance);
    if (kept.length < 2 || !(same(kept[0], piece[0]) && same(kept[kept.length - 1], piece[piece.length - 1])))
      kept = [piece[0], ...kept, piece[piece.length - 1]];
    all = all.concat(all.length ? kept.slice(1) : kept);
  }
  const keep = dedupe(all.map((p) => [p[0] + ox, p[1] + oy]));
  return keep.length >= 2 ? keep : [pts[0], pts[pts.length - 1]];
}

export function strokeBox(stroke, W, H) {
  const r = stroke.radius;
  let mnx = Infinity, mxx = -Infinity, mny = Infinity, mxy = -Infinity;
  for (const [x, y] of stroke.points) { mnx = Math.min(mnx, x); mxx = Math.max(mxx, x); mny = Math.min(mny, y); mxy = Math.max(mxy, y); }
  const x0 = Math.max(0, Math.ceil(mnx - r)), x1 = Math.min(W, Math.floor(mxx + r) + 1);
  const y0 = Math.max(0, Math.ceil(mny - r)), y1 = Math.min(H, Math.floor(mxy + r) + 1);
  return x0 >= x1 || y0 >= y1 ? null : [y0, y1, x0, x1];
}

function segmentBoxes(pts, box, r) {
  const [y0, y1, x0, x1] = box;
  const n = pts.length === 1 ? 1 : pts.length - 1, out = [];
  for (let i = 0; i < n; i++) {
    const a = pts[i], b = pts.length === 1 ? pts[0] : pts[i + 1];
    out.push([Math.max(y0, Math.ceil(Math.min(a[1], b[1]) - r)), Math.min(y1, Math.floor(Math.max(a[1], b[1]) + r) + 1),
              Math.max(x0, Math.ceil(Math.min(a[0], b[0]) - r)), Math.min(x1, Math.floor(Math.max(a[0], b[0]) + r) + 1)]);
  }
  return out;
}

// _plan: the simplified path, coarsened until its segments' boxes fit WORK_FACTOR map passes
function plan(points, box, r, W, H) {
  const budget = WORK_FACTOR * Math.max(W * H, 256 * 256);
  let extent = 0;
  if (points.length > 1) {
    let mnx = Infinity, mxx = -Infinity, mny = Infinity, mxy = -Infinity;
    for (const [x, y] of points) { mnx = Math.min(mnx, x); mxx = Math.max(mxx, x); mny = Math.min(mny, y); mxy = Math.max(mxy, y); }
    extent = Math.max(mxx - mnx, mxy - mny);
  }
  let tol = PATH_TOLERANCE;
  for (;;) {
    const pts = tol < extent ? simplifyPath(points, tol) : dedupe([points[0], points[points.length - 1]]);
    const boxes = segmentBoxes(pts, box, r);
    let work = 0;
    for (const [a, b, c, d] of boxes) {
      const area = Math.max(0, b - a) * Math.max(0, d - c);
      work += area + (area > 0 ? SEGMENT_COST : 0);
    }
    if (work <= budget || pts.length <= 2) return [pts, boxes];
    tol *= 2;
  }
}

function warmUp() {
  // run the brush on a scratch map so that the first real stroke does not pay for compiling it
  const m = new Float32Array(48 * 48);
  for (let i = 0; i < 3; i++) for (const mode of ["add", "set", "smooth", "restore"])
    paintStroke(m, m, 48, 48, { id: 0, points: [[5, 5], [30, 20.5], [12, 40], [13, 41]], radius: 12, value: 0.1, hardness: 0.5, flow: 1, mode });
}

export function brushProfile(d, hardness) {
  if (hardness >= 1) return d <= 1 ? 1 : 0;
  let t = (d - hardness) / (1 - hardness);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return 1 - t * t * (3 - 2 * t);
}

// stroke_weight: flow * profile(distance to the polyline / radius) over the stroke's box
export function strokeWeight(stroke, W, H) {
  const box = strokeBox(stroke, W, H);
  if (!box) return null;
  const [y0, y1, x0, x1] = box, bw = x1 - x0, r = stroke.radius;
  const d2 = new Float32Array((y1 - y0) * bw).fill(f32((r + 1) * (r + 1)));
  const [pts, boxes] = plan(stroke.points, box, r, W, H);
  for (let s = 0; s < boxes.length; s++) {
    const [sy0, sy1, sx0, sx1] = boxes[s];
    if (sx0 >= sx1 || sy0 >= sy1) continue;
    const a = pts[s], b = pts.length === 1 ? pts[0] : pts[s + 1];
    const ax = f32(a[0]), ay = f32(a[1]), dx = f32(b[0] - a[0]), dy = f32(b[1] - a[1]);
    const seg2 = f32(dx * dx + dy * dy);
    for (let y = sy0; y < sy1; y++) {
      const py = f32(y - ay);
      let o = (y - y0) * bw + (sx0 - x0);
      for (let x = sx0; x < sx1; x++, o++) {
        const px = f32(x - ax);
        let ex = px, ey = py;
        if (seg2 > 0) {
          let t = f32((px * dx + py * dy) / seg2);
          t = t < 0 ? 0 : t > 1 ? 1 : t;
          ex = px - t * dx; ey = py - t * dy;
        }
        const e = f32(ex * ex + ey * ey);
        if (e < d2[o]) d2[o] = e;
      }
    }
  }
  const w = new Float32Array(d2.length), rr = f32(r), h = stroke.hardness, flow = stroke.flow;
  for (let i = 0; i < w.length; i++) w[i] = brushProfile(f32(Math.sqrt(d2[i]) / rr), h) * flow;
  return { box, w };
}

function roundHalfEven(v) {
  const f = Math.floor(v), diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// cv2.stackBlur (OpenCV imgproc/src/stackblur.cpp, float32) ported pass for pass, edges included:
// rows (the direct branch for kernels up to 9, else the running-difference one), then columns
// (the running stack, in place). Sums in float64 here, float32 there: they differ by ~1e-7.
function stackBlurRows(src, dst, w, h, r) {
  const k = 2 * r + 1, wm = w - 1, mul = f32(1 / ((r + 1) * (r + 1)));
  if (k <= 9 && w > k) {
    const kv = []; for (let i = 0; i < k; i++) kv.push(i <= r ? i + 1 : 2 * r - i + 1);
    for (let y = 0; y < h; y++) {
      const o = y * w;
      for (let i = 0; i < r; i++) {
        let s = 0; for (let q = 0; q < k; q++) s += src[o + Math.max(q - r + i, 0)] * kv[q];
        dst[o + i] = s * mul;
      }
      let wc = r;
      for (; wc < w - r; wc++) {
        let s = src[o + wc] * kv[r];
        for (let q = 1; q <= r; q++) s += (src[o + wc + q] + src[o + wc - q]) * kv[r + q];
        dst[o + wc] = s * mul;
      }
      for (let i = wc; i < w; i++) {
        let s = 0; for (let q = 0; q < k; q++) s += src[o + Math.min(q - r + i, wm)] * kv[q];
        dst[o + i] = s * mul;
      }
    }
    return;
  }
  const diff = new Float64Array(w + k), r1 = r + 1, widthCN = w - r - 1, radiusMul = ((r + 2) * (r + 1)) / 2;
  for (let y = 0; y < h; y++) {
    const o = y * w;
    diff.fill(0);
    let diffVal = 0, sum = src[o] * radiusMul, p0 = 0;
    for (let i = 0; i < r; i++) {
      if (i < wm) p0++;
      diff[i] = src[o + p0] - src[o];
      diffVal += diff[i];
      sum += src[o + p0] * (r - i);
    }
    let d0 = r, index = 0;
    for (; index < widthCN; index++, d0++) diff[d0] = src[o + index + r1] - src[o + index];
    p0 = index;
    let dist = w - index;
    for (let q = 0; q < r; q++, d0++) {
      diff[d0] = src[o + w - 1] - src[o + p0];
      if (dist >= q) { p0++; dist--; }
    }
    d0 = r;
    diffVal += diff[d0++];
    for (let i = 0; i < w; i++, d0++) {
      dst[o + i] = sum * mul;
      sum += diffVal;
      diffVal += diff[d0] - diff[d0 - r1];
    }
  }
}

function stackBlurColumns(a, w, h, r) {
  const k = 2 * r + 1, hm = h - 1, mul = f32(1 / ((r + 1) * (r + 1)));
  const sum = new Float64Array(w), sumIn = new Float64Array(w), sumOut = new Float64Array(w);
  const stack = new Float64Array(k * w);
  for (let i = 0; i <= r; i++) for (let x = 0; x < w; x++) { const v = a[x]; stack[i * w + x] = v; sum[x] += v * (i + 1); sumOut[x] += v; }
  let p = 0;
  for (let i = 1; i <= r; i++) {
    if (i <= hm) p++;
    for (let x = 0; x < w; x++) { const v = a[p * w + x]; stack[(i + r) * w + x] = v; sum[x] += v * (r - i + 1); sumIn[x] += v; }
  }
  let sp = r, yp = Math.min(r, hm);
  for (let i = 0; i < h; i++) {
    let ss = sp + k - r; if (ss >= k) ss -= k;
    let sp1 = sp + 1; if (sp1 >= k) sp1 = 0;
    if (yp < hm) yp++;
    for (let x = 0; x < w; x++) {
      a[i * w + x] = sum[x] * mul;
      sum[x] -= sumOut[x];
      sumOut[x] -= stack[ss * w + x];
      const v = a[yp * w + x];  // in place, as OpenCV does
      stack[ss * w + x] = v;
      sumIn[x] += v;
      sum[x] += sumIn[x];
      sumOut[x] += stack[sp1 * w + x];
      sumIn[x] -= stack[sp1 * w + x];
    }
    if (++sp >= k) sp = 0;
  }
}

export function stackBlur(src, w, h, ksize) {
  // OpenCV narrows the kernel to the image: radius at most (size - 1) / 2 on each axis
  const r = (ksize - 1) >> 1, out = new Float32Array(w * h);
  const rx = Math.min(r, (w - 1) >> 1), ry = Math.min(r, (h - 1) >> 1);
  if (rx > 0) stackBlurRows(src, out, w, h, rx); else out.set(src);
  if (ry > 0) stackBlurColumns(out, w, h, ry);
  return out;
}

// apply_stroke on the painted map m = clip(base + correction): the box it changed, or null
export function paintStroke(map, base, W, H, stroke, lo = -1, hi = 1) {
  const sw = strokeWeight(stroke, W, H);
  if (!sw) return null;
  const { box: [y0, y1, x0, x1], w } = sw, bw = x1 - x0;
  const mode = stroke.mode;
  let blurred = null, pad = 0, px0 = 0, py0 = 0, pw = 0;
  if (mode === "smooth") {
    pad = Math.ceil(stroke.radius) + 1;
    py0 = Math.max(0, y0 - pad); const py1 = Math.min(H, y1 + pad);
    px0 = Math.max(0, x0 - pad); const px1 = Math.min(W, x1 + pad);
    pw = px1 - px0;
    const big = new Float32Array(pw * (py1 - py0));
    for (let y = py0; y < py1; y++) big.set(map.subarray(y * W + px0, y * W + px1), (y - py0) * pw);
    blurred = stackBlur(big, pw, py1 - py0, 2 * Math.max(1, roundHalfEven(stroke.radius)) + 1);
  }
  const target = Math.min(Math.max(stroke.value, lo), hi), value = stroke.value;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, o = (y - y0) * bw; x < x1; x++, o++) {
      const wt = w[o];
      if (!(wt > 0)) continue;
      const i = y * W + x, m = map[i];
      let n;
      if (mode === "restore") { const b = base[i]; n = b + f32((m - b) * (1 - wt)); }
      else {
        if (mode === "add") n = m + value * wt;
        else if (mode === "set") n = m + wt * (target - m);
        else n = m + wt * (blurred[(y - py0) * pw + (x - px0)] - m);
        n = n < lo ? lo : n > hi ? hi : n;
      }
      map[i] = n < lo ? lo : n > hi ? hi : n;
    }
  }
  return [y0, y1, x0, x1];
}
