// The study view: series thumbnails, 1x1/1x2 viewports, tools, presets, cine, metadata panel,
// measurements saved through /viewer/api/measurements/ and keyboard shortcuts.
import { getJSON, sendJSON, el, ApiError } from "./http.js";
import { PRESETS, roiStats, lengthOf, angleOf, fmt } from "./imaging.js";
import { Viewport } from "./viewport.js";
import { renderDataset } from "./metadata.js";
import { runAction } from "./jobs.js";
import { AnalysisPanel } from "./analysis.js";

const CACHE_LIMIT = 160;
const PREFETCH = 4;
const GRAY = new Set(["MONOCHROME1", "MONOCHROME2"]);

// --- frame cache: fetch each frame once, windowed in the browser ----------------------------

class FrameCache {
  constructor() { this.map = new Map(); }

  frame(image, frame) {
    const key = `${image.id}:${frame}`;
    let hit = this.map.get(key);
    if (hit) { this.map.delete(key); this.map.set(key, hit); return hit; }
    hit = this.load(image, frame);
    hit.catch(() => this.map.delete(key));
    this.map.set(key, hit);
    while (this.map.size > CACHE_LIMIT) this.map.delete(this.map.keys().next().value);
    return hit;
  }

  async load(image, frame) {
    if (GRAY.has(image.photometric_interpretation)) {
      try { return await loadPixels(image, frame); } catch (error) {
        if (!(error instanceof ApiError) || error.status === 404) throw error;
      }
    }
    return loadRendered(image, frame);
  }

  prefetch(stack, pos) {
    for (let d = 1; d <= PREFETCH; d++) {
      for (const p of [pos + d, pos - d]) {
        const item = stack[p];
        if (item) this.frame(item.image, item.frame).catch(() => {});
      }
    }
  }
}

async function loadPixels(image, frame) {
  const response = await fetch(`/viewer/api/images/${image.id}/pixels/?frame=${frame}`, { credentials: "same-origin" });
  if (!response.ok) {
    const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
    throw new ApiError(response.status, body);
  }
  const h = (name) => response.headers.get(name);
  const buffer = await response.arrayBuffer();
  const values = h("X-Dtype") === "int16" ? new Int16Array(buffer) : new Float32Array(buffer);
  return {
    kind: "gray", values, rows: Number(h("X-Rows")), cols: Number(h("X-Columns")),
    center: Number(h("X-Window-Center")), width: Number(h("X-Window-Width")), fn: h("X-Voi-Function") || "LINEAR",
    min: Number(h("X-Min")), max: Number(h("X-Max")), photometric: h("X-Photometric"),
  };
}

async function loadRendered(image, frame) {
  const response = await fetch(`/viewer/api/images/${image.id}/preview/?frame=${frame}`, { credentials: "same-origin" });
  if (!response.ok) {
    const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
    throw new ApiError(response.status, body);
  }
  const bitmap = await createImageBitmap(await response.blob());
  return { kind: "rgb", bitmap, rows: bitmap.height, cols: bitmap.width, min: 0, max: 255 };
}

// --- measurements and annotations -----------------------------------------------------------

class AnnotationStore {
  constructor(app) { this.app = app; this.byImage = new Map(); }

  forImage(id) { return this.byImage.get(id) || { measurements: [], annotations: [] }; }

  load(id) {
    if (this.byImage.has(id)) return Promise.resolve(this.byImage.get(id));
    const entry = { measurements: [], annotations: [] };
    this.byImage.set(id, entry);
    return Promise.all([
      getJSON(`/viewer/api/measurements/?image_id=${id}`),
      getJSON(`/viewer/api/annotations/?image_id=${id}`),
    ]).then(([m, a]) => { entry.measurements = m; entry.annotations = a; return entry; })
      .catch((error) => { this.app.toast(`Could not load measurements: ${error.message}`); return entry; });
  }

  async saveMeasurement(payload) {
    const entry = this.forImage(payload.image_id);
    const pending = { ...payload, id: null };
    entry.measurements.push(pending);
    this.byImage.set(payload.image_id, entry);
    try {
      Object.assign(pending, await sendJSON("POST", "/viewer/api/measurements/save/", payload));
    } catch (error) {
      entry.measurements.splice(entry.measurements.indexOf(pending), 1);
      this.app.toast(`Measurement not saved: ${error.message}`);
    }
    this.app.refreshPanel();
  }

