// One viewport: an image-resolution canvas windowed in the browser (CSS-transformed for zoom
// and pan), an overlay canvas for measurements, four corner overlays and a slice scrollbar.
import { el, formatPersonName } from "./http.js";
import { windowFrame, lengthOf, angleOf, roiStats, fmt } from "./imaging.js";

const COLOURS = { line: "#ffd54a", angle: "#7fe0ff", rectangle: "#8cff8c", ellipse: "#ff9be0", text: "#ffd54a" };
const TWO_POINT = new Set(["line", "rectangle", "ellipse"]);

export class Viewport {
  constructor(app, index) {
    this.app = app;
    this.index = index;
    this.stack = [];
    this.pos = 0;
    this.series = null;
    this.frame = null;
    this.userWindow = null;
    this.invert = false;
    this.view = { scale: 1, tx: 0, ty: 0, fitted: true };
    this.drawing = null;
    this.drag = null;
    this.loadToken = 0;
    this.build();
  }

  build() {
    this.root = el("div", { class: "viewport", dataset: { viewport: String(this.index) } });
    this.image = el("canvas", { class: "lb-image", width: "1", height: "1" });
    this.overlay = el("canvas", { class: "lb-overlay" });
    this.corners = Object.fromEntries(["tl", "tr", "bl", "br"].map((c) => [c, el("div", { class: `corner ${c}`, dataset: { corner: c } })]));
    this.status = el("div", { class: "status", text: "Loading…" });
    this.bar = el("input", { class: "slice-bar", type: "range", min: "0", max: "0", value: "0", "aria-label": "Slice", title: "Slice (wheel, ↑/↓)" });
    this.bar.addEventListener("input", () => this.show(Number(this.bar.value)));
    this.root.append(this.image, this.overlay, ...Object.values(this.corners), this.status, this.bar);
    this.bindPointer();
    new ResizeObserver(() => this.resized()).observe(this.root);
  }

  // --- stack and frames ---------------------------------------------------------------------

  setSeries(series) {
    this.series = series;
    this.stack = series.images.flatMap((image) => Array.from({ length: Math.max(1, image.number_of_frames || 1) }, (_, frame) => ({ image, frame })));
    this.userWindow = null;
    this.invert = false;
    this.view.fitted = true;
    this.bar.max = String(Math.max(0, this.stack.length - 1));
    this.bar.hidden = this.stack.length < 2;
    this.show(0);
  }

  get current() { return this.stack[this.pos]; }

  async show(pos) {
    if (!this.stack.length) return;
    this.pos = Math.max(0, Math.min(this.stack.length - 1, pos));
    this.bar.value = String(this.pos);
    const { image, frame } = this.current;
    const token = ++this.loadToken;
    this.updateCorners();
    let data;
    try {
      data = await this.app.cache.frame(image, frame);
    } catch (error) {
      if (token !== this.loadToken) return;
      this.frame = null;
      this.status.textContent = `Cannot display this image: ${error.message}`;
      this.status.hidden = false;
      this.image.hidden = true;
      this.drawOverlay();
      return;
    }
    if (token !== this.loadToken) return;
    this.status.hidden = true;
    this.image.hidden = false;
    this.frame = data;
    this.paint();
    if (this.view.fitted) this.fit();
    else this.applyTransform();
    this.app.annotations.load(image.id).then(() => { if (token === this.loadToken) { this.drawOverlay(); this.app.viewportChanged(this); } });
    this.app.cache.prefetch(this.stack, this.pos);
    this.app.viewportChanged(this);
  }

  step(delta, wrap = false) {
    if (!this.stack.length) return;
    let next = this.pos + delta;
    if (wrap) next = (next + this.stack.length) % this.stack.length;
    if (next !== this.pos) this.show(next);
  }

  // --- pixels -------------------------------------------------------------------------------

  get window() {
    if (!this.frame || this.frame.kind !== "gray") return null;
    return this.userWindow || { center: this.frame.center, width: this.frame.width };
  }

