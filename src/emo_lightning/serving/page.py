"""GET /: one self-contained page (HTML, CSS and JS inline, no external URL, no build step) over POST /predict.

A server started with an API key answers the page's /labels and /predict with a 401: the page then shows a key field,
keeps what is typed there in the tab's sessionStorage only, and sends it as `Authorization: Bearer <key>`."""

DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>emo-lightning demo</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  #about { color: #666; font-size: .9rem; margin-top: 0; }
  textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .5rem; }
  button { margin-top: .5rem; font: inherit; padding: .4rem 1.2rem; cursor: pointer; }
  #error { color: #b00020; margin-top: .8rem; }
  .row { display: grid; grid-template-columns: 8rem 1fr 4rem; align-items: center; gap: .5rem; margin: .3rem 0; }
  .name { text-align: right; }
  .track { background: #eee; height: 1.1rem; border-radius: 3px; position: relative; }
  .bar { background: #9bb7d4; height: 100%; border-radius: 3px; }
  .prob { font-variant-numeric: tabular-nums; }
  .decided .name { font-weight: 700; }
  .decided .bar { background: #e0701b; }
  .tick { position: absolute; top: -2px; bottom: -2px; width: 2px; background: #444; }
  #keyrow input { font: inherit; padding: .3rem; width: 20rem; max-width: 100%; }
  .hint { color: #666; font-size: .8rem; }
</style>
</head>
<body>
<h1>emo-lightning</h1>
<p id="about">loading the model's labels…</p>
<p id="keyrow" hidden><label for="key">API key</label>
  <input id="key" type="password" autocomplete="off" spellcheck="false"
         placeholder="the key the server was started with">
  <span class="hint">kept in this tab only</span></p>
<textarea id="text" rows="4" placeholder="type a sentence, e.g. i miss my friends so much"></textarea>
<button id="predict" type="button">Predict</button>
<div id="error" role="alert"></div>
<div id="bars" aria-live="polite"></div>
<script>
"use strict";
const KEY_ITEM = "emo-lightning-api-key";
const keyInput = document.getElementById("key");
let thresholds = null;
let labelsLoaded = false;

function show(element, text) { element.textContent = text; }

function withKey(headers) {
  const key = sessionStorage.getItem(KEY_ITEM);
  return key ? {...headers, Authorization: "Bearer " + key} : headers;
}

function saveKey() {
  const key = keyInput.value.trim();
  if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
}

function askForKey() {
  document.getElementById("keyrow").hidden = false;
  keyInput.focus();
  return sessionStorage.getItem(KEY_ITEM)
    ? "the server refused this API key: check it and type it again in the API key field"
    : "this server needs an API key: type it in the API key field";
}

async function loadLabels() {
  const about = document.getElementById("about");
  try {
    const response = await fetch("/labels", {headers: withKey({})});
    if (response.status === 401) {
      show(about, askForKey());
      return;
    }
    const info = await response.json();
    thresholds = info.thresholds;
    labelsLoaded = true;
    const kind = info.multi_label ? "multi-label" : "single-label";
    show(about, `${info.labels.length} emotions, ${kind}, backend ${info.backend}; decided: ${info.decision}`);
  } catch (err) {
    show(about, "could not read /labels: " + err);
  }
}

function render(prediction) {
  const bars = document.getElementById("bars");
  bars.replaceChildren();
  const entries = Object.entries(prediction.scores).sort((a, b) => b[1] - a[1]);
  for (const [name, prob] of entries) {
    const row = document.createElement("div");
    row.className = "row" + (prediction.labels.includes(name) ? " decided" : "");
    row.dataset.label = name;
    row.dataset.prob = String(prob);
    const label = document.createElement("span");
    label.className = "name";
    show(label, name);
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = (100 * prob).toFixed(3) + "%";
    track.append(bar);
    if (thresholds && name in thresholds) {
      const tick = document.createElement("div");
      tick.className = "tick";
      tick.title = "threshold " + thresholds[name].toFixed(3);
      tick.style.left = (100 * thresholds[name]).toFixed(3) + "%";
      track.append(tick);
    }
    const value = document.createElement("span");
    value.className = "prob";
    show(value, prob.toFixed(3));
    row.append(label, track, value);
    bars.append(row);
  }
}

async function predict() {
  const error = document.getElementById("error");
  const button = document.getElementById("predict");
  show(error, "");
  button.disabled = true;
  saveKey();
  try {
    if (!labelsLoaded) await loadLabels();
    const response = await fetch("/predict", {
      method: "POST",
      headers: withKey({"Content-Type": "application/json"}),
      body: JSON.stringify({text: document.getElementById("text").value}),
    });
    const answer = await response.json();
    if (response.status === 401) {
      show(error, askForKey());
      document.getElementById("bars").replaceChildren();
    } else if (!response.ok) {
      show(error, answer.error ? answer.error.message : "HTTP " + response.status);
      document.getElementById("bars").replaceChildren();
    } else {
      render(answer.predictions[0]);
    }
  } catch (err) {
    show(error, "the server did not answer: " + err);
  } finally {
    button.disabled = false;
  }
}

document.getElementById("predict").addEventListener("click", predict);
document.getElementById("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) predict();
});
keyInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") predict();
});
if (sessionStorage.getItem(KEY_ITEM)) {
  keyInput.value = sessionStorage.getItem(KEY_ITEM);
  document.getElementById("keyrow").hidden = false;
}
loadLabels();
</script>
</body>
</html>
"""
