"""GET /: one self-contained page (HTML, CSS and JS inline, no external URL, no build step) over POST /predict."""

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
</style>
</head>
<body>
<h1>emo-lightning</h1>
<p id="about">loading the model's labels…</p>
<textarea id="text" rows="4" placeholder="type a sentence, e.g. i miss my friends so much"></textarea>
<button id="predict" type="button">Predict</button>
<div id="error" role="alert"></div>
<div id="bars" aria-live="polite"></div>
<script>
"use strict";
let thresholds = null;

function show(element, text) { element.textContent = text; }

async function loadLabels() {
  const about = document.getElementById("about");
  try {
    const info = await (await fetch("/labels")).json();
    thresholds = info.thresholds;
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
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({text: document.getElementById("text").value}),
    });
    const answer = await response.json();
    if (!response.ok) {
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
loadLabels();
</script>
</body>
</html>
"""