  paint() {
    const f = this.frame;
    if (!f) return;
    if (this.image.width !== f.cols || this.image.height !== f.rows) {
      this.image.width = f.cols;
      this.image.height = f.rows;
      this.image.style.width = `${f.cols}px`;
      this.image.style.height = `${f.rows}px`;
    }
    const ctx = this.image.getContext("2d", { willReadFrequently: true });
    if (f.kind === "gray") {
      const out = ctx.createImageData(f.cols, f.rows);
      windowFrame(f, { ...this.window, fn: f.fn, invert: this.invert }, out);
      ctx.putImageData(out, 0, 0);
    } else {
      ctx.filter = this.invert ? "invert(1)" : "none";
      ctx.drawImage(f.bitmap, 0, 0);
      ctx.filter = "none";
    }
    this.app.analysis?.paintOver(this, ctx);
    this.updateCorners();
  }

  setWindow(center, width) {
    if (!this.frame || this.frame.kind !== "gray") return;
    this.userWindow = { center, width: Math.max(1, width) };
    this.paint();
    this.app.viewportChanged(this);
  }

  defaultWindow() { this.userWindow = null; this.paint(); this.app.viewportChanged(this); }

  toggleInvert() { this.invert = !this.invert; this.paint(); this.app.viewportChanged(this); }

  // --- geometry -----------------------------------------------------------------------------

  fit() {
    const f = this.frame;
    const w = this.root.clientWidth, h = this.root.clientHeight;
    if (!f || !w || !h) return;
    const a = this.aspect;
    const scale = Math.min(w / f.cols, h / (f.rows * a));
    this.view = { scale, tx: (w - f.cols * scale) / 2, ty: (h - f.rows * scale * a) / 2, fitted: true };
    this.applyTransform();
  }

  reset() { this.userWindow = null; this.invert = false; this.paint(); this.fit(); this.app.viewportChanged(this); }

  zoomAt(factor, sx, sy) {
    const v = this.view;
    const scale = Math.min(40, Math.max(0.05, v.scale * factor));
    const k = scale / v.scale;
    this.view = { scale, tx: sx - (sx - v.tx) * k, ty: sy - (sy - v.ty) * k, fitted: false };
    this.applyTransform();
  }

  applyTransform() {
    const { scale, tx, ty } = this.view;
    this.image.style.transform = `translate(${tx}px, ${ty}px) scale(${scale}, ${scale * this.aspect})`;
    this.image.classList.toggle("pixelated", !this.view.fitted && scale >= 8);
    this.drawOverlay();
    this.updateCorners();
  }

  resized() {
    const dpr = window.devicePixelRatio || 1;
    this.overlay.width = Math.round(this.root.clientWidth * dpr);
    this.overlay.height = Math.round(this.root.clientHeight * dpr);
    if (this.view.fitted) this.fit();
    else this.drawOverlay();
  }

  // Rows are drawn taller or shorter than columns when Pixel Spacing is not square, so the
  // anatomy keeps its true proportions (row spacing / column spacing).
  get aspect() {
    const s = this.spacing;
    return s ? s[0] / s[1] : 1;
  }

  toImage(sx, sy) { return [(sx - this.view.tx) / this.view.scale, (sy - this.view.ty) / (this.view.scale * this.aspect)]; }
  toScreen(p) { return [this.view.tx + p[0] * this.view.scale, this.view.ty + p[1] * this.view.scale * this.aspect]; }

  get spacing() {
    const s = this.current && this.current.image.pixel_spacing;
    return s && s[0] > 0 && s[1] > 0 ? s : null;
  }

  // --- pointer ------------------------------------------------------------------------------

  bindPointer() {
    const o = this.overlay;
    o.addEventListener("contextmenu", (e) => e.preventDefault());
    o.addEventListener("pointerdown", (e) => this.pointerDown(e));
    o.addEventListener("pointermove", (e) => this.pointerMove(e));
    o.addEventListener("pointerup", (e) => this.pointerUp(e));
    o.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    o.addEventListener("dblclick", () => this.fit());
  }

