// The pix2color page: pick or drop a photo, colorize it through POST v1/colorize, compare, download; for a
// server that takes them, colour hints (hints.js) go with the photo. Plain JavaScript modules, no build step,
// nothing loaded from elsewhere.
import { hintCount, hintsField, render as renderHints, resetHints, setUpHints, showHintTools } from "./hints.js";

const $ = (id) => document.getElementById(id);
const RENDER_SIZES = [128, 192, 256, 320, 384, 512, 768, 1024];
let photo = null;        // the File being shown
let resultUrl = null;    // object URL of the colorized image
let beforeUrl = null;    // object URL of the photo as picked
let requestId = 0;       // answers to older requests are dropped
let debounce = null;

function token() {
  return $("token").value || sessionStorage.getItem("pix2color-token") || "";
}

function headers() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

function setStatus(text, state) {
  $("status").textContent = text;
  document.body.dataset.state = state;
}

async function errorText(response) {
  if (response.status === 401) $("token-field").hidden = false;
  try {
    return (await response.json()).detail;
  } catch {
    return `the server answered ${response.status}.`;
  }
}

async function loadModel() {
  const response = await fetch("v1/model", { headers: headers() });
  if (!response.ok) {
    $("model").textContent = await errorText(response);
    return;
  }
  const info = await response.json();
  const metrics = Object.entries(info.metrics || {})
    .filter(([name]) => ["psnr", "colorfulness"].includes(name))
    .map(([name, value]) => `${name} ${value === null ? "–" : value.toFixed(2)}`);
  const hints = info.hints ? ["takes colour hints"] : [];
  $("model").textContent = [
    `${info.encoder}`, `stage ${info.stage}`, `trained at ${info.training_size} px`, ...metrics, ...hints,
  ].join(" · ");
  showHintTools(Boolean(info.hints));
  const select = $("render-size");
  const sizes = new Set([info.render_size, ...RENDER_SIZES.filter((s) => s <= info.max_render_size)]);
  select.replaceChildren(...[...sizes].sort((a, b) => a - b).map((size) => {
    const option = new Option(size === info.render_size ? `${size} (default)` : `${size}`, size);
    option.selected = size === info.render_size;
    return option;
  }));
}

function choose(file) {
  if (!file) return;
  photo = file;
  if (beforeUrl) URL.revokeObjectURL(beforeUrl);
  beforeUrl = URL.createObjectURL(file);
  $("before").src = beforeUrl;
  $("viewer").hidden = true;  // until this photo's result: points go on the photo they belong to
  resetHints(file.name);
  colorize();
}

async function colorize() {
  if (!photo) return;
  const id = ++requestId;
  const started = performance.now();
  setStatus(`Colorizing ${photo.name}…`, "busy");
  const form = new FormData();
  form.append("file", photo);
  const hints = hintsField();
  if (hints) form.append("hints", hints);
  const count = hintCount();
  const query = new URLSearchParams({ saturation: $("saturation").value, render_size: $("render-size").value });
  let response;
  try {
    response = await fetch(`v1/colorize?${query}`, { method: "POST", body: form, headers: headers() });
  } catch (error) {
    if (id === requestId) setStatus(`The server cannot be reached (${error.message}).`, "error");
    return;
  }
  if (id !== requestId) return;
  if (!response.ok) {
    setStatus(await errorText(response), "error");
    return;
  }
  const blob = await response.blob();
  if (id !== requestId) return;
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = URL.createObjectURL(blob);
  const after = $("after");
  after.onload = () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const render = `render size ${response.headers.get("X-Render-Size")}`;
    const points = count ? `, ${count} hint${count === 1 ? "" : "s"}` : "";
    setStatus(`Colorized ${after.naturalWidth}×${after.naturalHeight} in ${seconds} s (${render}${points}).`, "done");
    renderHints();
  };
  after.src = resultUrl;
  $("viewer").hidden = false;
  const download = $("download");
  download.href = resultUrl;
  download.download = `${photo.name.replace(/\.[^.]*$/, "") || "photo"}_color.png`;
  download.setAttribute("aria-disabled", "false");
}

function later() {
  clearTimeout(debounce);
  debounce = setTimeout(colorize, 300);
}

function setUp() {
  $("file").addEventListener("change", (event) => choose(event.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("saturation").addEventListener("input", (event) => {
    $("saturation-value").textContent = Number(event.target.value).toFixed(2);
    later();
  });
  $("render-size").addEventListener("change", colorize);
  $("token").addEventListener("change", (event) => {
    sessionStorage.setItem("pix2color-token", event.target.value);
    loadModel();
    colorize();
  });
  $("split").addEventListener("input", (event) => $("viewer").style.setProperty("--split", `${event.target.value}%`));
  $("before").addEventListener("error", () => $("viewer").classList.toggle("no-before", Boolean(photo)));
  $("before").addEventListener("load", () => $("viewer").classList.remove("no-before"));
  setUpHints({ changed: later, report: (text) => setStatus(text, "error") });
  loadModel();
}

setUp();
