// Draw-a-digit page: pointer events on a canvas, throttled POST /predict of the canvas as PNG,
// a bar chart of the probabilities and the 28x28 image the model received.
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

  let drawing = false, drawn = false, last = null;
  let inFlight = false, pending = false, lastSent = 0, timer = null, generation = 0;

  // --- chart -------------------------------------------------------------------------------
  const bars = [];
  function buildBars(names) {
    barsEl.textContent = "";
    bars.length = 0;
    names.forEach((name, i) => {
      const label = document.createElement("span");
      label.className = "bar-label";
      label.textContent = name;
      const track = document.createElement("div");
      track.className = "bar-track";
      track.setAttribute("role", "listitem");
      const fill = document.createElement("div");
      fill.className = "bar-fill";
      fill.dataset.index = String(i);
      fill.dataset.label = name;
      fill.dataset.p = "0";
      track.appendChild(fill);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = "";
      barsEl.append(label, track, value);
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
  }

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
    if (!drawn) return;
    inFlight = true;
    pending = false;
    lastSent = Date.now();
    const mine = generation;
    if (statusEl.dataset.state !== "ok") setState("pending", digitEl.textContent, "reading…");
    pad.toBlob((blob) => {
      const form = new FormData();
      form.append("file", blob, "canvas.png");
      fetch("/predict?top_k=3", { method: "POST", body: form })
        .then((r) => r.json().then((body) => ({ ok: r.ok, status: r.status, body })))
        .then(({ ok, status, body }) => {
          if (mine !== generation) return;  // cleared meanwhile
          if (ok) {
            const top = body.top_k[0];
            setState("ok", body.label, `${(100 * top.probability).toFixed(1)}% sure · ${body.model}`);
            showProbabilities(body.probabilities, body.digit);
            seenEl.src = body.input_png;
            seenEl.hidden = false;
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

  fetch("/health").then((r) => r.json()).then((h) => {
    document.getElementById("model").textContent = `model: ${h.model} (${h.backend})`;
    if (Array.isArray(h.class_names) && h.class_names.length !== bars.length) buildBars(h.class_names);
  }).catch(() => {});

  resetCanvas();
  showBlank();
})();
