// Image analysis in the study view: the "Analyse" menu (anomaly detection, CLAHE enhancement,
// ROI statistics, a whole-series job), results drawn over the viewport and listed in the side
// panel's Analysis tab. Every number comes from /viewer/api/images/<id>/analyze/ or
// /analyses/; nothing is computed here. A visual aid, never a diagnosis.
//
// Coordinates: the server puts the centre of pixel (row r, column c) at (x = c, y = r) and
// gives boxes as [x, y, width, height] in pixels; the viewer's image space has pixel c
// spanning [c, c + 1). A box therefore covers [x, x + width) here, and a viewer ROI point p
// is p - 0.5 on the server.
import { sendJSON, getJSON, el } from "./http.js";
import { fmt } from "./imaging.js";
import { runAction } from "./jobs.js";

export const DISCLAIMER = "Visual aid only — not a diagnosis.";
export const BOX_COLOUR = "#ff5a1f";
const KIND_LABELS = { anomaly_detection: "Anomalies", enhancement: "Enhanced (CLAHE)", roi_measurement: "ROI statistics", prediction: "Prediction" };
const ROI_TYPES = new Set(["rectangle", "ellipse"]);

export class AnalysisPanel {
  constructor(app) {
    this.app = app;
    this.visible = true;
    this.byImage = new Map(); // image id -> { rows: Map(id -> row), shown: {type: id}, enhanced: Map(frame -> {bitmap, id}) }
    this.selectedMeasurement = null;
    this.busy = false;
  }

  entry(imageId) {
    if (!this.byImage.has(imageId)) this.byImage.set(imageId, { rows: new Map(), shown: {}, enhanced: new Map() });
    return this.byImage.get(imageId);
  }

  // --- toolbar, menu, keys --------------------------------------------------------------------

  bind() {
    const button = document.getElementById("analyse");
    const menu = document.getElementById("analysis-menu");
    if (!button || !menu) return;
    const close = () => { menu.hidden = true; button.setAttribute("aria-expanded", "false"); };
    button.addEventListener("click", (e) => {
      e.stopPropagation();
      menu.hidden = !menu.hidden;
      button.setAttribute("aria-expanded", String(!menu.hidden));
    });
    document.addEventListener("click", (e) => { if (!menu.contains(e.target)) close(); });
    for (const item of menu.querySelectorAll("[data-analysis]")) {
      item.addEventListener("click", () => { close(); this.command(item.dataset.analysis); });
    }
    document.getElementById("analysis-toggle").addEventListener("click", () => this.toggle());
    document.addEventListener("keydown", (e) => {
      if (e.target.closest("input, select, textarea") || e.metaKey || e.ctrlKey || e.altKey) return;
      if (e.key.toLowerCase() === "o") { this.toggle(); e.preventDefault(); }
      if (e.key === "Escape") close();
    });
    // A click on a rectangle or ellipse in the measurement list selects it for ROI statistics.
    document.getElementById("measurement-list").addEventListener("click", (e) => {
      const li = e.target.closest("li[data-measurement-type]");
      if (!li || e.target.closest("button") || !ROI_TYPES.has(li.dataset.measurementType)) return;
      this.selectedMeasurement = Number(li.dataset.measurementId) || null;
      this.markSelected();
    });
  }

  command(name) {
    if (name === "anomaly_detection") return this.detect();
    if (name === "enhancement") return this.enhance();
    if (name === "roi_measurement") return this.measureRoi();
    if (name === "series") return this.analyseSeries();
    if (name === "stored") return this.loadStored();
    return null;
  }

  toggle(force) {
    this.visible = force === undefined ? !this.visible : Boolean(force);
    const button = document.getElementById("analysis-toggle");
    button.classList.toggle("active", this.visible);
    button.setAttribute("aria-pressed", String(this.visible));
    for (const vp of this.app.viewports) { vp.paint(); vp.drawOverlay(); }
    this.refresh();
  }

  // --- running analyses -------------------------------------------------------------------------

  get target() {
    const vp = this.app.active;
    if (!vp || !vp.current || !vp.frame) { this.app.toast("Open an image first."); return null; }
    return { vp, image: vp.current.image, frame: vp.current.frame };
  }

  async analyze(target, body) {
    if (this.busy) return null;
    this.busy = true;
    this.status(`${KIND_LABELS[body.analysis_type]}: running…`);
    try {
      return await sendJSON("POST", `/viewer/api/images/${target.image.id}/analyze/`, { frame: target.frame, ...body });
    } catch (error) {
      this.app.toast(`Analysis failed: ${error.message}`);
      return null;
    } finally {
      this.busy = false;
      this.status("");
    }
  }

  async detect() {
    const target = this.target;
    if (!target) return;
    const row = await this.analyze(target, { analysis_type: "anomaly_detection" });
    if (row) this.keep(target.image.id, row, true);
  }