  local(e) {
    const r = this.overlay.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  pointerDown(e) {
    this.app.activate(this);
    e.preventDefault();
    this.overlay.setPointerCapture(e.pointerId);
    const [sx, sy] = this.local(e);
    const tool = e.button === 2 ? "wl" : e.button === 1 ? "pan" : this.app.tool;
    if (this.drawing && this.drawing.type === "angle" && this.drawing.points.length === 3) {
      this.drawing.points[2] = this.toImage(sx, sy);
      this.finishDrawing();
      return;
    }
    const handle = e.button === 0 && !this.drawing ? this.handleAt(sx, sy) : null;
    if (handle) {
      this.drag = { tool: "handle", sx, sy, lastX: sx, lastY: sy, handle };
      return;
    }
    this.drag = { tool, sx, sy, lastX: sx, lastY: sy, window: this.window, view: { ...this.view } };
    const type = tool === "length" ? "line" : tool;
    if (TWO_POINT.has(type) || type === "angle") {
      const p = this.toImage(sx, sy);
      this.drawing = { type, points: [p, [...p]] };
    } else if (tool === "text") {
      this.drag = null;
      this.app.textPrompt(this, sx, sy, this.toImage(sx, sy));
    }
  }

  pointerMove(e) {
    const [sx, sy] = this.local(e);
    if (this.drawing && this.drawing.type === "angle" && this.drawing.points.length === 3 && !this.drag) {
      this.drawing.points[2] = this.toImage(sx, sy);
      this.drawOverlay();
      return;
    }
    const d = this.drag;
    if (!d) {
      this.overlay.style.cursor = this.handleAt(sx, sy) ? "move" : "";
      return;
    }
    if (d.tool === "handle") {
      d.handle.item.coordinates[d.handle.index] = this.toImage(sx, sy);
      this.drawOverlay();
      return;
    }
    const dx = sx - d.lastX, dy = sy - d.lastY;
    d.lastX = sx; d.lastY = sy;
    if (d.tool === "wl" && d.window) {
      const range = Math.max(1, (this.frame.max - this.frame.min) || 1);
      const k = Math.max(0.02, range / 1024);
      const w = this.window;
      this.setWindow(w.center + dy * k, w.width + dx * k);
    } else if (d.tool === "pan") {
      this.view = { ...this.view, tx: this.view.tx + dx, ty: this.view.ty + dy, fitted: false };
      this.applyTransform();
    } else if (d.tool === "zoom") {
      this.zoomAt(Math.exp(-dy * 0.01), d.sx, d.sy);
    } else if (this.drawing) {
      this.drawing.points[1] = this.toImage(sx, sy);
      this.drawOverlay();
    }
  }

  pointerUp(e) {
    const d = this.drag;
    this.drag = null;
    if (d && d.tool === "handle") { this.finishHandle(d); return; }
    if (!d || !this.drawing) return;
    const [sx, sy] = this.local(e);
    const moved = Math.hypot(sx - d.sx, sy - d.sy) > 3;
    if (!moved) { this.drawing = null; this.drawOverlay(); return; }
    this.drawing.points[1] = this.toImage(sx, sy);
    if (this.drawing.type === "angle") {
      this.drawing.points.push([...this.drawing.points[1]]);
      this.drawOverlay();
      return;
    }
    this.finishDrawing();
  }

  // The end point (or ROI corner) of a saved measurement under the pointer, if any: dragging
  // it edits the measurement (PATCH), whatever tool is active.
  handleAt(sx, sy) {
    if (!this.current || !this.frame) return null;
    const { image, frame } = this.current;
    for (const item of this.app.annotations.forImage(image.id).measurements) {
      if (item.frame !== frame || !item.id) continue;
      const index = item.coordinates.findIndex((p) => {
        const [px, py] = this.toScreen(p);
        return Math.hypot(px - sx, py - sy) <= 6;
      });
      if (index >= 0) return { item, index, before: item.coordinates.map((p) => [...p]) };
    }
    return null;
  }

  finishHandle(d) {
    const { item, before } = d.handle;
    const moved = item.coordinates.some((p, i) => Math.hypot(p[0] - before[i][0], p[1] - before[i][1]) > 0.01);
    if (!moved) return;
    item.coordinates = item.coordinates.map((p) => p.map((v) => Math.round(v * 100) / 100));
    const { value, unit } = this.measure(item.measurement_type, item.coordinates);
    item.value = Math.round(value * 1000) / 1000;
    item.unit = unit;
    this.app.annotations.updateMeasurement(item, before).then(() => { this.drawOverlay(); this.app.viewportChanged(this); });
  }

  cancelDrawing() { this.drawing = null; this.drag = null; this.drawOverlay(); }

  finishDrawing() {
    const shape = this.drawing;
    this.drawing = null;
    const { value, unit } = this.measure(shape.type, shape.points);
    const { image, frame } = this.current;
    this.app.annotations.saveMeasurement({
      image_id: image.id, frame, measurement_type: shape.type,
      coordinates: shape.points.map((p) => p.map((v) => Math.round(v * 100) / 100)),
      value: Math.round(value * 1000) / 1000, unit,
    }).then(() => { this.drawOverlay(); this.app.viewportChanged(this); });
    this.drawOverlay();
  }

  measure(type, points) {
    if (type === "line") return lengthOf(points[0], points[1], this.spacing);
    if (type === "angle") return angleOf(points[0], points[1], points[2], this.spacing);
    const stats = roiStats(null, type, points[0], points[1], this.spacing);
    return { value: stats.area, unit: stats.areaUnit };
  }

  wheel(e) {
    e.preventDefault();
    if (e.ctrlKey) {
      const [sx, sy] = this.local(e);
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), sx, sy);
    } else {
      this.step(e.deltaY > 0 ? 1 : -1);
    }
  }

  // --- overlay --------------------------------------------------------------------------------

  labelFor(m) {
    const unitLabel = this.current.image.modality === "CT" ? " HU" : "";
    if (m.measurement_type === "line") {
      const r = lengthOf(m.coordinates[0], m.coordinates[1], this.spacing);
      return r.unit === "mm" ? `${fmt(r.value, 2)} mm` : `${fmt(r.value, 1)} px (no pixel spacing)`;
    }
    if (m.measurement_type === "angle") return `${fmt(angleOf(...m.coordinates, this.spacing).value, 1)}°`;
    if (m.measurement_type === "rectangle" || m.measurement_type === "ellipse") {
      const frame = this.frame && this.frame.kind === "gray" ? this.frame : null;
      const s = roiStats(frame, m.measurement_type, m.coordinates[0], m.coordinates[1], this.spacing);
      const area = `Area ${fmt(s.area, 1)} ${s.areaUnit}`;
      if (!s.count) return area;
      return `Mean ${fmt(s.mean)}${unitLabel}  SD ${fmt(s.sd)}\nMin ${fmt(s.min)}  Max ${fmt(s.max)}\n${area}`;
    }
    return m.value !== null ? `${fmt(m.value)} ${m.unit}` : m.measurement_type;
  }

  drawOverlay() {
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (!this.current || !this.frame) return;
    const { image, frame } = this.current;
    const items = this.app.annotations.forImage(image.id);
    for (const m of items.measurements) if (m.frame === frame) this.drawShape(ctx, m.measurement_type, m.coordinates, this.labelFor(m));
    for (const a of items.annotations) if (a.frame === frame) this.drawText(ctx, a);
    if (this.drawing) {
      const d = this.drawing;
      const label = d.type === "angle" && d.points.length < 3 ? "" : this.labelFor({ measurement_type: d.type, coordinates: d.points, value: null });
      this.drawShape(ctx, d.type, d.points, label);
    }
    this.app.analysis?.drawOverlay(this, ctx);
  }

  drawShape(ctx, type, points, label) {
    const pts = points.map((p) => this.toScreen(p));
    ctx.strokeStyle = COLOURS[type] || "#ffd54a";
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    if (type === "line" || type === "angle") {
      ctx.moveTo(...pts[0]);
      for (const p of pts.slice(1)) ctx.lineTo(...p);
    } else if (type === "rectangle") {
      ctx.rect(pts[0][0], pts[0][1], pts[1][0] - pts[0][0], pts[1][1] - pts[0][1]);
    } else if (type === "ellipse") {
      const cx = (pts[0][0] + pts[1][0]) / 2, cy = (pts[0][1] + pts[1][1]) / 2;
      ctx.ellipse(cx, cy, Math.abs(pts[1][0] - pts[0][0]) / 2, Math.abs(pts[1][1] - pts[0][1]) / 2, 0, 0, 2 * Math.PI);
    }
    ctx.stroke();
    for (const p of type === "line" || type === "angle" ? pts : []) {
      ctx.beginPath(); ctx.arc(p[0], p[1], 2.5, 0, 2 * Math.PI); ctx.fill();
    }
    if (!label) return;
    const anchor = type === "angle" ? pts[1] : [Math.max(pts[0][0], pts[1][0]), Math.max(pts[0][1], pts[1][1])];
    this.label(ctx, label, anchor[0] + 8, anchor[1] + 4);
  }

  label(ctx, text, x, y) {
    const size = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * 0.9);
    ctx.font = `${size}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    ctx.shadowColor = "#000"; ctx.shadowBlur = 3;
    const lines = text.split("\n");
    const width = Math.max(...lines.map((line) => ctx.measureText(line).width));
    const height = lines.length * (size + 3);
    const w = this.root.clientWidth, h = this.root.clientHeight;
    // Keep the label inside the viewport: flip it to the left/above when it would overflow.
    if (x + width > w - 4) x = Math.max(4, x - width - 16);
    if (y + height > h - 4) y = Math.max(4, h - height - 4);
    lines.forEach((line, i) => ctx.fillText(line, x, y + i * (size + 3)));
    ctx.shadowBlur = 0;
  }

  drawText(ctx, a) {
    const [x, y] = this.toScreen([a.x, a.y]);
    ctx.fillStyle = COLOURS.text;
    ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill();
    this.label(ctx, a.text, x + 7, y - 7);
  }

  // --- corner text --------------------------------------------------------------------------

  updateCorners() {
    const study = this.app.study || {};
    const cur = this.current;
    const c = this.corners;
    c.tl.textContent = [formatPersonName(study.patient_name) || "(no name)", `ID: ${study.patient_id || "–"}`].join("\n");
    if (!cur) return;
    const { image, frame } = cur;
    c.tr.textContent = [study.study_description || "", study.study_date || "", `Se ${image.series_number ?? "–"}: ${image.series_description || image.modality || ""}`].join("\n");
    const frames = Math.max(1, image.number_of_frames || 1);
    const imgs = this.series ? this.series.images.length : 1;
    const imgPos = this.series ? this.series.images.indexOf(image) + 1 : 1;
    const lines = [`Im: ${imgPos}/${imgs}`];
    if (frames > 1) lines.push(`Fr: ${frame + 1}/${frames}`);
    lines.push(`Slice ${this.pos + 1}/${this.stack.length}`);
    if (this.frame) lines.push(`${this.frame.cols}×${this.frame.rows}`);
    c.bl.textContent = lines.join("\n");
    const w = this.window;
    const right = [w ? `W: ${fmt(w.width, 0)} L: ${fmt(w.center, 0)}` : "W/L: n/a (colour)", `Zoom: ${fmt(this.view.scale * 100, 0)}%`];
    if (this.invert) right.push("Inverted");
    if (this.app.cine && this.app.cine.viewport === this) right.push(`Cine ${this.app.cine.fps} fps`);
    c.br.textContent = right.join("\n");
  }
}
