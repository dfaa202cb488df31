// The web chat's one line for any page:
//   <script src="https://bot.example.com/webchat/widget.js" data-site="main" async></script>
// Optional: data-lang="en"; for a logged-in customer data-user="<your user id>" and
// data-user-hash="<hex HMAC-SHA256 of it under BOT_WEBCHAT_SECRET, computed on your server>".
// It adds a launcher button and, when opened, the chat panel in an iframe served by the bot:
// the page's CSS and scripts never reach the panel, and the panel's never reach the page.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.botWebchatLoaded) {
    return;
  }
  window.botWebchatLoaded = true;
  var source = new URL(script.src, location.href);
  var origin = source.origin;
  var base = origin + source.pathname.replace(/\/widget\.js$/, "");
  var data = script.dataset;
  var colour = "#1f6feb";
  var frame = null;
  var open = false;

  // What the visitor sees: on a phone, a page wider than the screen makes the layout (and so
  // position: fixed) wider than the screen too; the visual viewport is the screen's part of it.
  function seen() {
    var v = window.visualViewport;
    return v
      ? { left: v.offsetLeft, top: v.offsetTop, width: v.width, height: v.height }
      : { left: 0, top: 0, width: window.innerWidth, height: window.innerHeight };
  }

  function phone() {
    return seen().width < 520;
  }

  function place() {
    var v = seen();
    var b = button.style;
    if (phone()) {  // the launcher in the screen's corner, wherever the page is scrolled
      b.right = "auto"; b.bottom = "auto";
      b.left = Math.round(v.left + v.width - 76) + "px";
      b.top = Math.round(v.top + v.height - 76) + "px";
    } else {
      b.left = "auto"; b.top = "auto"; b.right = "20px"; b.bottom = "20px";
    }
    b.display = open && phone() ? "none" : "block";
    if (!frame) {
      return;
    }
    var s = frame.style;
    if (phone()) {
      s.right = "auto"; s.bottom = "auto";
      s.left = Math.round(v.left) + "px"; s.top = Math.round(v.top) + "px";
      s.width = Math.round(v.width) + "px"; s.height = Math.round(v.height) + "px";
      s.maxHeight = "none"; s.borderRadius = "0";
    } else {
      s.left = "auto"; s.top = "auto"; s.right = "20px"; s.bottom = "88px";
      s.width = "370px"; s.height = "560px"; s.maxHeight = "calc(100vh - 108px)";
      s.borderRadius = "14px";
    }
  }

  var button = document.createElement("button");
  button.id = "bot-webchat-launcher";
  button.type = "button";
  button.setAttribute("aria-label", data.lang === "en" ? "Chat with us" : "在线客服");
  // a speech bubble, drawn (no icon font, no emoji the system may lack)
  var svgNs = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNs, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "28");
  icon.setAttribute("height", "28");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(svgNs, "path");
  path.setAttribute("fill", "#fff");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  icon.style.display = "block";
  icon.style.margin = "14px auto";
  button.appendChild(icon);
  var b = button.style;
  b.all = "initial";
  b.position = "fixed";
  b.right = "20px";
  b.bottom = "20px";
  b.width = "56px";
  b.height = "56px";
  b.borderRadius = "50%";
  b.background = colour;
  b.color = "#fff";
  b.cursor = "pointer";
  b.boxShadow = "0 4px 14px rgba(0,0,0,.25)";
  b.zIndex = "2147483646";

  function build() {
    var fragment = new URLSearchParams();
    if (data.user) {
      fragment.set("user", data.user);
      fragment.set("hash", data.userHash || "");
    }
    fragment.set("lang", data.lang || navigator.language || "zh");
    if (data.site) {
      fragment.set("site", data.site);
    }
    frame = document.createElement("iframe");
    frame.id = "bot-webchat-panel";
    frame.title = data.lang === "en" ? "Chat" : "在线客服";
    frame.src = base + "/panel#" + fragment.toString();
    var s = frame.style;
    s.all = "initial";
    s.position = "fixed";
    s.border = "0";
    s.background = "#fff";
    s.boxShadow = "0 8px 30px rgba(0,0,0,.25)";
    s.zIndex = "2147483647";
    s.colorScheme = "normal";
    document.body.appendChild(frame);
    place();
  }

  function toggle(want) {
    open = want;
    if (open && !frame) {
      build();
    }
    if (frame) {
      frame.style.display = open ? "block" : "none";
    }
    place();
  }

  button.addEventListener("click", function () { toggle(!open); });
  window.addEventListener("resize", place);
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", place);
    window.visualViewport.addEventListener("scroll", place);
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || !frame || event.source !== frame.contentWindow) {
      return;
    }
    var message = event.data || {};
    if (message.webchat === "settings" && /^#[0-9a-fA-F]{6}$/.test(message.colour || "")) {
      colour = message.colour;
      button.style.background = colour;
    } else if (message.webchat === "close") {
      toggle(false);
    }
  });

  function mount() {
    document.body.appendChild(button);
    place();
    if (data.open === "true") {
      toggle(true);
    }
  }

  if (document.body) {
    mount();
  } else {
    document.addEventListener("DOMContentLoaded", mount);
  }
})();