  async enhance() {
    const target = this.target;
    if (!target) return;
    const entry = this.entry(target.image.id);
    if (entry.enhanced.has(target.frame) && this.visible) {
      // Enhance again on an enhanced frame: back to the frame itself.
      entry.enhanced.delete(target.frame);
      this.redraw();
      return;
    }
    const parameters = {};
    const w = target.vp.window;
    if (w) Object.assign(parameters, { window_center: round(w.center), window_width: Math.max(1, round(w.width)) });
    const row = await this.analyze(target, { analysis_type: "enhancement", parameters });
    if (!row) return;
    const picture = new Image();
    picture.src = row.results.enhanced_image;
    await picture.decode();
    delete row.results.enhanced_image;
    entry.enhanced.set(target.frame, { bitmap: picture, id: row.id });
    this.keep(target.image.id, row, true);
  }

  async measureRoi() {
    const target = this.target;
    if (!target) return;
    const shape = this.roiShape(target);
    if (!shape) { this.app.toast("Draw (or select in the Measurements list) a rectangle or ellipse first."); return; }
    const row = await this.analyze(target, { analysis_type: "roi_measurement", roi: shape });
    if (row) this.keep(target.image.id, row, true);
  }

  // The selected rectangle/ellipse of this frame, else the last one drawn, as a server ROI.
  roiShape({ image, frame }) {
    const items = this.app.annotations.forImage(image.id).measurements
      .filter((m) => m.frame === frame && ROI_TYPES.has(m.measurement_type) && m.id);
    const m = items.find((x) => x.id === this.selectedMeasurement) || items[items.length - 1];
    if (!m) return null;
    const [[x0, y0], [x1, y1]] = m.coordinates;
    const left = Math.min(x0, x1), top = Math.min(y0, y1), w = Math.abs(x1 - x0), h = Math.abs(y1 - y0);
    if (w <= 0 || h <= 0) return null;
    if (m.measurement_type === "rectangle") return { type: "rectangle", x: round(left - 0.5), y: round(top - 0.5), width: round(w), height: round(h) };
    return { type: "ellipse", cx: round(left + w / 2 - 0.5), cy: round(top + h / 2 - 0.5), rx: round(w / 2), ry: round(h / 2) };
  }

  async analyseSeries() {
    const vp = this.app.active;
    if (!vp || !vp.series) return null;
    const job = await runAction({
      title: `Analyse series ${vp.series.number ?? ""} (anomalies)`,
      url: `/viewer/api/series/${vp.series.id}/analyze/`,
      body: { analysis_type: "anomaly_detection" },
      filename: null,
    });
    if (job && job.status === "completed" && vp.current) await this.loadStored(vp.current.image);
    return job;
  }

  // Stored results of the image (GET /analyses/): listed, and the newest of each kind shown.
  async loadStored(image) {
    const target = image ? { image } : this.target;
    if (!target) return;
    let data;
    try {
      data = await getJSON(`/viewer/api/images/${target.image.id}/analyses/?limit=50`);
    } catch (error) {
      this.app.toast(`Could not load stored analyses: ${error.message}`);
      return;
    }
    const entry = this.entry(target.image.id);
    for (const row of [...data.analyses].reverse()) this.keep(target.image.id, row, false);
    // The newest stored result of each kind is the one shown (the list is newest first).
    for (const row of [...data.analyses].reverse()) if (row.analysis_type !== "enhancement") entry.shown[row.analysis_type] = row.id;
    if (!data.count) this.app.toast("No stored analysis for this image.");
    this.showTab();
    this.redraw();
  }

  keep(imageId, row, show) {
    const entry = this.entry(imageId);
    entry.rows.set(row.id, row);
    if (show && row.analysis_type !== "enhancement") entry.shown[row.analysis_type] = row.id;
    if (show) { this.toggle(true); this.showTab(); }
    this.redraw();
  }

  redraw() { for (const vp of this.app.viewports) { vp.paint(); vp.drawOverlay(); } this.refresh(); }

  showTab() { document.querySelector('.tab[data-tab="analysis"]')?.click(); }

  status(text) {
    const box = document.getElementById("analysis-status");
    if (box) { box.textContent = text; box.hidden = !text; }
  }

  // --- drawing (hooks called by the Viewport) ----------------------------------------------------

  // After the frame is painted: the enhanced picture in its place, while overlays are shown.
  paintOver(vp, ctx) {
    const cur = vp.current;
    if (!this.visible || !cur) return;
    const shown = this.byImage.get(cur.image.id)?.enhanced.get(cur.frame);
    if (shown && shown.bitmap.width === vp.image.width && shown.bitmap.height === vp.image.height) ctx.drawImage(shown.bitmap, 0, 0);
  }

  shownAnomalies(cur) {
    const entry = this.byImage.get(cur.image.id);
    const row = entry && entry.rows.get(entry.shown.anomaly_detection);
    return row && row.frame === cur.frame ? row : null;
  }

