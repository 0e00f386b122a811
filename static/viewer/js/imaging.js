// Pure imaging maths for the viewer: VOI LUT (PS3.3 C.11.2.1.2), presets, measurements.

export const PRESETS = [
  { key: "1", name: "CT brain", center: 40, width: 80 },
  { key: "2", name: "CT lung", center: -600, width: 1500 },
  { key: "3", name: "CT bone", center: 480, width: 2500 },
  { key: "4", name: "CT abdomen", center: 40, width: 400 },
  { key: "5", name: "CT mediastinum", center: 50, width: 350 },
];

// One modality value to a display value 0..255 (not yet rounded), as the server renderer.
export function voi(x, center, width, fn) {
  if (fn === "SIGMOID") return 255 / (1 + Math.exp((-4 * (x - center)) / width));
  let t;
  if (fn === "LINEAR_EXACT") t = (x - center) / width + 0.5;
  else if (width <= 1) return x > center - 0.5 ? 255 : 0;
  else t = (x - (center - 0.5)) / (width - 1) + 0.5;
  return (t < 0 ? 0 : t > 1 ? 1 : t) * 255;
}

// Window a frame of modality values into RGBA ImageData. Integer frames go through a lookup
// table over their value range; float frames are computed per pixel. Uint8ClampedArray
// rounds half to even, like numpy's rint on the server.
export function windowFrame(frame, { center, width, fn, invert }, out) {
  const { values, min, max } = frame;
  const flip = frame.photometric === "MONOCHROME1";
  const data = out.data;
  const gray = (x) => {
    let g = voi(x, center, width, fn);
    if (flip) g = 255 - g;
    return g;
  };
  const n = values.length;
  if (values instanceof Int16Array && max - min < 70000) {
    const lut = new Uint8ClampedArray(max - min + 1);
    for (let v = min; v <= max; v++) lut[v - min] = gray(v);
    if (invert) for (let i = 0; i < lut.length; i++) lut[i] = 255 - lut[i];
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const g = lut[values[i] - min];
      data[j] = g; data[j + 1] = g; data[j + 2] = g; data[j + 3] = 255;
    }
    return out;
  }
  const one = new Uint8ClampedArray(1);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const x = values[i];
    one[0] = Number.isFinite(x) ? gray(x) : 0;
    const g = invert ? 255 - one[0] : one[0];
    data[j] = g; data[j + 1] = g; data[j + 2] = g; data[j + 3] = 255;
  }
  return out;
}

// Pixel Spacing (0028,0030) is [row spacing, column spacing] = [dy, dx] in mm.
export function lengthOf(p1, p2, spacing) {
  const dx = p2[0] - p1[0];
  const dy = p2[1] - p1[1];
  if (!spacing) return { value: Math.hypot(dx, dy), unit: "px" };
  return { value: Math.hypot(dx * spacing[1], dy * spacing[0]), unit: "mm" };
}

export function angleOf(p1, vertex, p3, spacing) {
  const [sy, sx] = spacing || [1, 1];
  const ax = (p1[0] - vertex[0]) * sx, ay = (p1[1] - vertex[1]) * sy;
  const bx = (p3[0] - vertex[0]) * sx, by = (p3[1] - vertex[1]) * sy;
  const la = Math.hypot(ax, ay), lb = Math.hypot(bx, by);
  if (!la || !lb) return { value: 0, unit: "deg" };
  const cos = Math.min(1, Math.max(-1, (ax * bx + ay * by) / (la * lb)));
  return { value: (Math.acos(cos) * 180) / Math.PI, unit: "deg" };
}

// Mean, SD, min, max over the pixels whose centres fall inside a rectangle or ellipse, and
// the shape's area (mm² with Pixel Spacing, else px²).
export function roiStats(frame, type, p1, p2, spacing) {
  const x0 = Math.min(p1[0], p2[0]), x1 = Math.max(p1[0], p2[0]);
  const y0 = Math.min(p1[1], p2[1]), y1 = Math.max(p1[1], p2[1]);
  const [sy, sx] = spacing || [1, 1];
  const w = x1 - x0, h = y1 - y0;
  const area = type === "ellipse" ? (Math.PI * w * h * sx * sy) / 4 : w * h * sx * sy;
  const stats = { area, areaUnit: spacing ? "mm²" : "px²", count: 0 };
  if (!frame || !frame.values) return stats;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, rx = w / 2, ry = h / 2;
  let sum = 0, sum2 = 0, min = Infinity, max = -Infinity, count = 0;
  const iy0 = Math.max(0, Math.floor(y0)), iy1 = Math.min(frame.rows - 1, Math.ceil(y1));
  const ix0 = Math.max(0, Math.floor(x0)), ix1 = Math.min(frame.cols - 1, Math.ceil(x1));
  for (let y = iy0; y <= iy1; y++) {
    const py = y + 0.5;
    if (py < y0 || py > y1) continue;
    for (let x = ix0; x <= ix1; x++) {
      const px = x + 0.5;
      if (px < x0 || px > x1) continue;
      if (type === "ellipse" && rx > 0 && ry > 0) {
        const ex = (px - cx) / rx, ey = (py - cy) / ry;
        if (ex * ex + ey * ey > 1) continue;
      }
      const v = frame.values[y * frame.cols + x];
      sum += v; sum2 += v * v; count += 1;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (!count) return stats;
  const mean = sum / count;
  return { ...stats, count, mean, sd: Math.sqrt(Math.max(0, sum2 / count - mean * mean)), min, max };
}

export function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits);
}
