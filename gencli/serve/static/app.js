// gencli serve: one sample panel per plugin (its form made from the plugin's SampleOptions, as the flags are),
// and an editing panel for image GANs. Plain DOM code, no framework, nothing fetched from outside this server.
"use strict";

const EXTENSIONS = { image: "png", strokes: "svg", audio: "wav", video: "gif", trajectories: "svg", text: "txt" };

async function errorText(response) {
  try { return (await response.json()).error || response.statusText; } catch (e) { return response.statusText; }
}

function setStatus(element, text, isError) {
  element.textContent = text;
  element.classList.toggle("error", Boolean(isError));
}

function fieldInput(field) {
  const label = document.createElement("label");
  label.title = field.help + (field.bounds ? ` [${field.bounds}]` : "");
  let input;
  if (field.kind === "bool") {
    label.className = "checkbox";
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(field.default);
  } else if (field.kind === "choice") {
    input = document.createElement("select");
    for (const choice of field.choices) {
      const option = document.createElement("option");
      option.value = option.textContent = choice;
      option.selected = choice === field.default;
      input.append(option);
    }
  } else {
    input = document.createElement("input");
    if (field.kind === "int" || field.kind === "float") {
      input.type = "number";
      input.step = field.kind === "int" ? "1" : "any";
      if (field.min !== null && field.min !== undefined) input.min = field.min;
      if (field.max !== null && field.max !== undefined) input.max = field.max;
    }
    input.value = field.default === null || field.default === undefined ? "" : field.default;
  }
  input.name = field.name;
  input.dataset.kind = field.kind;
  const caption = document.createElement("span");
  caption.textContent = field.flag;
  if (field.kind === "bool") label.append(input, caption); else label.append(caption, input);
  return label;
}

function formValues(form, fields) {
  const values = {};
  for (const field of fields) {
    const input = form.elements.namedItem(field.name);  // not elements[name]: "length" is a property of the collection
    if (field.kind === "bool") values[field.name] = input.checked;
    else if (field.kind === "int") { if (input.value !== "") values[field.name] = parseInt(input.value, 10); }
    else if (field.kind === "float") { if (input.value !== "") values[field.name] = parseFloat(input.value); }
    else if (field.kind === "list") { if (input.value.trim()) values[field.name] = input.value.trim().split(/\s*,\s*/); }
    else values[field.name] = input.value;
  }
  return values;
}

function showBlob(container, blob, modality) {
  const url = URL.createObjectURL(blob);
  let element;
  if (modality === "audio") {
    element = document.createElement("audio");
    element.controls = true;
  } else {
    element = document.createElement("img");
    element.alt = "sample";
  }
  element.src = url;
  container.replaceChildren(element);
  return url;
}

async function streamText(container, response) {
  const pre = document.createElement("pre");
  container.replaceChildren(pre);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    pre.textContent = text;
  }
  return new Blob([text], { type: "text/plain" });
}

async function withUpload(values, upload) {
  if (!upload || !upload.files.length) return values;
  const file = upload.files[0];
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { ...values, input: { name: file.name, data: btoa(text) } };
}