  drawOverlay(vp, ctx) {
    const cur = vp.current;
    const note = this.note(vp);
    const entry = cur && this.byImage.get(cur.image.id);
    const row = cur && this.shownAnomalies(cur);
    const enhanced = entry && entry.enhanced.has(cur.frame);
    note.hidden = !this.visible || !(row || enhanced);
    if (!this.visible || !row) return;
    ctx.save();
    ctx.strokeStyle = BOX_COLOUR;
    ctx.fillStyle = BOX_COLOUR;
    ctx.lineWidth = 2;
    for (const region of row.results.anomaly_regions || []) {
      const [x, y, w, h] = region.bbox;
      const [ax, ay] = vp.toScreen([x, y]);
      const [bx, by] = vp.toScreen([x + w, y + h]);
      ctx.strokeRect(ax, ay, bx - ax, by - ay);
      vp.label(ctx, `#${region.id + 1} ${fmt(region.confidence, 2)}`, ax, Math.max(2, ay - 18));
    }
    ctx.restore();
  }

  note(vp) {
    let node = vp.root.querySelector(".analysis-note");
    if (!node) {
      node = el("div", { class: "analysis-note", role: "note", text: DISCLAIMER });
      node.hidden = true;
      vp.root.append(node);
    }
    return node;
  }

  // --- side panel ---------------------------------------------------------------------------------

  refresh() {
    const list = document.getElementById("analysis-list");
    const vp = this.app.active;
    if (!list || !vp || !vp.current) return;
    const entry = this.byImage.get(vp.current.image.id);
    const rows = entry ? [...entry.rows.values()].reverse() : [];
    list.replaceChildren(...rows.map((row) => this.item(vp, entry, row)));
    document.getElementById("analysis-empty").hidden = rows.length > 0;
    this.markSelected();
  }

  item(vp, entry, row) {
    const multi = vp.current.image.number_of_frames > 1 ? ` · frame ${row.frame + 1}` : "";
    const shown = entry.shown[row.analysis_type] === row.id || [...entry.enhanced.values()].some((e) => e.id === row.id);
    const li = el("li", { class: shown ? "shown" : "", dataset: { analysisId: String(row.id), analysisType: row.analysis_type }, title: "Show this result" },
      el("div", { class: "a-head" }, el("span", { class: "a-kind", text: KIND_LABELS[row.analysis_type] || row.analysis_type }),
        el("span", { class: "muted small", text: `#${row.id}${multi}${shown ? " · shown" : ""}` })),
      el("div", { class: "a-body", text: summary(row, shown) }));
    li.addEventListener("click", () => {
      if (row.analysis_type === "enhancement") return;
      entry.shown[row.analysis_type] = row.id;
      this.toggle(true);
    });
    return li;
  }

  markSelected() {
    for (const li of document.querySelectorAll("#measurement-list li[data-measurement-id]")) {
      li.classList.toggle("roi-selected", Number(li.dataset.measurementId) === this.selectedMeasurement);
    }
  }
}

function summary(row, shown) {
  const r = row.results || {};
  if (row.analysis_type === "anomaly_detection") {
    const regions = r.anomaly_regions || [];
    if (!regions.length) return "No region stands out.";
    const head = `${r.regions_found} region(s), max confidence ${fmt(r.confidence, 2)}`;
    const lines = regions.slice(0, 8).map((g) => `#${g.id + 1} [${g.bbox.join(", ")}] conf ${fmt(g.confidence, 2)} · ${fmt(g.area, 1)} ${g.area_unit || ""}`);
    return [head, ...lines, regions.length > 8 ? `… ${regions.length - 8} more` : ""].filter(Boolean).join("\n");
  }
  if (row.analysis_type === "roi_measurement") {
    const u = r.units === "HU" ? " HU" : "";
    return [`${(r.roi || {}).type || "ROI"}: ${r.pixel_count} px, area ${fmt(r.area, 1)} ${r.area_unit || ""}`,
      `Mean ${fmt(r.mean)}${u}  SD ${fmt(r.std)}`, `Min ${fmt(r.min)}  Max ${fmt(r.max)}  Median ${fmt(r.median)}`].join("\n");
  }
  if (row.analysis_type === "enhancement") {
    const before = r.contrast_before || {}, after = r.contrast_after || {};
    const note = shown ? "shown in place of the frame (Overlays off, or Enhance again, to return)" : "image not stored: run Enhance again to show it";
    return `RMS contrast ${fmt(before.rms, 3)} → ${fmt(after.rms, 3)}\n(${note})`;
  }
  if (row.analysis_type === "prediction") return `${r.label ?? r.prediction} (${fmt(r.confidence, 2)})`;
  return "";
}

function round(v) { return Math.round(v * 100) / 100; }
