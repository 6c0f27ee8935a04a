"""The HTML report's stylesheet and script, inlined into every report (no file, no network).

They live in Python strings rather than asset files so that every install (wheel, sdist,
editable) carries them without package-data configuration.
"""

from __future__ import annotations

STYLE = """
:root {
  color-scheme: light dark;
  --fg: #1f2328; --muted: #59636e; --bg: #ffffff; --panel: #f6f8fa; --line: #d1d9e0;
  --passed: #1a7f37; --failed: #cf222e; --error: #8250df; --invalid: #9a6700;
  --inconclusive: #0969da; --flaky: #9a6700;
  --user: #0969da; --assistant: #1a7f37; --tool: #9a6700;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --panel: #151b23; --line: #3d444d;
    --passed: #3fb950; --failed: #f85149; --error: #ab7df8; --invalid: #d29922;
    --inconclusive: #4493f8; --flaky: #d29922;
    --user: #4493f8; --assistant: #3fb950; --tool: #d29922;
  }
}
[hidden] { display: none !important; }
* { box-sizing: border-box; }
body {
  margin: 0 auto; max-width: 78rem; padding: 1rem 1.5rem 4rem; color: var(--fg);
  background: var(--bg); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
}
h1 { font-size: 1.4rem; margin: .5rem 0; word-break: break-all; }
h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre {
  white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0; padding: .4rem .6rem;
  background: var(--panel); border-radius: 4px; font-size: .85rem;
}
table { border-collapse: collapse; margin: .4rem 0; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
table.evaluations, table.summary { width: 100%; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--panel); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
  margin: .5rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.muted, .note { color: var(--muted); }
.note { font-size: .85rem; }
.status { font-weight: 600; white-space: nowrap; }
.s-passed { color: var(--passed); } .s-failed { color: var(--failed); }
.s-error { color: var(--error); } .s-invalid { color: var(--invalid); }
.s-inconclusive { color: var(--inconclusive); } .s-flaky { color: var(--flaky); }
.s-undecided { color: var(--inconclusive); }
.badge { display: inline-block; padding: 0 .45rem; border: 1px solid currentColor;
  border-radius: 1rem; font-size: .8rem; font-weight: 600; }
ul.counts { list-style: none; padding: 0; margin: .3rem 0; display: flex; gap: 1.2rem;
  flex-wrap: wrap; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem 1.5rem; align-items: end;
  padding: .6rem .8rem; margin: .5rem 0; background: var(--panel); border-radius: 6px; }
form.filters fieldset { border: 0; padding: 0; margin: 0; display: flex; gap: .8rem;
  flex-wrap: wrap; }
form.filters legend, form.filters .field > label { font-weight: 600; font-size: .85rem;
  display: block; }
form.filters select, form.filters input[type=search] { font: inherit; max-width: 24rem; }
#shown { font-size: .9rem; }
details.transcript { border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; }
details.transcript > summary { cursor: pointer; padding: .4rem .7rem; display: flex;
  gap: .7rem; flex-wrap: wrap; align-items: baseline; }
details.transcript[open] > summary { border-bottom: 1px solid var(--line);
  background: var(--panel); }
details.transcript > .body { padding: .3rem .9rem .8rem; }
summary .label { overflow-wrap: anywhere; font-weight: 600; }
ol.messages { list-style: none; padding: 0; margin: .5rem 0; }
li.msg { border-left: 4px solid var(--line); padding: .2rem .7rem; margin: .5rem 0; }
li.msg-user { border-color: var(--user); }
li.msg-assistant { border-color: var(--assistant); }
li.msg-tool, li.msg-system { border-color: var(--tool); }
.msg-head { font-size: .85rem; font-weight: 600; }
.msg-user .who { color: var(--user); } .msg-assistant .who { color: var(--assistant); }
.msg-head .stats { font-weight: 400; color: var(--muted); margin-left: .5rem; }
.content { white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0; }
.tool-call { margin: .3rem 0 .3rem .5rem; padding-left: .6rem;
  border-left: 2px dashed var(--tool); }
.tool-call .name { font-weight: 600; color: var(--tool); }
.problem { font-weight: 600; margin: .3rem 0; overflow-wrap: anywhere; }
details.more > summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
.comparison { margin: .8rem 0; }
.comparison ul { margin: .2rem 0; }
.toolbar { display: flex; gap: .5rem; margin: .4rem 0; }
button { font: inherit; font-size: .85rem; cursor: pointer; }
a { color: inherit; }
"""

# Filters hide the summary rows and the transcripts whose data attributes do not match; the
# form stays hidden without JavaScript, when everything is shown.
SCRIPT = """
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var items = Array.prototype.slice.call(document.querySelectorAll(".pt-item"));
  var rows = items.filter(function (el) { return el.tagName === "TR"; });
  var shown = document.getElementById("shown");
  var transcripts = Array.prototype.slice.call(document.querySelectorAll("details.transcript"));
  function apply() {
    var statuses = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[name=status]"), function (box) {
      if (box.checked) { statuses[box.value] = true; }
    });
    var test = form.elements.test.value;
    var version = form.elements.version.value;
    var words = form.elements.search.value.trim().toLowerCase();
    var count = 0;
    items.forEach(function (el) {
      var d = el.dataset;
      var keep = statuses[d.status] === true && (!test || d.test === test) &&
        (!version || d.version === version) &&
        (!words || d.label.toLowerCase().indexOf(words) !== -1);
      el.hidden = !keep;
      if (keep && el.tagName === "TR") { count += 1; }
    });
    shown.textContent = "Showing " + count + " of " + rows.length + " test runs";
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  form.hidden = false;
  form.addEventListener("change", apply);
  form.addEventListener("input", apply);
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  document.getElementById("expand-all").addEventListener("click", function () {
    transcripts.forEach(function (el) { if (!el.hidden) { el.open = true; } });
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    transcripts.forEach(function (el) { el.open = false; });
  });
  window.addEventListener("hashchange", openTarget);
  apply();
  openTarget();
})();
"""
