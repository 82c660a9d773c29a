// The page talks to the server through TF Serving's REST API (translate_bytes signature, b64 encoding).
"use strict";

const $ = (id) => document.getElementById(id);
const limits = { maxRequestBytes: 32 * 1024 * 1024, maxPixels: 4096 * 4096 };
let currentFile = null;
let originalUrl = null;
let translatedUrl = null;
let busyTimer = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

async function loadModels() {
  let body;
  try {
    const response = await fetch("/api/models");
    body = await response.json();
  } catch (error) {
    showError("Could not reach the server: " + error);
    return;
  }
  limits.maxRequestBytes = body.max_request_bytes;
  limits.maxPixels = body.max_pixels;
  $("limits").textContent =
    `JPEG, PNG, GIF, BMP or WebP; up to ${megabytes((body.max_request_bytes * 3) / 4)} ` +
    `and ${body.max_pixels.toLocaleString("en")} pixels.`;
  const select = $("model");
  select.replaceChildren();
  const models = body.models.filter((m) => m.signatures.includes("translate_bytes"));
  for (const model of models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} (version ${model.version})`;
    select.append(option);
  }
  if (!models.length) {
    showError("No models are being served yet. Export or import one into the model base path.");
    return;
  }
  select.disabled = false;
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(",") + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function translate() {
  const file = currentFile;
  const model = $("model").value;
  if (!file || $("model").disabled) return;
  clearError();
  // base64 grows the file by 4/3; check here rather than upload something the server refuses.
  if ((file.size * 4) / 3 + 1024 > limits.maxRequestBytes) {
    showError(
      `${file.name} is too large (${megabytes(file.size)}); this server accepts images up to ` +
        `${megabytes((limits.maxRequestBytes * 3) / 4)}.`
    );
    return;
  }
  if (originalUrl) URL.revokeObjectURL(originalUrl);
  originalUrl = URL.createObjectURL(file);
  $("original").src = originalUrl;
  $("original-link").href = originalUrl;
  $("original").onload = () => {
    const image = $("original");
    $("original-size").textContent = `${image.naturalWidth} × ${image.naturalHeight}`;
  };
  showTranslation(null);
  $("empty").hidden = true;
  $("result").hidden = false;
  startBusy(`Translating ${file.name} with ${model}`);
  let response, body;
  try {
    const b64 = await readBase64(file);
    response = await fetch(`/v1/models/${encodeURIComponent(model)}:predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ signature_name: "translate_bytes", instances: [{ b64 }] }),
    });
    body = await response.json().catch(() => ({ error: `the server answered HTTP ${response.status}` }));
  } catch (error) {
    if (currentFile === file && $("model").value === model) {
      stopBusy();
      showError("The request failed: " + error);
    }
    return;
  }
  if (currentFile !== file || $("model").value !== model) return; // a newer request is running
  stopBusy();
  if (!response.ok) {
    showError(`Could not translate ${file.name}: ${body.error || "HTTP " + response.status}`);
    return;
  }
  const stem = file.name.replace(/\.[^.]*$/, "") || "image";
  showTranslation(pngBlob(body.predictions[0].b64), `${stem}-${model}.png`);
  $("status").textContent = `${file.name}, translated with ${model}. Click an image for full size.`;
}

function pngBlob(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/png" });
}

// Shows a translated PNG (a Blob) with its full-resolution download, or nothing for null.
function showTranslation(blob, filename) {
  if (translatedUrl) URL.revokeObjectURL(translatedUrl);
  translatedUrl = blob ? URL.createObjectURL(blob) : null;
  for (const id of ["translated-link", "download"]) {
    $(id).hidden = !blob;
    if (blob) $(id).href = translatedUrl;
    else $(id).removeAttribute("href");
  }
  if (blob) {
    $("translated").src = translatedUrl;
    $("download").download = filename;
  } else {
    $("translated").removeAttribute("src");
  }
}

// A spinner and the seconds elapsed, while a (possibly large) image is being translated.
function startBusy(message) {
  stopBusy();
  const start = Date.now();
  const tick = () => {
    const seconds = Math.floor((Date.now() - start) / 1000);
    $("elapsed").textContent = `${message}… ${seconds} s`;
    $("status").textContent = `${message}… ${seconds} s`;
  };
  tick();
  $("busy").hidden = false;
  busyTimer = setInterval(tick, 1000);
}

function stopBusy() {
  if (busyTimer !== null) clearInterval(busyTimer);
  busyTimer = null;
  $("busy").hidden = true;
}

function pick(files) {
  if (!files || !files.length) return;
  currentFile = files[0];
  translate();
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => pick(event.target.files));
  $("model").addEventListener("change", translate);
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(event.dataTransfer.files);
  });
  loadModels();
});
