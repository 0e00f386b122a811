// Metadata panel: every attribute of the current instance (DICOM JSON), searchable, with
// sequences as expandable <details>.
import { el } from "./http.js";

const MAX_VALUE = 300;

export function tagLabel(hex) { return `(${hex.slice(0, 4)},${hex.slice(4)})`; }

function nameOf(hex, names) {
  if (names[hex]) return names[hex];
  if (parseInt(hex.slice(0, 4), 16) % 2 === 1) return "Private";
  return "Unknown";
}

function valueText(element) {
  if (element.BulkDataURI) return "‹bulk data›";
  if (element.InlineBinary) return `‹binary, ${element.InlineBinary.length} base64 chars›`;
  const values = element.Value || [];
  const text = values.map((v) => (v && typeof v === "object" ? v.Alphabetic || v.Ideographic || JSON.stringify(v) : String(v))).join(" \\ ");
  return text.length > MAX_VALUE ? `${text.slice(0, MAX_VALUE)}…` : text;
}

function row(hex, element, names) {
  return el("div", { class: "tag-row", dataset: { tag: hex } },
    el("span", { class: "tag", text: tagLabel(hex) }),
    el("span", {}, el("span", { class: "name", text: nameOf(hex, names) }), el("span", { class: "vr", text: element.vr || "" }),
      el("span", { class: "value", text: element.vr === "SQ" ? `${(element.Value || []).length} item(s)` : valueText(element) })));
}

function matches(hex, element, names, needle) {
  if (!needle) return true;
  const hay = `${tagLabel(hex)} ${hex} ${nameOf(hex, names)} ${element.vr === "SQ" ? "" : valueText(element)}`.toLowerCase();
  return hay.includes(needle);
}

// Returns a DOM node for the dataset, or null when nothing in it matches the search.
export function renderDataset(dataset, names, needle = "") {
  const box = el("div", { class: "dataset" });
  for (const hex of Object.keys(dataset).sort()) {
    const element = dataset[hex];
    if (element.vr === "SQ") {
      const self = matches(hex, element, names, needle);
      const items = (element.Value || []).map((item, i) => {
        const inner = renderDataset(item, names, self ? "" : needle);
        return inner ? el("details", { open: !!needle }, el("summary", { text: `Item ${i + 1}` }), inner) : null;
      }).filter(Boolean);
      if (!self && !items.length) continue;
      box.append(el("details", { class: "sq", open: !!needle && !self }, el("summary", {}, row(hex, element, names)), ...items));
    } else if (matches(hex, element, names, needle)) {
      box.append(row(hex, element, names));
    }
  }
  return box.children.length ? box : null;
}