  async updateMeasurement(item, before) {
    try {
      await sendJSON("PATCH", `/viewer/api/measurements/${item.id}/`, { coordinates: item.coordinates, value: item.value, unit: item.unit });
    } catch (error) {
      item.coordinates = before;
      this.app.toast(`Measurement not updated: ${error.message}`);
    }
    this.app.redrawAll();
  }

  async saveAnnotation(payload) {
    const entry = this.forImage(payload.image_id);
    try {
      entry.annotations.push(await sendJSON("POST", "/viewer/api/annotations/save/", payload));
      this.byImage.set(payload.image_id, entry);
    } catch (error) {
      this.app.toast(`Annotation not saved: ${error.message}`);
    }
    this.app.refreshPanel();
  }

  async remove(kind, item) {
    const entry = this.forImage(item.image_id);
    await sendJSON("DELETE", `/viewer/api/${kind}/${item.id}/`);
    entry[kind] = entry[kind].filter((x) => x !== item);
    this.app.redrawAll();
  }
}

// --- the app ------------------------------------------------------------------------------

class StudyApp {
  constructor(root) {
    this.root = root;
    this.studyId = Number(root.dataset.studyId);
    this.cache = new FrameCache();
    this.annotations = new AnnotationStore(this);
    this.analysis = new AnalysisPanel(this);
    this.headers = new Map();
    this.names = null;
    this.viewports = [];
    this.active = null;
    this.tool = "wl";
    this.cine = null;
    this.seriesList = [];
  }

  async start() {
    const data = await getJSON(`/viewer/api/studies/${this.studyId}/images/`);
    this.study = data.study;
    document.title = `${this.study.study_description || "Study"} · Lightbox`;
    this.seriesList = groupSeries(data.images);
    this.renderSeries();
    this.bindToolbar();
    this.analysis.bind();
    this.bindKeys();
    this.setLayout("1x1");
    if (!this.seriesList.length) this.viewports[0].status.textContent = "This study has no images.";
  }

  renderSeries() {
    const list = document.getElementById("series-list");
    list.replaceChildren(...this.seriesList.map((s, i) => {
      const first = s.images[0];
      const frames = s.images.reduce((n, im) => n + Math.max(1, im.number_of_frames || 1), 0);
      const img = el("img", { alt: `Series ${s.number ?? ""}`, loading: "lazy", src: `/viewer/api/images/${first.id}/preview/?size=128` });
      img.addEventListener("error", () => img.replaceWith(el("div", { class: "thumb-fallback", text: "No preview" })));
      return el("li", { class: "series-item", dataset: { seriesIndex: String(i), seriesId: String(s.id) }, title: "Show in the active viewport", onclick: () => this.loadSeries(this.active, i) },
        img,
        el("div", { class: "series-caption" }, el("b", { text: `${s.modality || ""} #${s.number ?? "–"}` }), ` ${s.description || ""}`, el("br"), `${s.images.length} image(s)${frames > s.images.length ? `, ${frames} frames` : ""}`));
    }));
  }

  setLayout(layout) {
    const count = layout === "1x2" ? 2 : 1;
    const box = document.getElementById("viewports");
    box.className = `viewports layout-${layout}`;
    while (this.viewports.length < count) {
      const vp = new Viewport(this, this.viewports.length);
      this.viewports.push(vp);
      box.append(vp.root);
      if (this.seriesList.length) this.loadSeries(vp, Math.min(vp.index, this.seriesList.length - 1));
    }
    while (this.viewports.length > count) {
      const vp = this.viewports.pop();
      if (this.cine && this.cine.viewport === vp) this.stopCine();
      vp.root.remove();
    }
    if (!this.viewports.includes(this.active)) this.activate(this.viewports[0]);
    for (const b of document.querySelectorAll("[data-layout]")) b.classList.toggle("active", b.dataset.layout === layout);
  }

  loadSeries(vp, i) {
    if (!vp || !this.seriesList[i]) return;
    if (this.cine && this.cine.viewport === vp) this.stopCine();
    vp.setSeries(this.seriesList[i]);
    this.activate(vp);
  }

  activate(vp) {
    if (this.active === vp) return;
    this.active = vp;
    for (const v of this.viewports) v.root.classList.toggle("active", v === vp);
    this.viewportChanged(vp);
  }

