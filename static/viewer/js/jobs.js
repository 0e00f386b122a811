// Actions that may run as background jobs (export, anonymise): a progress row per job, fed by
// the /ws/processing/ WebSocket when the server offers it and by polling /jobs/<id>/ always.
import { csrfToken, el, getJSON } from "./http.js";

const POLL_MS = 1500;
let socket = null;
const listeners = new Map();

function openSocket() {
  if (socket || !("WebSocket" in window)) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  try {
    socket = new WebSocket(`${scheme}://${location.host}/ws/processing/`);
  } catch {
    return;
  }
  socket.addEventListener("message", (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch { return; }
    if (data.type === "job.progress" && listeners.has(data.job_id)) listeners.get(data.job_id)(data);
  });
  socket.addEventListener("close", () => { socket = null; });
}

export function jobsBox() {
  let box = document.getElementById("jobs");
  if (!box) {
    box = el("div", { id: "jobs", class: "jobs", "aria-live": "polite" });
    document.body.append(box);
  }
  return box;
}

function row(title) {
  const bar = el("progress", { max: "100", value: "0" });
  const status = el("span", { class: "job-status", text: "starting…" });
  const close = el("button", { class: "job-close", title: "Dismiss", "aria-label": "Dismiss" }, "×");
  const node = el("div", { class: "job" }, el("strong", { text: title }), bar, status, close);
  close.addEventListener("click", () => node.remove());
  jobsBox().append(node);
  return { node, bar, status };
}

function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// POST a JSON body; a ZIP answer downloads at once, a 202 job is followed to its result (or,
// with no filename, to its end: jobs without a result file, such as a series analysis).
export async function runAction({ title, url, body, filename }) {
  const ui = row(title);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
  } catch (error) {
    ui.status.textContent = `failed: ${error.message}`;
    ui.node.classList.add("failed");
    return null;
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.ok && !type.includes("json")) {
    ui.bar.value = 100;
    const blob = await response.blob();
    saveBlob(blob, filename);
    ui.status.textContent = `done: ${filename} (${(blob.size / 1024).toFixed(0)} KB)`;
    ui.node.classList.add("done");
    return { status: "completed", size: blob.size };
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    ui.status.textContent = `failed: ${data.error || `HTTP ${response.status}`}`;
    ui.node.classList.add("failed");
    return null;
  }
  return follow(data, ui, filename);
}

function follow(job, ui, filename) {
  openSocket();
  return new Promise((resolve) => {
    let finished = false;
    const show = (j) => {
      if (finished) return;
      ui.bar.value = Number(j.percentage || 0);
      ui.status.textContent = `${j.status} ${j.processed ?? 0}/${j.total ?? "?"}`;
      if (j.status === "completed" || j.status === "failed") {
        finished = true;
        listeners.delete(job.job_id);
        clearInterval(timer);
        ui.node.classList.add(j.status === "completed" ? "done" : "failed");
        if (j.status === "completed" && !filename) {
          ui.status.textContent = `completed ${j.processed ?? 0}/${j.total ?? "?"}${j.message ? ` · ${j.message}` : ""}`;
        } else if (j.status === "completed") {
          const href = j.result_url || job.result_url || `/jobs/${job.job_id}/result/`;
          ui.status.replaceChildren(el("a", { href, download: filename, text: `Download ${filename}` }));
        }
        resolve(j);
      }
    };
    listeners.set(job.job_id, show);
    const timer = setInterval(() => getJSON(`/jobs/${job.job_id}/`).then(show).catch(() => {}), POLL_MS);
    show(job);
  });
}
