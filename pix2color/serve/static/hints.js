// Colour hints on the page, when the server takes them: points on the photo, each with a colour and a size,
// kept in the photo's own pixels as the API's `hints` field and `pix2color-infer --hints` read them.
// Click the photo to add a point (its colour starts as the colorized photo's there), drag it, delete it.

const $ = (id) => document.getElementById(id);
const DEFAULT_SIZE = 8;      // as pix2color.hint_points.DEFAULT_SIZE
const MAX_SAMPLE = 16;       // a point's starting colour: the mean of at most 16 x 16 samples of its square
const MAX_NEW_SIZE = 1000;   // the size box's bound
const MAX_SIZE = 100000;     // as pix2color.hint_points.MAX_SIZE
let points = [];             // {x, y, color, size}: pixel column and row in the photo, "#rrggbb", side in pixels
let photoFile = "photo";     // the photo's file name, which a hints file of a folder run may name
let saveUrl = null;
let changed = () => {};      // the page colorizes again (debounced) after every change
let report = () => {};       // shows a problem in the page's status line

// ---- what the page reads ------------------------------------------------------------------------------------

export function hintsField() {
  return points.length ? JSON.stringify(points) : null;
}

export function hintCount() {
  return points.length;
}

// ---- set-up -------------------------------------------------------------------------------------------------

export function setUpHints(options) {
  ({ changed, report } = options);
  const marks = $("marks");
  marks.addEventListener("pointerdown", (event) => {
    if (event.target === marks && event.button === 0) add(photoPoint(event));
  });
  $("placing").addEventListener("change", placingMode);
  $("clear-hints").addEventListener("click", () => points.length && replace([]));
  $("load-hints").addEventListener("change", (event) => load(event.target));
}

// Show the hint tools when the server takes hints (GET v1/model: "hints"), else hide them and drop the points.
export function showHintTools(available) {
  $("hint-tools").hidden = !available;
  $("marks").hidden = !available;
  if (!available) points = [];
  placingMode();
  render();
}

// A new photo: no points yet; downloads are named after it.
export function resetHints(fileName) {
  photoFile = fileName;
  points = [];
  render();
}

function placingMode() {
  $("viewer").classList.toggle("placing", !$("hint-tools").hidden && $("placing").checked);
}

// ---- changes ------------------------------------------------------------------------------------------------

function add(where) {
  const size = clamp(Number($("hint-size").value) || DEFAULT_SIZE, 1, MAX_NEW_SIZE);
  points.push({ ...where, color: colorAt(where, size), size });
  render();
  changed();
}

function remove(point) {
  points = points.filter((other) => other !== point);
  render();
  changed();
}

function replace(list) {
  points = list;
  render();
  changed();
}

// ---- photo pixels -------------------------------------------------------------------------------------------

// The photo's pixel (column, row) under the pointer, from the colorized image's displayed size.
function photoPoint(event) {
  const image = $("after");
  const box = image.getBoundingClientRect();
  const x = Math.floor(((event.clientX - box.left) * image.naturalWidth) / box.width);
  const y = Math.floor(((event.clientY - box.top) * image.naturalHeight) / box.height);
  return { x: clamp(x, 0, image.naturalWidth - 1), y: clamp(y, 0, image.naturalHeight - 1) };
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

// The model's current colour at a point: the mean of the last colorized photo over the point's square,
// drawn into a small canvas.
function colorAt(where, size) {
  const image = $("after");
  const side = clamp(Math.round(size), 1, Math.min(image.naturalWidth, image.naturalHeight));
  const left = clamp(Math.round(where.x + 0.5 - side / 2), 0, image.naturalWidth - side);
  const top = clamp(Math.round(where.y + 0.5 - side / 2), 0, image.naturalHeight - side);
  const cells = Math.min(side, MAX_SAMPLE);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = cells;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, left, top, side, side, 0, 0, cells, cells);
  const data = context.getImageData(0, 0, cells, cells).data;
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c++) sums[c] += data[i + c];
  return hex(sums.map((sum) => sum / (cells * cells)));
}

function hex(rgb) {
  return `#${rgb.map((value) => Math.round(clamp(value, 0, 255)).toString(16).padStart(2, "0")).join("")}`;
}

// ---- drawing ------------------------------------------------------------------------------------------------

// Draw the points over the colorized photo (again once a new result has loaded: they are placed by its size).
export function render() {
  const image = $("after");
  $("marks").replaceChildren(...points.map((point, index) => mark(point, index, image)));
  $("hint-list").replaceChildren(...points.map(listItem));
  refreshSave();
}

function mark(point, index, image) {
  const dot = document.createElement("button");
  dot.type = "button";
  dot.className = "mark";
  dot.textContent = `${index + 1}`;
  dot.setAttribute("aria-label", `point ${index + 1}: drag to move, Delete to remove`);
  place(dot, point, image);
  dot.addEventListener("pointerdown", (event) => drag(event, dot, point, image));
  dot.addEventListener("keydown", (event) => {
    if (event.key === "Delete" || event.key === "Backspace") remove(point);
  });
  return dot;
}