  viewportChanged(vp) {
    if (vp !== this.active) return;
    for (const item of document.querySelectorAll(".series-item")) {
      item.classList.toggle("active", vp.series && Number(item.dataset.seriesId) === vp.series.id);
    }
    const cur = vp.current;
    if (!cur) return;
    document.getElementById("download").href = `/viewer/api/images/${cur.image.id}/file/`;
    this.refreshPanel();
    this.loadHeader(cur.image);
  }

  redrawAll() { for (const v of this.viewports) v.drawOverlay(); this.refreshPanel(); }

  // --- header, presets, tags ------------------------------------------------------------------

  header(image) {
    if (!this.headers.has(image.id)) {
      const p = getJSON(`/viewer/api/images/${image.id}/`).then((d) => d.header);
      p.catch(() => this.headers.delete(image.id));
      this.headers.set(image.id, p);
    }
    return this.headers.get(image.id);
  }

  async loadHeader(image) {
    if (this.shownHeader === image.id) return;
    this.shownHeader = image.id;
    const [header, names] = await Promise.all([this.header(image), this.dictionary()]);
    if (this.shownHeader !== image.id) return;
    this.currentHeader = header;
    this.renderPresets(header);
    this.renderTags();
  }

  dictionary() {
    if (!this.names) this.names = getJSON("/viewer/api/dictionary/").catch(() => ({}));
    return this.names;
  }

  renderPresets(header) {
    const select = document.getElementById("preset-select");
    const centers = (header["00281050"] || {}).Value || [];
    const widths = (header["00281051"] || {}).Value || [];
    const notes = (header["00281055"] || {}).Value || [];
    const own = centers.map((c, i) => ({ name: `File: ${notes[i] || `window ${i + 1}`}`, center: Number(c), width: Number(widths[i]) }))
      .filter((p) => Number.isFinite(p.center) && p.width > 0);
    this.presets = [...PRESETS, { key: "6", name: "Default (file)", def: true }, ...own];
    select.replaceChildren(el("option", { value: "", text: "Presets…" }),
      ...this.presets.map((p, i) => el("option", { value: String(i), text: p.def ? `${p.name} [6]` : `${p.name} ${p.width}/${p.center}${p.key ? ` [${p.key}]` : ""}` })));
  }

  applyPreset(preset) {
    const vp = this.active;
    if (!vp || !preset) return;
    if (preset.def) vp.defaultWindow();
    else vp.setWindow(preset.center, preset.width);
  }

  async renderTags() {
    const box = document.getElementById("tag-tree");
    if (!this.currentHeader) return;
    const names = await this.dictionary();
    const needle = document.getElementById("tag-search").value.trim().toLowerCase();
    const tree = renderDataset(this.currentHeader, names, needle);
    box.replaceChildren(tree || el("p", { class: "muted", text: "No attribute matches." }));
  }

  // --- side panel: measurements -----------------------------------------------------------------

  refreshPanel() {
    const vp = this.active;
    const list = document.getElementById("measurement-list");
    if (!vp || !vp.current) return;
    const image = vp.current.image;
    const entry = this.annotations.forImage(image.id);
    const items = [
      ...entry.measurements.map((m) => this.measurementItem(vp, m)),
      ...entry.annotations.map((a) => el("li", { dataset: { annotationId: String(a.id) } },
        el("span", {}, el("span", { class: "m-kind", text: "Text " }), el("span", { class: "m-value", text: `“${a.text}”${image.number_of_frames > 1 ? ` (frame ${a.frame + 1})` : ""}` })),
        el("button", { title: "Delete", "aria-label": "Delete annotation", onclick: () => this.annotations.remove("annotations", a) }, "×"))),
    ];
    list.replaceChildren(...items);
    document.getElementById("measurement-empty").hidden = items.length > 0;
    this.analysis.refresh();
  }

  measurementItem(vp, m) {
    const kinds = { line: "Length", angle: "Angle", rectangle: "Rectangle", ellipse: "Ellipse" };
    const text = vp.labelFor(m).replaceAll("  ", " ");
    return el("li", { dataset: { measurementId: String(m.id ?? ""), measurementType: m.measurement_type } },
      el("span", {}, el("span", { class: "m-kind", text: `${kinds[m.measurement_type] || m.measurement_type} ` }),
        el("span", { class: "m-value", text: `${text}${vp.current.image.number_of_frames > 1 ? ` (frame ${m.frame + 1})` : ""}` })),
      el("button", { title: "Delete", "aria-label": "Delete measurement", onclick: () => m.id && this.annotations.remove("measurements", m) }, "×"));
  }

