// The web chat's panel (served by `bot run`, framed by widget.js). No build step, no library.
// Every message is rendered as text through the DOM: links (http and https only) become <a>
// elements built here, nothing is ever parsed as HTML.
(function () {
  "use strict";

  var WORDS = {
    zh: {
      placeholder: "输入消息…",
      send: "发送",
      close: "关闭",
      on: "客服在线",
      off: "人工客服已下班",
      back: "，{back} 回来",
      retry: "发送太快了，{seconds} 秒后自动重发",
      busy: "在线客服繁忙，{seconds} 秒后自动连接",
      tooLong: "消息太长了，请分几次发送",
      failed: "发送失败，正在重试…",
      refused: "这个网站暂时不能使用在线客服",
    },
    en: {
      placeholder: "Type a message…",
      send: "Send",
      close: "Close",
      on: "We're online",
      off: "Our team is away",
      back: " — back {back}",
      retry: "Sending too fast: sending again in {seconds} s",
      busy: "The chat is busy: connecting again in {seconds} s",
      tooLong: "That message is too long; please send it in parts",
      failed: "Not sent; trying again…",
      refused: "The chat is not available on this site",
    },
  };

  var base = location.pathname.replace(/\/panel$/, "");
  var given = new URLSearchParams(location.hash.replace(/^#/, ""));
  var asked = given.get("lang") || navigator.language || "zh";
  var language = asked.toLowerCase().indexOf("en") === 0 ? "en" : "zh";
  var words = WORDS[language];
  var token = null;
  var cursor = "0-0";
  var stream = null;
  var typingTimer = null;
  var sequence = 0;
  var resending = {}; // id -> notice of each message waiting to be sent again

  function waiting(id, text) {
    // the notice stays while any message waits; it says why the latest of them waits
    if (text) {
      resending[id] = text;
    } else {
      delete resending[id];
    }
    var ids = Object.keys(resending);
    say(ids.length ? resending[ids[ids.length - 1]] : "");
  }

  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("text");
  var typing = document.getElementById("typing");
  var notice = document.getElementById("notice");

  function say(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  // --- rendering: text, and links built as elements -----------------------------------------

  var LINK = /https?:\/\/[^\s<>"'，。！？、）]+/g;

  function fill(element, text) {
    var at = 0;
    var found;
    LINK.lastIndex = 0;
    while ((found = LINK.exec(text)) !== null) {
      var url = found[0].replace(/[.,;:!?)]+$/, "");
      if (found.index > at) {
        element.appendChild(document.createTextNode(text.slice(at, found.index)));
      }
      var link = document.createElement("a");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = url;
      element.appendChild(link);
      at = found.index + url.length;
      LINK.lastIndex = at;
    }
    if (at < text.length) {
      element.appendChild(document.createTextNode(text.slice(at)));
    }
  }

  function bubble(direction, text, extra) {
    var div = document.createElement("div");
    div.className = "msg " + direction + (extra ? " " + extra : "");
    fill(div, text);
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function retireChoices() {
    var buttons = log.querySelectorAll(".choices button");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].disabled = true;
    }
  }

  function choices(list) {
    var row = document.createElement("div");
    var scores = list.every(function (choice) { return /^\s*[0-9]/.test(choice); });
    row.className = "choices" + (scores ? " scores" : "");
    list.forEach(function (choice, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = choice;
      button.addEventListener("click", function () {
        retireChoices();
        // the number, as the text lists it: what every channel's customer answers with
        send(String(index + 1), choice);
      });
      row.appendChild(button);
    });
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  // the choices last offered: a number picked from them is shown as the choice itself
  var offered = [];

  function picked(text) {
    var n = /^\s*([0-9]{1,2})\s*$/.exec(text);
    return n && offered[Number(n[1]) - 1] ? offered[Number(n[1]) - 1] : text;
  }

  function show(line, live) {
    if (line.direction === "in") {
      var pending = log.querySelector(".msg.in.pending");
      if (pending) {
        pending.classList.remove("pending");  // ours, confirmed stored
      } else {
        bubble("in", picked(line.text));  // written in another tab, or before a reload
      }
      offered = [];
      return;
    }
    retireChoices();
    bubble("out", line.text);
    offered = line.choices || [];
    if (offered.length) {
      choices(offered);
    }
    if (live) {
      setTyping(false);
    }
  }

  function setTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) {
      typingTimer = setTimeout(function () { typing.hidden = true; }, 15000);
      log.scrollTop = log.scrollHeight;
    }
  }

  // --- talking to the service ------------------------------------------------------------------

  function call(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (token) {
      headers["X-Webchat-Token"] = token;
    }
    return fetch(base + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
    });
  }

  function storageKey() {
    return given.get("user") ? "webchat-token:" + given.get("user") : "webchat-token";
  }

  function remembered() {
    try { return localStorage.getItem(storageKey()); } catch (e) { return null; }
  }

  function remember(value) {
    try { localStorage.setItem(storageKey(), value); } catch (e) { /* private mode */ }
  }

  function identify() {
    var body = {};
    if (given.get("user")) {
      body = { user: given.get("user"), hash: given.get("hash") || "" };
    } else if (remembered()) {
      body = { token: remembered() };
    }
    return visitorFor(body).then(function (answer) {
      token = answer.token;
      remember(token);
    });
  }

  // the server's Retry-After in seconds: at least 1, and 2 when it is missing or no number
  // (a proxy in front may send 0 or a date), so a refusal never turns into a tight loop
  function retryAfter(response) {
    var seconds = parseInt(response.headers.get("Retry-After") || "", 10);
    return seconds >= 1 ? seconds : 2;
  }

  function visitorFor(body) {
    return call("POST", "/visitor", body).then(function (response) {
      if (response.status === 429) {
        // this address is over per_ip_per_minute: say so, and ask again when the server says
        var seconds = retryAfter(response);
        waiting("(visitor)", words.busy.replace("{seconds}", seconds));
        return new Promise(function (resolve) { setTimeout(resolve, seconds * 1000); })
          .then(function () { return visitorFor(body); });
      }
      waiting("(visitor)", "");
      if (response.status === 401 && body.token) {
        return visitorFor({});
      }
      if (!response.ok) {
        throw new Error("visitor " + response.status);
      }
      return response.json();
    });
  }

  // white or near-black text on the accent colour, whichever reads better (WCAG luminance)
  function readableOn(colour) {
    var channels = [1, 3, 5].map(function (i) {
      var c = parseInt(colour.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
    return (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / 0.05) ? "#ffffff" : "#1f2328";
  }

  function settings() {
    return call("GET", "/settings?language=" + language).then(function (r) { return r.json(); })
      .then(function (s) {
        document.documentElement.lang = s.language;
        document.documentElement.style.setProperty("--accent", s.colour);
        document.documentElement.style.setProperty("--on-accent", readableOn(s.colour));
        document.getElementById("title").textContent = s.title;
        document.title = s.title;
        var duty = document.getElementById("duty");
        duty.className = s.on_duty ? "on" : "off";
        duty.textContent = s.on_duty ? words.on
          : words.off + (s.back_text ? words.back.replace("{back}", s.back_text) : "");
        if (s.avatar) {
          var avatar = document.getElementById("avatar");
          avatar.src = s.avatar;
          avatar.hidden = false;
        }
        if (window.parent !== window) {
          window.parent.postMessage({ webchat: "settings", colour: s.colour, title: s.title }, "*");
        }
        return s;
      });
  }

  function history(greeting) {
    return call("GET", "/history").then(function (r) { return r.json(); }).then(function (h) {
      log.textContent = "";
      if (!h.lines.length && greeting) {
        bubble("out", greeting, "greeting");
      }
      h.lines.forEach(function (line) { show(line, false); });
      cursor = h.cursor;
    });
  }

  function listen() {
    var url = base + "/stream?token=" + encodeURIComponent(token) + "&after=" + cursor;
    stream = new EventSource(url);
    stream.addEventListener("line", function (e) {
      cursor = e.lastEventId || cursor;
      show(JSON.parse(e.data), true);
    });
  }

  function send(text, shown) {
    sequence += 1;
    var id = Date.now().toString(36) + "-" + sequence + "-" + Math.random().toString(36).slice(2, 8);
    var mine = bubble("in", shown || text, "pending");
    setTyping(true);
    deliver(id, text, mine, 0);
  }

  function deliver(id, text, mine, attempt) {
    call("POST", "/messages", { id: id, text: text, language: language }).then(function (response) {
      if (response.status === 202) {
        // decided: the bot's answer is on its way (none comes while a person has the chat)
        waiting(id, "");
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { typing.hidden = true; }, 3000);
        return;
      }
      if (response.status === 429 || response.status === 503) {
        var seconds = retryAfter(response);
        waiting(id, words.retry.replace("{seconds}", seconds));
        setTimeout(function () { deliver(id, text, mine, attempt + 1); }, seconds * 1000);
        return;
      }
      delete resending[id];
      setTyping(false);
      mine.classList.remove("pending");
      mine.classList.add("failed");
      say(response.status === 413 ? words.tooLong : words.failed);
    }, function () {
      waiting(id, words.failed);
      setTimeout(function () { deliver(id, text, mine, attempt + 1); }, Math.min(2000 * (attempt + 1), 10000));
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || !token) {
      return;
    }
    input.value = "";
    retireChoices();
    send(text);
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  document.getElementById("close").addEventListener("click", function () {
    window.parent.postMessage({ webchat: "close" }, "*");
  });

  input.placeholder = words.placeholder;
  document.getElementById("send").textContent = words.send;
  document.getElementById("close").setAttribute("aria-label", words.close);

  settings().then(function (s) {
    return identify().then(function () { return history(s.greeting); });
  }).then(listen, function () {
    say(words.refused);
  });
  setInterval(settings, 60000);
})();
