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

  // New-ticket alerts, opt-in per browser (localStorage): after each live change the page asks
  // for the ids of the queued tickets of the agent's queues (#new-tickets, htmx) and, for one it
  // had not seen, plays a short sound and shows a browser notification. Permission for those is
  // asked only when the agent turns the alerts on. Each alert counts in <body data-alerts>, and
  // data-alerts-ready says the page knows the tickets already waiting (they never ring).
  var KEY = "console.notify";
  var known = null;

  function alertsOn() {
    try { return window.localStorage.getItem(KEY) === "on"; } catch (e) { return false; }
  }

  function showToggle() {
    var toggle = document.getElementById("notify-toggle");
    if (!toggle) return;
    var on = alertsOn();
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    toggle.textContent = on ? toggle.dataset.on : toggle.dataset.off;
  }

  function flip() {
    var on = !alertsOn();
    try {
      if (on) window.localStorage.setItem(KEY, "on"); else window.localStorage.removeItem(KEY);
    } catch (e) { return; }
    if (on && "Notification" in window && Notification.permission === "default") {
      Notification.requestPermission();
    }
    showToggle();
  }

  function ring(fresh) {
    var toggle = document.getElementById("notify-toggle");
    var body = document.body;
    body.dataset.alerts = String(Number(body.dataset.alerts || 0) + 1);
    if (!toggle) return;
    try {
      var sound = new Audio(toggle.dataset.sound);
      var playing = sound.play();
      if (playing && playing.catch) playing.catch(function () {});
    } catch (e) { /* no sound: the notification still shows */ }
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(toggle.dataset.title, { body: "#" + fresh.join(", #"), tag: "new-ticket" });
        body.dataset.notifications = String(Number(body.dataset.notifications || 0) + 1);
      } catch (e) { /* some browsers allow notifications from a service worker only */ }
    }
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt || elt.id !== "new-tickets" || !event.detail.successful) return;
    var ids;
    try { ids = JSON.parse(event.detail.xhr.responseText).queued || []; } catch (e) { return; }
    var fresh = known === null ? [] : ids.filter(function (id) { return known.indexOf(id) < 0; });
    known = ids;
    document.body.dataset.alertsReady = "true";
    if (fresh.length && alertsOn()) ring(fresh);
  });

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("#notify-toggle");
    if (toggle) flip();
  });

  // the newest message in view, on load and after every live refresh
  function latest() {
    var transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", function () {
    showToggle();
    tick();
    latest();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSettle", function () { tick(); latest(); });
})();