  textPrompt(vp, sx, sy, point) {
    vp.root.querySelector(".text-input")?.remove();
    const input = el("input", { class: "text-input", type: "text", placeholder: "Annotation text, Enter to save", maxlength: "1024" });
    input.style.left = `${sx}px`;
    input.style.top = `${sy}px`;
    let finished = false;
    const done = (save) => {
      if (finished) return;
      finished = true;
      const text = input.value.trim();
      input.remove();
      if (save && text) {
        const { image, frame } = vp.current;
        this.annotations.saveAnnotation({ image_id: image.id, frame, x: Math.round(point[0] * 100) / 100, y: Math.round(point[1] * 100) / 100, text })
          .then(() => vp.drawOverlay());
      }
    };
    input.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") done(true);
      if (e.key === "Escape") done(false);
    });
    input.addEventListener("blur", () => done(false));
    vp.root.append(input);
    setTimeout(() => input.focus());
  }

  // --- cine ---------------------------------------------------------------------------------

  async defaultFps(vp) {
    const cur = vp.current;
    if (cur && cur.image.number_of_frames > 1) {
      const h = await this.header(cur.image).catch(() => ({}));
      const first = (tag) => Number(((h[tag] || {}).Value || [])[0]);
      const frameTime = first("00181063");
      if (frameTime > 0) return Math.round(Math.min(60, 1000 / frameTime));
      for (const tag of ["00180040", "00082144"]) if (first(tag) > 0) return Math.min(60, first(tag));
    }
    return Number(document.getElementById("cine-fps").value) || 10;
  }

  async toggleCine() {
    if (this.cine) { this.stopCine(); return; }
    const vp = this.active;
    if (!vp || vp.stack.length < 2) { this.toast("Nothing to play: one image only."); return; }
    const fpsInput = document.getElementById("cine-fps");
    if (!fpsInput.dataset.touched) fpsInput.value = String(await this.defaultFps(vp));
    this.cine = { viewport: vp, fps: Number(fpsInput.value) || 10, timer: null };
    const tick = () => {
      if (!this.cine) return;
      vp.step(1, true);
      this.cine.timer = setTimeout(tick, 1000 / this.cine.fps);
    };
    this.cine.timer = setTimeout(tick, 1000 / this.cine.fps);
    document.getElementById("cine-toggle").textContent = "❚❚ Pause";
    document.getElementById("cine-toggle").classList.add("active");
    vp.updateCorners();
  }

  stopCine() {
    if (!this.cine) return;
    clearTimeout(this.cine.timer);
    const vp = this.cine.viewport;
    this.cine = null;
    document.getElementById("cine-toggle").textContent = "▶ Play";
    document.getElementById("cine-toggle").classList.remove("active");
    vp.updateCorners();
  }

  // --- toolbar and keys ---------------------------------------------------------------------------

  setTool(tool) {
    this.tool = tool;
    for (const v of this.viewports) v.cancelDrawing();
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
  }

  bindToolbar() {
    for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => this.setTool(b.dataset.tool));
    for (const b of document.querySelectorAll("[data-layout]")) b.addEventListener("click", () => this.setLayout(b.dataset.layout));
    const select = document.getElementById("preset-select");
    select.addEventListener("change", () => { this.applyPreset(this.presets[Number(select.value)]); select.value = ""; });
    document.getElementById("invert").addEventListener("click", () => this.active?.toggleInvert());
    document.getElementById("fit").addEventListener("click", () => this.active?.fit());
    document.getElementById("reset").addEventListener("click", () => this.active?.reset());
    document.getElementById("cine-toggle").addEventListener("click", () => this.toggleCine());
    document.getElementById("cine-fps").addEventListener("change", (e) => {
      e.target.dataset.touched = "1";
      if (this.cine) this.cine.fps = Math.max(1, Math.min(60, Number(e.target.value) || 10));
    });
    document.getElementById("export").addEventListener("click", () => this.exportSeries());
    document.getElementById("anonymize").addEventListener("click", () => this.anonymizeStudy());
    document.getElementById("panel-toggle").addEventListener("click", () => this.togglePanel());
    document.getElementById("help-toggle").addEventListener("click", () => this.toggleHelp());
    document.getElementById("help-close").addEventListener("click", () => this.toggleHelp(false));
    const search = document.getElementById("tag-search");
    search.addEventListener("input", () => this.renderTags());
    search.addEventListener("keydown", (e) => { if (e.key === "Escape") search.blur(); });
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => {
        for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
        for (const body of document.querySelectorAll("[data-tab-body]")) body.hidden = body.dataset.tabBody !== tab.dataset.tab;
      });
    }
  }

  exportSeries() {
    const vp = this.active;
    if (!vp || !vp.series) return null;
    return runAction({
      title: `Export series ${vp.series.number ?? ""}`,
      url: "/viewer/api/export/images/",
      body: { image_ids: vp.series.images.map((im) => im.id), format: "png", include_metadata: true },
      filename: `series-${vp.series.id}-export.zip`,
    });
  }

  anonymizeStudy() {
    return runAction({
      title: "Anonymise study",
      url: `/viewer/api/studies/${this.studyId}/anonymize/`,
      body: { keep_dates: false, keep_uid_structure: true },
      filename: `study-${this.studyId}-anonymised.zip`,
    });
  }

  togglePanel() {
    this.root.classList.toggle("panel-hidden");
  }

  toggleHelp(force) {
    const help = document.getElementById("help-overlay");
    help.hidden = force === undefined ? !help.hidden : !force;
  }

  bindKeys() {
    const tools = { w: "wl", p: "pan", z: "zoom", l: "length", a: "angle", r: "rectangle", e: "ellipse", t: "text" };
    document.addEventListener("keydown", (e) => {
      if (e.target.closest("input, select, textarea") || e.metaKey || e.ctrlKey || e.altKey) return;
      const vp = this.active;
      const key = e.key;
      const lower = key.toLowerCase();
      let handled = true;
      if (key === "?") this.toggleHelp();
      else if (key === "Escape") { this.toggleHelp(false); for (const v of this.viewports) v.cancelDrawing(); }
      else if (key === "ArrowDown" || key === "ArrowRight" || key === "PageDown") vp?.step(key === "PageDown" ? 10 : 1);
      else if (key === "ArrowUp" || key === "ArrowLeft" || key === "PageUp") vp?.step(key === "PageUp" ? -10 : -1);
      else if (key === "Home") vp?.show(0);
      else if (key === "End") vp?.show(vp.stack.length - 1);
      else if (key === " ") this.toggleCine();
      else if (e.shiftKey && (e.code === "Digit1" || e.code === "Digit2")) this.setLayout(e.code === "Digit1" ? "1x1" : "1x2");
      else if (/^[1-6]$/.test(key)) this.applyPreset(this.presets?.[Number(key) - 1]);
      else if (tools[lower] && !e.shiftKey) this.setTool(tools[lower]);
      else if (lower === "i") vp?.toggleInvert();
      else if (lower === "f") vp?.fit();
      else if (key === "0") vp?.reset();
      else if (lower === "m") this.togglePanel();
      else if (lower === "d") document.getElementById("download").click();
      else if (key === "Tab" && this.viewports.length > 1) this.activate(this.viewports[(this.viewports.indexOf(vp) + 1) % this.viewports.length]);
      else handled = false;
      if (handled) e.preventDefault();
    });
  }

  toast(message) {
    let box = document.getElementById("toast");
    if (!box) {
      box = el("div", { id: "toast", class: "toast", role: "status" });
      document.body.append(box);
    }
    box.textContent = message;
    box.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
  }
}

function groupSeries(images) {
  const byId = new Map();
  for (const image of images) {
    if (!byId.has(image.series_id)) {
      byId.set(image.series_id, { id: image.series_id, number: image.series_number, description: image.series_description, modality: image.modality, images: [] });
    }
    byId.get(image.series_id).images.push(image);
  }
  return [...byId.values()];
}

const root = document.getElementById("study-app");
const app = new StudyApp(root);
window.lightbox = app;
window.lightboxImaging = { roiStats, lengthOf, angleOf, fmt };
app.start().catch((error) => {
  document.getElementById("viewports").replaceChildren(el("div", { class: "empty", text: `Could not load the study: ${error.message}` }));
});
