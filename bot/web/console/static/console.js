// The console's own script: SLA clocks that count every second, inserting canned replies and
// agent-assist answers into the reply box, and the live-connection dot. No inline handlers (the
// Content-Security-Policy forbids them): everything is wired here by event delegation.
(function () {
  "use strict";

  var seenAt = new WeakMap();

  function clock(seconds) {
    var whole = Math.abs(Math.round(seconds));
    var h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  function tick() {
    var now = Date.now();
    var overdue = document.body.dataset.overdue || "overdue";
    document.querySelectorAll(".clock[data-left], .clock[data-wait]").forEach(function (el) {
      if (!seenAt.has(el)) seenAt.set(el, now);
      var passed = (now - seenAt.get(el)) / 1000;
      if (el.dataset.wait !== undefined) {
        el.textContent = clock(Number(el.dataset.wait) + passed);
        return;
      }
      var left = Number(el.dataset.left) - passed;
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 60);
      el.textContent = left < 0 ? overdue + " " + clock(-left) : clock(left);
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
