// Drag-and-drop / file-input upload of DICOM files, folders and ZIPs, in batches, each with
// its own XMLHttpRequest upload progress bar; rejected files are listed with their reason.
import { csrfToken, el } from "./http.js";

const BATCH_FILES = 25;
const BATCH_BYTES = 64 * 1024 * 1024;
const SKIP_NAMES = new Set([".DS_Store", "Thumbs.db", "desktop.ini"]);

export function batchesOf(files) {
  const batches = [];
  let current = [];
  let bytes = 0;
  for (const file of files) {
    if (current.length && (current.length >= BATCH_FILES || bytes + file.size > BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(file);
    bytes += file.size;
  }
  if (current.length) batches.push(current);
  return batches;
}

// Files from a drop: plain files, whole folders (webkitGetAsEntry) and ZIPs alike.
export async function filesFromDrop(dataTransfer) {
  const items = [...(dataTransfer.items || [])];
  const entries = items.map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.some(Boolean)) return [...dataTransfer.files];
  const out = [];
  for (const entry of entries) if (entry) await walkEntry(entry, out);
  return out;
}

async function walkEntry(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    if (!SKIP_NAMES.has(file.name)) {
      Object.defineProperty(file, "relativePath", { value: entry.fullPath.replace(/^\//, "") });
      out.push(file);
    }
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const children = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!children.length) break;
    for (const child of children) await walkEntry(child, out);
  }
}

function sizeText(bytes) {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function uploadBatch(files, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.relativePath || file.webkitRelativePath || file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/viewer/api/upload/");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => resolve({ status: xhr.status, body: xhr.response || {} }));
    xhr.addEventListener("error", () => resolve({ status: 0, body: { error: "Network error" } }));
    xhr.send(form);
  });
}

export class Uploader {
  constructor({ batchesBox, rejectedBox, onDone }) {
    this.batchesBox = batchesBox;
    this.rejectedBox = rejectedBox;
    this.onDone = onDone;
    this.queue = Promise.resolve();
    this.counter = 0;
  }

  add(files) {
    const list = [...files].filter((f) => !SKIP_NAMES.has(f.name));
    if (!list.length) return this.queue;
    for (const batch of batchesOf(list)) {
      const row = this.row(batch);
      this.queue = this.queue.then(() => this.send(batch, row));
    }
    this.queue = this.queue.then(() => this.onDone && this.onDone());
    return this.queue;
  }

  row(batch) {
    this.counter += 1;
    const bar = el("progress", { max: "1", value: "0" });
    const status = el("span", { class: "batch-status muted", text: "waiting" });
    const total = batch.reduce((s, f) => s + f.size, 0);
    const row = el("div", { class: "batch", dataset: { batch: String(this.counter) } },
      el("span", { text: `Batch ${this.counter}: ${batch.length} file(s), ${sizeText(total)}` }),
      bar, status);
    this.batchesBox.prepend(row);
    return { row, bar, status };
  }

  async send(batch, { row, bar, status }) {
    status.textContent = "uploading…";
    const { status: code, body } = await uploadBatch(batch, (fraction) => {
      bar.value = fraction;
      status.textContent = fraction < 1 ? `uploading ${Math.round(fraction * 100)}%` : "storing…";
    });
    bar.value = 1;
    const errors = body.errors || [];
    if (code === 0 || (code >= 400 && !errors.length)) {
      row.classList.add("failed");
      status.textContent = `failed: ${body.error || `HTTP ${code}`}`;
      this.reject(batch.map((f) => ({ filename: f.name, error: body.error || `HTTP ${code}`, code: body.code || "" })));
      return;
    }
    row.classList.add(errors.length && !(body.stored || body.duplicates) ? "failed" : "done");
    status.textContent = `${body.stored || 0} stored, ${body.duplicates || 0} duplicate, ${errors.length} rejected`;
    this.reject(errors);
  }

  reject(errors) {
    if (!errors.length) return;
    const tbody = this.rejectedBox.querySelector("tbody");
    for (const e of errors) {
      tbody.append(el("tr", {}, el("td", { text: e.filename || "" }), el("td", { text: e.error || "" }), el("td", { text: e.code || "" })));
    }
    this.rejectedBox.hidden = false;
    this.rejectedBox.open = true;
    this.rejectedBox.querySelector("#rejected-count").textContent = String(tbody.children.length);
  }
}
