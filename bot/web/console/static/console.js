// The console's own script: SLA clocks that count every second, inserting canned replies and
// agent-assist answers into the reply box, and the live-connection dot. No inline handlers (the
// Content-Security-Policy forbids them): everything is wired here by event delegation.
(function () {
  "use strict";

  var seenAt = new WeakMap();

  // a wait or an age as bot/web/console/durations.py says it: "2 天 3 小时", "5 min", "just now"
  var units = null;
  function clock(seconds, ahead) {
    if (units === null) {
      try { units = JSON.parse(document.body.dataset.units || "{}"); } catch (e) { units = {}; }
    }
    var whole = Math.max(Math.floor(Math.abs(seconds)), 0);
    var d = Math.floor(whole / 86400), h = Math.floor((whole % 86400) / 3600);
    var m = Math.floor((whole % 3600) / 60);
    var parts = d ? [[d, "d"], [h, "h"]] : h ? [[h, "h"], [m, "min"]] : m ? [[m, "min"]] : [];
    if (!parts.length) return units[ahead ? "soon" : "now"] || "";
    return parts.filter(function (p) { return p[0]; })
      .map(function (p) { return p[0] + " " + (units[p[1]] || p[1]); }).join(" ");
  }

  function tick() {
    var now = Date.now();
    var overdue = document.body.dataset.overdue || "overdue";
    document.querySelectorAll(".clock[data-left], .clock[data-wait]").forEach(function (el) {
      if (!seenAt.has(el)) seenAt.set(el, now);
      var passed = (now - seenAt.get(el)) / 1000;
      if (el.dataset.wait !== undefined) {
        el.textContent = clock(Number(el.dataset.wait) + passed, false);
        return;
      }
      var left = Number(el.dataset.left) - passed;
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 60);
      el.textContent = left < 0 ? overdue + " " + clock(-left, true) : clock(left, true);
    });
  }

  function insert(text) {
    var box = document.getElementById("reply-text");
    if (!box) return;
    var start = box.selectionStart || 0, end = box.selectionEnd || 0;
    if (document.activeElement !== box) { start = end = box.value.length; }
    var before = box.value.slice(0, start);
    var glue = before && !/\s$/.test(before) ? "\n" : "";
    box.setRangeText(glue + text, start, end, "end");
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-insert]");
    if (button) {
      event.preventDefault();
      insert(button.dataset.insert);
    }
  });

  function live(on) {
    var dot = document.getElementById("live-dot");
    if (dot) dot.classList.toggle("on", on);
  }
  document.addEventListener("htmx:sseOpen", function () { live(true); });
  document.addEventListener("htmx:sseError", function () { live(false); });
  document.addEventListener("htmx:sseClose", function () { live(false); });

  // the newest message in view, on load and after every live refresh
  function latest() {
    var transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    latest();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSettle", function () { tick(); latest(); });
})();
