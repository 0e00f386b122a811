// Study list page: search, sort, page through the caller's studies; upload by drop or input.
import { getJSONWithHeaders, el, formatPersonName } from "./http.js";
import { Uploader, filesFromDrop } from "./upload.js";

const state = { page: 1, pageSize: 25, ordering: "-study_date", total: 0 };
const form = document.getElementById("search-form");
const tbody = document.querySelector("#study-table tbody");

function query() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (String(value).trim()) params.set(key, String(value).trim());
  params.set("ordering", state.ordering);
  params.set("page", String(state.page));
  params.set("page_size", String(state.pageSize));
  return params;
}

async function load() {
  let result;
  try {
    result = await getJSONWithHeaders(`/viewer/api/studies/?${query()}`);
  } catch (error) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: "9", class: "empty", text: error.message })));
    return;
  }
  state.total = Number(result.headers.get("X-Total-Count") || result.body.length);
  render(result.body);
}

function render(rows) {
  tbody.replaceChildren(...rows.map(row));
  document.getElementById("empty-state").hidden = rows.length > 0;
  document.getElementById("total-count").textContent = `(${state.total})`;
  const pages = Math.max(1, Math.ceil(state.total / state.pageSize));
  document.getElementById("page-info").textContent = `Page ${state.page} of ${pages}`;
  document.getElementById("prev-page").disabled = state.page <= 1;
  document.getElementById("next-page").disabled = state.page >= pages;
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.classList.toggle("sorted-asc", state.ordering === th.dataset.sort);
    th.classList.toggle("sorted-desc", state.ordering === `-${th.dataset.sort}`);
  }
}

function row(study) {
  const href = `/viewer/studies/${study.id}/`;
  const tr = el("tr", { dataset: { studyId: String(study.id) }, onclick: (e) => { if (e.target.tagName !== "A") location.href = href; } },
    el("td", {}, el("a", { href, text: formatPersonName(study.patient_name) || "(no name)" })),
    el("td", { text: study.patient_id }),
    el("td", { text: study.study_date || "" }),
    el("td", { text: study.study_description }),
    el("td", { text: study.modality }),
    el("td", { text: study.accession_number }),
    el("td", { class: "num", text: study.series_count ?? "" }),
    el("td", { class: "num", text: study.total_images ?? "" }),
    el("td", { text: (study.created_at || "").slice(0, 16).replace("T", " ") }));
  return tr;
}

form.addEventListener("submit", (e) => { e.preventDefault(); state.page = 1; load(); });
form.addEventListener("reset", () => setTimeout(() => { state.page = 1; load(); }));
document.getElementById("prev-page").addEventListener("click", () => { state.page -= 1; load(); });
document.getElementById("next-page").addEventListener("click", () => { state.page += 1; load(); });
document.getElementById("page-size").addEventListener("change", (e) => { state.pageSize = Number(e.target.value); state.page = 1; load(); });
for (const th of document.querySelectorAll("th[data-sort]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.sort;
    state.ordering = state.ordering === `-${key}` ? key : `-${key}`;
    load();
  });
}

const uploader = new Uploader({
  batchesBox: document.getElementById("upload-batches"),
  rejectedBox: document.getElementById("upload-rejected"),
  onDone: load,
});
for (const id of ["file-input", "folder-input"]) {
  const input = document.getElementById(id);
  input.addEventListener("change", () => { uploader.add(input.files); input.value = ""; });
}
const zone = document.getElementById("drop-zone");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); if (type === "drop" || !e.relatedTarget) zone.classList.remove("dragging"); });
}
document.addEventListener("drop", async (e) => uploader.add(await filesFromDrop(e.dataTransfer)));

window.lightboxList = { reload: load, uploader };
load();
