// Draw-a-digit page: pointer events on a canvas, throttled POST /explain (or /predict for a model
// without the torch backend) of the canvas as PNG, a bar chart of the probabilities, the 28x28 image
// the model received with its saliency map, and every layer's activations. The layer view is built
// from the JSON (names, kinds, shapes), not from any one architecture.
(function () {
  "use strict";
  const THROTTLE_MS = 150;   // at most one request per 150 ms while drawing, never two in flight
  const LINE_WIDTH = 20;     // thick strokes, like MNIST's pen relative to the 280 px field

  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const digitEl = document.getElementById("digit");
  const statusEl = document.getElementById("status");
  const barsEl = document.getElementById("bars");
  const seenEl = document.getElementById("input28");
  const salEl = document.getElementById("saliency");
  const layersEl = document.getElementById("layers");
  const noteEl = document.getElementById("inside-note");
  const picker = document.getElementById("picker");
  const zoomEl = document.getElementById("zoom");
  const zoomCanvas = document.getElementById("zoom-canvas");
  const zoomCaption = document.getElementById("zoom-caption");

  let drawing = false, drawn = false, last = null;
  let inFlight = false, pending = false, lastSent = 0, timer = null, generation = 0;
  let models = [], current = null;  // GET /models, and the picked entry
  const NOTE = noteEl.textContent;

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // --- chart -------------------------------------------------------------------------------
  const bars = [];
  function buildBars(names) {
    barsEl.textContent = "";
    bars.length = 0;
    names.forEach((name, i) => {
      const track = el("div", "bar-track");
      track.setAttribute("role", "listitem");
      const fill = el("div", "bar-fill");
      fill.dataset.index = String(i);
      fill.dataset.label = name;
      fill.dataset.p = "0";
      track.appendChild(fill);
      const value = el("span", "bar-value", "");
      barsEl.append(el("span", "bar-label", name), track, value);
      bars.push({ fill, value });
    });
  }
  buildBars(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);

  function showProbabilities(probs, best) {
    probs.forEach((p, i) => {
      if (!bars[i]) return;
      bars[i].fill.style.width = (100 * p).toFixed(1) + "%";
      bars[i].fill.dataset.p = p.toFixed(6);
      bars[i].fill.classList.toggle("best", i === best);
      bars[i].value.textContent = (100 * p).toFixed(1) + "%";
    });
  }

  function setState(state, digit, message) {
    digitEl.dataset.state = state;
    statusEl.dataset.state = state;
    digitEl.textContent = digit;
    statusEl.textContent = message;
  }

  function showBlank() {
    generation++;  // responses to earlier requests are now stale
    setState("blank", "?", "draw a digit");
    showProbabilities(bars.map(() => 0), -1);
    seenEl.hidden = true;
    salEl.hidden = true;
    salEl.dataset.state = "none";
    layersEl.classList.add("stale");
  }

  // --- layers ------------------------------------------------------------------------------
  // Grey levels of a [H][W] array on a canvas, scaled from [lo, hi] to black..white.
  function paintMap(canvas, rows, lo, hi) {
    const h = rows.length, w = rows[0].length;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const c = canvas.getContext("2d");
    const img = c.createImageData(w, h);
    const span = hi > lo ? 255 / (hi - lo) : 0;
    let mn = Infinity, mx = -Infinity;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = rows[y][x];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        const g = span ? Math.round((v - lo) * span) : 0;
        const k = 4 * (y * w + x);
        img.data[k] = img.data[k + 1] = img.data[k + 2] = g;
        img.data[k + 3] = 255;
      }
    }
    c.putImageData(img, 0, 0);
    canvas.dataset.min = mn.toFixed(3);
    canvas.dataset.max = mx.toFixed(3);
  }

  // Vertical bars of a vector on a canvas: positive up from the middle line, negative down.
  function paintBars(canvas, values, lo, hi) {
    const n = values.length, per = n > 60 ? 3 : n > 20 ? 5 : 14;
    const w = Math.max(n * per, 40), h = 48;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const c = canvas.getContext("2d");
    c.clearRect(0, 0, w, h);
    const top = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const mid = lo >= 0 ? h - 1 : h / 2, scale = (lo >= 0 ? h - 2 : h / 2 - 1) / top;
    c.fillStyle = "#c9d6ee";
    c.fillRect(0, Math.round(mid), w, 1);
    values.forEach((v, i) => {
      const len = v * scale;
      c.fillStyle = v >= 0 ? "#2f6fd6" : "#d6652f";
      c.fillRect(i * per + (per > 4 ? 1 : 0), v >= 0 ? mid - len : mid, per > 4 ? per - 2 : per - 1, Math.abs(len));
    });
    canvas.dataset.min = lo.toFixed(3);
    canvas.dataset.max = hi.toFixed(3);
  }

  function shapeText(shape) { return shape.join("×"); }

  // A map of 1×1 pixels (C5 in LeNet-5) says more as bars than as 120 single-pixel images.
  function drawnAsMaps(layer) { return layer.kind === "maps" && layer.shape[1] * layer.shape[2] > 1; }

  let layout = "";  // the names, kinds and shapes the layer view was built for
  let views = [];   // per layer: {box, canvases}

  function zoomable(canvas, label, shape) {
    canvas.classList.add("zoomable");
    canvas.dataset.label = label;
    canvas.dataset.shape = shape;
    canvas.tabIndex = 0;
    canvas.addEventListener("pointerenter", (ev) => { if (ev.pointerType === "mouse") showZoom(canvas); });
    canvas.addEventListener("pointerleave", (ev) => { if (ev.pointerType === "mouse") hideZoom(); });
    canvas.addEventListener("click", () => showZoom(canvas));  // a tap on a touch screen
    canvas.addEventListener("focus", () => showZoom(canvas));  // the keyboard
    canvas.addEventListener("blur", hideZoom);
  }

  function showZoom(canvas) {
    zoomCanvas.width = canvas.width;
    zoomCanvas.height = canvas.height;
    zoomCanvas.getContext("2d").drawImage(canvas, 0, 0);
    zoomCanvas.classList.toggle("wide", canvas.width > 2 * canvas.height);
    zoomCaption.textContent = `${canvas.dataset.label} · ${canvas.dataset.shape} · values ${canvas.dataset.min} … ${canvas.dataset.max}`;
    zoomEl.dataset.for = canvas.dataset.label;
    zoomEl.hidden = false;
    // beside the map when there is room, else below or above it, always on screen
    const r = canvas.getBoundingClientRect(), z = zoomEl.getBoundingClientRect();
    const w = window.innerWidth, h = window.innerHeight, gap = 8;
    let left = r.right + gap, top = r.top;
    if (left + z.width > w - gap) {
      left = Math.max(gap, Math.min(r.left, w - z.width - gap));
      top = r.bottom + gap + z.height <= h ? r.bottom + gap : r.top - z.height - gap;
    }
    zoomEl.style.left = Math.round(left) + "px";
    zoomEl.style.top = Math.round(Math.max(gap, Math.min(top, h - z.height - gap))) + "px";
  }
  function hideZoom() { zoomEl.hidden = true; zoomEl.dataset.for = ""; }
  // a tap anywhere else closes the enlarged map
  document.addEventListener("click", (ev) => { if (!ev.target.classList.contains("zoomable")) hideZoom(); });

  function layerBox(title, detail, name, kind) {
    const box = el("div", "layer");
    box.dataset.name = name;
    box.dataset.kind = kind;
    const head = el("div", "layer-head");
    head.append(el("span", "layer-name", title), el("span", "layer-detail", detail));
    const body = el("div", kind === "vector" ? "layer-body vector" : "layer-body maps");
    box.append(head, body);
    layersEl.appendChild(box);
    return body;
  }

  function buildLayers(body) {
    layersEl.textContent = "";
    views = [];
    if (body.kernels) {
      const k = body.kernels, [o, i] = k.shape;
      const holder = layerBox(`${k.layer} kernels`, `${o}×${i} of ${k.shape[2]}×${k.shape[3]} · the learned weights`,
        `${k.layer} kernels`, "kernels");
      const canvases = [];
      for (let a = 0; a < o; a++) {
        for (let b = 0; b < i; b++) {
          const c = el("canvas", "map kernel");
          zoomable(c, `${k.layer} kernel ${a}` + (i > 1 ? `, input ${b}` : ""), `${k.shape[2]}×${k.shape[3]}`);
          holder.appendChild(c);
          canvases.push(c);
        }
      }
      views.push({ kind: "kernels", canvases });
    }
    body.layers.forEach((layer) => {
      const asMaps = drawnAsMaps(layer);
      const act = layer.activation ? ` → ${layer.activation}` : "";
      const holder = layerBox(layer.name, `${layer.type}${act} · ${shapeText(layer.shape)}`, layer.name,
        asMaps ? "maps" : "vector");
      const canvases = [];
      if (asMaps) {
        const [n, h, w] = layer.shape;
        for (let m = 0; m < n; m++) {
          const c = el("canvas", "map");
          c.classList.add(w >= 20 ? "big" : w >= 8 ? "mid" : "small");
          zoomable(c, `${layer.name} map ${m}`, `${h}×${w}`);
          holder.appendChild(c);
          canvases.push(c);
        }
      } else {
        const c = el("canvas", "vector-bars");
        zoomable(c, `${layer.name} (${layer.shape.reduce((a, b) => a * b, 1)} units)`, shapeText(layer.shape));
        holder.appendChild(c);
        canvases.push(c);
      }
      views.push({ kind: asMaps ? "maps" : "vector", canvases });
    });
    if (body.rbf_distances) {
      const holder = layerBox("RBF distances", "squared distance of F6 to each digit's 7×12 bitmap · smallest wins",
        "RBF distances", "rbf");
      holder.classList.add("rbf");
      const rows = body.class_names.map((name) => {
        const track = el("div", "bar-track");
        const fill = el("div", "bar-fill");
        track.appendChild(fill);
        const value = el("span", "bar-value");
        holder.append(el("span", "bar-label", name), track, value);
        return { fill, value };
      });
      views.push({ kind: "rbf", rows });
    }
  }

  function showLayers(body) {
    const key = JSON.stringify([body.name, body.kernels && body.kernels.shape,
      body.layers.map((l) => [l.name, l.kind, l.shape]), !!body.rbf_distances]);
    if (key !== layout) { buildLayers(body); layout = key; }
    layersEl.classList.remove("stale");
    let v = 0;
    if (body.kernels) {
      const k = body.kernels;
      let j = 0;
      k.values.forEach((out) => out.forEach((rows) => paintMap(views[v].canvases[j++], rows, k.min, k.max)));
      v++;
    }
    body.layers.forEach((layer) => {
      const view = views[v++];
      if (view.kind === "maps") {
        layer.values.forEach((rows, m) => paintMap(view.canvases[m], rows, layer.min, layer.max));
      } else {
        paintBars(view.canvases[0], layer.values.flat(2), layer.min, layer.max);
      }
    });
    if (body.rbf_distances) {
      const d = body.rbf_distances, far = Math.max(...d) || 1;
      views[v].rows.forEach((row, i) => {
        row.fill.style.width = (100 * d[i] / far).toFixed(1) + "%";
        row.fill.classList.toggle("best", i === body.digit);
        row.value.textContent = d[i].toFixed(1);
      });
    }
  }

  // The 28×28 input in grey with the saliency in red on top: alpha = saliency (0..1).
  function showSaliency(input, sal) {
    const c = salEl.getContext("2d");
    const img = c.createImageData(28, 28);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        const k = 4 * (y * 28 + x), g = input[y][x] * 0.55, s = sal[y][x];
        img.data[k] = Math.round(g + (255 - g) * s);
        img.data[k + 1] = Math.round(g * (1 - s));
        img.data[k + 2] = Math.round(g * (1 - s));
        img.data[k + 3] = 255;
      }
    }
    c.putImageData(img, 0, 0);
    salEl.hidden = false;
    salEl.dataset.state = "shown";
  }

  // --- models ------------------------------------------------------------------------------
  function describe(m) {
    const acc = m.test_accuracy == null ? "test acc n/a" : `test acc ${(100 * m.test_accuracy).toFixed(2)}%`;
    return `${m.name} · ${m.model} · ${m.dataset || "dataset ?"} · ${acc}` + (m.explain ? "" : ` · ${m.backend}`);
  }

  function pick(name) {
    current = models.find((m) => m.name === name) || models[0];
    document.getElementById("model").textContent = `model: ${current.name} (${current.model}, ${current.backend})`;
    if (current.class_names.length !== bars.length ||
        current.class_names.some((n, i) => bars[i].fill.dataset.label !== n)) buildBars(current.class_names);
    layersEl.textContent = "";
    layout = "";
    hideZoom();
    noteEl.classList.toggle("warn", !current.explain);
    noteEl.textContent = current.explain ? NOTE : `${current.name} runs on ${current.backend}: the layer view ` +
      "needs the torch backend (serve the checkpoint instead of the ONNX file).";
    if (drawn) schedule(true); else showBlank();
  }

  picker.addEventListener("change", () => pick(picker.value));

  fetch("/models").then((r) => r.json()).then((list) => {
    models = list;
    picker.textContent = "";
    list.forEach((m) => {
      const option = el("option", "", describe(m));
      option.value = m.name;
      picker.appendChild(option);
    });
    pick(list[0].name);
  }).catch(() => setState("error", "!", "server unreachable"));

  // --- canvas ------------------------------------------------------------------------------
  function resetCanvas() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
  }

  function point(ev) {
    const r = pad.getBoundingClientRect();
    return { x: (ev.clientX - r.left) * pad.width / r.width, y: (ev.clientY - r.top) * pad.height / r.height };
  }

  function dot(p) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, LINE_WIDTH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function segment(a, b) {
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  }

  pad.addEventListener("pointerdown", (ev) => {
    if (ev.button !== undefined && ev.button > 0) return;  // left button, pen tip or finger only
    ev.preventDefault();
    pad.setPointerCapture(ev.pointerId);
    drawing = true;
    drawn = true;
    last = point(ev);
    dot(last);
    schedule();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!drawing) return;
    ev.preventDefault();
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of (events.length ? events : [ev])) {
      const p = point(e);
      segment(last, p);
      last = p;
    }
    schedule();
  });
  function endStroke(ev) {
    if (!drawing) return;
    drawing = false;
    last = null;
    if (pad.hasPointerCapture && pad.hasPointerCapture(ev.pointerId)) pad.releasePointerCapture(ev.pointerId);
    schedule(true);
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("contextmenu", (ev) => ev.preventDefault());

  document.getElementById("clear").addEventListener("click", () => {
    resetCanvas();
    drawn = false;
    pending = false;
    clearTimeout(timer);
    timer = null;
    showBlank();
  });

  // --- requests ----------------------------------------------------------------------------
  function schedule(now) {
    if (!drawn) { showBlank(); return; }
    if (inFlight) { pending = true; return; }
    const wait = now ? 0 : Math.max(0, THROTTLE_MS - (Date.now() - lastSent));
    clearTimeout(timer);
    timer = setTimeout(send, wait);
  }

  function send() {
    timer = null;
    if (!drawn || !current) return;
    inFlight = true;
    pending = false;
    lastSent = Date.now();
    const mine = generation, model = current;
    if (statusEl.dataset.state !== "ok") setState("pending", digitEl.textContent, "reading…");
    pad.toBlob((blob) => {
      const form = new FormData();
      form.append("file", blob, "canvas.png");
      const path = model.explain ? "/explain" : "/predict";
      fetch(`${path}?top_k=3&model=${encodeURIComponent(model.name)}`, { method: "POST", body: form })
        .then((r) => r.json().then((body) => ({ ok: r.ok, status: r.status, body })))
        .then(({ ok, status, body }) => {
          if (mine !== generation || model !== current) return;  // cleared or switched meanwhile
          if (ok) {
            const top = body.top_k[0];
            setState("ok", body.label, `${(100 * top.probability).toFixed(1)}% sure · ${body.name}`);
            showProbabilities(body.probabilities, body.digit);
            seenEl.src = body.input_png;
            seenEl.hidden = false;
            if (body.layers) {
              showSaliency(body.input_28x28, body.saliency);
              showLayers(body);
            }
          } else if (body && body.code === "blank_image") {
            showBlank();
          } else {
            setState("error", "!", (body && body.detail) || `error ${status}`);
          }
        })
        .catch((err) => { if (mine === generation) setState("error", "!", "server unreachable: " + err); })
        .finally(() => {
          inFlight = false;
          if (pending) schedule();
        });
    }, "image/png");
  }

  resetCanvas();
  showBlank();
})();