function place(dot, point, image) {
  dot.style.left = `${((point.x + 0.5) * 100) / image.naturalWidth}%`;
  dot.style.top = `${((point.y + 0.5) * 100) / image.naturalHeight}%`;
  dot.style.setProperty("--hint", point.color);
}

// Move a point with the pointer; the photo colorizes again once it is let go.
function drag(event, dot, point, image) {
  event.preventDefault();
  dot.setPointerCapture(event.pointerId);
  const start = { x: point.x, y: point.y };
  const move = (moved) => {
    Object.assign(point, photoPoint(moved));
    place(dot, point, image);
  };
  const end = () => {
    dot.removeEventListener("pointermove", move);
    if (point.x !== start.x || point.y !== start.y) {
      render();
      changed();
    }
  };
  dot.addEventListener("pointermove", move);
  dot.addEventListener("pointerup", end, { once: true });
  dot.addEventListener("pointercancel", end, { once: true });
}

function listItem(point, index) {
  const item = document.createElement("li");
  const swatch = document.createElement("input");
  swatch.type = "color";
  swatch.value = point.color;
  swatch.setAttribute("aria-label", `colour of point ${index + 1}`);
  swatch.addEventListener("input", () => {
    point.color = swatch.value;
    $("marks").children[index].style.setProperty("--hint", point.color);
    refreshSave();
    changed();
  });
  const where = document.createElement("span");
  where.textContent = `x ${point.x}, y ${point.y}, ${point.size} px`;
  const del = document.createElement("button");
  del.type = "button";
  del.className = "delete";
  del.textContent = "Delete";
  del.setAttribute("aria-label", `delete point ${index + 1}`);
  del.addEventListener("click", () => remove(point));
  item.append(swatch, where, del);
  return item;
}

// ---- files --------------------------------------------------------------------------------------------------

function refreshSave() {
  if (saveUrl) URL.revokeObjectURL(saveUrl);
  saveUrl = URL.createObjectURL(new Blob([`${JSON.stringify(points, null, 2)}\n`], { type: "application/json" }));
  const save = $("save-hints");
  save.href = saveUrl;
  save.download = `${photoFile.replace(/\.[^.]*$/, "") || "photo"}_hints.json`;
  save.setAttribute("aria-disabled", String(points.length === 0));
}

// Hints from a JSON file: a list, or (as for a folder run of the CLI) an object mapping file names to lists,
// of which this photo's. The server checks every hint when the photo colorizes again.
async function load(input) {
  const file = input.files[0];
  input.value = "";
  if (!file) return;
  try {
    replace(fromJson(JSON.parse(await file.text())));
  } catch (error) {
    report(`${file.name} cannot be loaded as hints: ${error.message}`);
  }
}

function fromJson(data) {
  const list = Array.isArray(data) ? data : Object.entries(data ?? {}).find(([name]) => baseName(name) === photoFile)?.[1];
  if (!Array.isArray(list)) throw new Error(`it holds neither a list of hints nor one for ${photoFile}.`);
  return list.map((item, index) => {
    const color = typeof item?.color === "string" ? item.color.toLowerCase() : labHex(item?.lab);
    if (!Number.isFinite(item?.x) || !Number.isFinite(item?.y) || !/^#[0-9a-f]{6}$/.test(color ?? "")) {
      throw new Error(`hint ${index + 1} needs numbers x and y and a color like "#b03a2e" or a lab [a, b].`);
    }
    const size = item.size ?? DEFAULT_SIZE;
    if (!Number.isFinite(size) || size <= 0 || size > MAX_SIZE) {
      throw new Error(`hint ${index + 1}: size must be a number above 0 and at most ${MAX_SIZE} pixels.`);
    }
    return { x: item.x, y: item.y, color, size };
  });
}

function baseName(path) {
  return path.split(/[\\/]/).pop();
}

// Lab (a, b) at L 50 as the nearest sRGB colour, as pix2color.hint_points reads "lab" (kornia's D65 white).
const WHITE = [0.95047, 1, 1.08883];
const XYZ_TO_RGB = [
  [3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
  [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
  [0.0556466391351772, -0.2040413383665112, 1.0573110696453443],
];

function labHex(lab) {
  if (!Array.isArray(lab) || lab.length !== 2 || !lab.every(Number.isFinite)) return null;
  const fy = (50 + 16) / 116;
  const xyz = [fy + lab[0] / 500, fy, fy - lab[1] / 200]
    .map((f) => (f > 6 / 29 ? f ** 3 : 3 * (6 / 29) ** 2 * (f - 4 / 29)))
    .map((value, axis) => value * WHITE[axis]);
  const linear = XYZ_TO_RGB.map((row) => clamp(row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2], 0, 1));
  return hex(linear.map((c) => 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055)));
}