function samplePanel(plugin) {
  const panel = document.getElementById("sample-panel").content.firstElementChild.cloneNode(true);
  panel.id = `plugin-${plugin.name}`;
  panel.dataset.plugin = plugin.name;
  panel.querySelector("h2").textContent = `${plugin.name} (${plugin.modality})`;
  panel.querySelector(".summary").textContent = plugin.summary;
  const form = panel.querySelector("form");
  const status = panel.querySelector(".status");
  const button = panel.querySelector(".sample-button");
  let upload = null;
  if (plugin.needs_input) {
    // The image travels as bytes in the request (like `--input -`); the server never takes a path.
    const label = document.createElement("label");
    label.textContent = "--input";
    upload = document.createElement("input");
    upload.type = "file";
    upload.accept = "image/png,image/jpeg";
    upload.name = "input";
    label.append(upload);
    form.append(label);
  }
  for (const field of plugin.form) form.append(fieldInput(field));
  button.addEventListener("click", async () => {
    button.disabled = true;
    setStatus(status, "working…");
    const started = performance.now();
    try {
      const response = await fetch(`/api/sample/${plugin.name}`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(await withUpload(formValues(form, plugin.form), upload)),
      });
      if (!response.ok) { setStatus(status, await errorText(response), true); return; }
      const result = panel.querySelector(".result");
      const blob = plugin.modality === "text" ? await streamText(result, response)
        : await response.blob();
      if (plugin.modality !== "text") showBlob(result, blob, plugin.modality);
      panel.querySelector(".command-line code").textContent =
        decodeURIComponent(response.headers.get("X-Gencli-Command") || "");
      const link = panel.querySelector(".download");
      link.href = URL.createObjectURL(blob);
      link.download = decodeURIComponent(response.headers.get("X-Gencli-Filename") ||
        `${plugin.name}.${EXTENSIONS[plugin.modality]}`);
      panel.classList.add("has-result");
      setStatus(status, `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (failure) {
      setStatus(status, String(failure), true);
    } finally {
      button.disabled = false;
    }
  });
  if (plugin.editable) panel.append(editPanel(plugin, form));
  return panel;
}

// ---- the editing panel ----------------------------------------------------------------------------------

function pngImage(base64, alt) {
  const image = document.createElement("img");
  image.src = `data:image/png;base64,${base64}`;
  image.alt = alt;
  return image;
}

function editPanel(plugin, sampleForm) {
  const panel = document.getElementById("edit-panel").content.firstElementChild.cloneNode(true);
  const canvas = panel.querySelector(".edit-canvas");
  const context = canvas.getContext("2d");
  const status = panel.querySelector(".edit-status");
  const picture = panel.querySelector(".edit-image");
  const state = { latent: null, seed: 0, size: null, history: [], edges: null, busy: false };
  // Edge strokes live on their own hidden canvas; the visible one shows colour and edges together.
  const edges = document.createElement("canvas");
  edges.width = canvas.width; edges.height = canvas.height;
  const edgeContext = edges.getContext("2d");
  const colourLayer = document.createElement("canvas");
  colourLayer.width = canvas.width; colourLayer.height = canvas.height;
  const colourContext = colourLayer.getContext("2d");

  const options = () => {
    const values = formValues(sampleForm, plugin.form);
    delete values.n; delete values.seed;
    return values;
  };
  const mode = () => panel.querySelector("input[name=mode]:checked").value;
  const clearStrokes = () => {
    for (const c of [context, edgeContext, colourContext]) c.clearRect(0, 0, canvas.width, canvas.height);
  };
  const redraw = () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(colourLayer, 0, 0);
    context.globalAlpha = 0.8;
    context.drawImage(edges, 0, 0);
    context.globalAlpha = 1;
  };

  async function call(path, body) {
    const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }

  async function show(latent) {
    const answer = await call(`/api/edit/${plugin.name}/start`,
      latent ? { latent, options: options() } : { seed: state.seed, options: options() });
    state.latent = answer.latent;
    state.size = [answer.width, answer.height];
    picture.src = `data:image/png;base64,${answer.image}`;
    clearStrokes();
  }

  async function start() {
    state.seed = parseInt(panel.querySelector(".edit-seed").value || "0", 10);
    state.history = [];
    setStatus(status, "loading…");
    try { await show(null); setStatus(status, "paint on the image"); }
    catch (failure) { setStatus(status, failure.message, true); }
  }

  function downsampled() {
    // The strokes at the generator's resolution: RGBA of the colour layer, alpha of the edge layer.
    const [width, height] = state.size;
    const small = document.createElement("canvas");
    small.width = width; small.height = height;
    const smallContext = small.getContext("2d", { willReadFrequently: true });
    smallContext.drawImage(colourLayer, 0, 0, width, height);
    const colour = Array.from(smallContext.getImageData(0, 0, width, height).data);
    smallContext.clearRect(0, 0, width, height);
    smallContext.drawImage(edges, 0, 0, width, height);
    const edgeData = smallContext.getImageData(0, 0, width, height).data;
    const edge = [];
    for (let i = 3; i < edgeData.length; i += 4) edge.push(edgeData[i]);
    return { colour, edge };
  }

  async function search() {
    if (state.busy || !state.latent) return;
    state.busy = true;
    setStatus(status, "searching…");
    try {
      const answer = await call(`/api/edit/${plugin.name}`,
        { latent: state.latent, seed: state.seed, options: options(), strokes: downsampled() });
      const candidates = panel.querySelector(".candidates");
      candidates.replaceChildren(...answer.candidates.map((png, i) => {
        const image = pngImage(png, `candidate ${i + 1}`);
        image.title = `cost ${answer.costs[i].toFixed(4)}`;
        image.addEventListener("click", async () => {
          state.history.push(state.latent);
          await show(answer.latents[i]);
          setStatus(status, `continuing from candidate ${i + 1}`);
        });
        return image;
      }));
      panel.querySelector(".neighbours").replaceChildren(
        ...answer.neighbours[0].map((png, i) => pngImage(png, `nearest real image ${i + 1}`)));
      panel.querySelector(".morph").replaceChildren(...answer.morph.map((png, i) => pngImage(png, `step ${i}`)));
      const fall = 100 * (1 - answer.colour_errors[0] / Math.max(answer.start_colour_error, 1e-12));
      setStatus(status, `${answer.candidates.length} candidates in ${answer.seconds.toFixed(2)} s` +
        (answer.start_colour_error > 0 ? `; colour error ${fall.toFixed(0)}% lower` : ""));
    } catch (failure) {
      setStatus(status, failure.message, true);
    } finally {
      state.busy = false;
    }
  }

  let drawing = false;
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    const target = mode() === "edge" ? edgeContext : colourContext;
    target.strokeStyle = mode() === "edge" ? "#ff2d55" : panel.querySelector(".edit-colour").value;
    target.lineWidth = mode() === "edge" ? 6 : parseInt(panel.querySelector(".edit-brush").value, 10);
    target.lineCap = target.lineJoin = "round";
    target.beginPath();
    target.moveTo(...from);
    target.lineTo(...to);
    target.stroke();
    redraw();
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.latent) return;
    drawing = true;
    last = point(event);
    stroke(last, last);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  canvas.addEventListener("pointerup", () => { if (drawing) { drawing = false; search(); } });

  panel.querySelector(".edit-start").addEventListener("click", start);
  panel.querySelector(".edit-reset").addEventListener("click", start);
  panel.querySelector(".edit-undo").addEventListener("click", async () => {
    if (state.history.length) { await show(state.history.pop()); setStatus(status, "undone"); }
    else { clearStrokes(); setStatus(status, "strokes cleared"); }
  });
  start();
  return panel;
}

async function main() {
  const response = await fetch("/api/plugins");
  const { plugins } = await response.json();
  const nav = document.getElementById("plugin-nav");
  const panels = document.getElementById("panels");
  for (const plugin of plugins) {
    const link = document.createElement("a");
    link.href = `#plugin-${plugin.name}`;
    link.textContent = plugin.name;
    nav.append(link);
    if (plugin.broken) {
      const section = document.createElement("section");
      section.className = "panel";
      section.textContent = `${plugin.name}: broken (${plugin.broken})`;
      panels.append(section);
      continue;
    }
    panels.append(samplePanel(plugin));
  }
}

main();
