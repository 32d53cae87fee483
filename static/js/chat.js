// Chat page: follows each reply's event stream, Stop, keyboard shortcuts, code copy buttons.
// The server keeps reading a reply when this page goes away; reopening resumes from the last
// event id shown, so nothing here has to survive a refresh.
(function () {
  var active = null; // {turn, source, stopUrl}
  var following = true;

  function composer() { return document.getElementById("composer"); }
  function input() { var form = composer(); return form && form.querySelector("[data-composer-input]"); }
  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  // The conversation scrolls inside its own box; the page itself does not scroll.
  function conversation() { return document.getElementById("conversation"); }
  function nearBottom(box) {
    return box.scrollTop + box.clientHeight >= box.scrollHeight - 120;
  }
  function follow() {
    var box = conversation();
    if (!box) return;
    if (following) {
      box.scrollTop = box.scrollHeight;
    } else {
      var pill = document.querySelector("[data-follow]");
      if (pill) pill.hidden = false;
    }
  }
  document.addEventListener("scroll", function (event) {
    if (event.target !== conversation()) return;
    following = nearBottom(event.target);
    var pill = document.querySelector("[data-follow]");
    if (pill && following) pill.hidden = true;
  }, { passive: true, capture: true });

  // Phone: the chat list is a drawer.
  function setDrawer(open) {
    var layout = document.querySelector(".chat-layout");
    if (!layout) return;
    layout.classList.toggle("chats-open", open);
    document.querySelectorAll("[data-drawer-open]").forEach(function (button) {
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
    var focusable = open ? document.querySelector("#chat-sidebar a, #chat-sidebar button") : document.querySelector("[data-drawer-open]");
    if (focusable && (open || document.activeElement.closest("#chat-sidebar"))) focusable.focus();
  }
  function drawerOpen() {
    var layout = document.querySelector(".chat-layout");
    return Boolean(layout && layout.classList.contains("chats-open"));
  }

  // Each status the reply passes through is shown as it happens: waiting, replying, then the
  // finished turn (done, stopped or failed) replaces the whole turn.
  function markStreaming(turn) {
    if (turn.getAttribute("data-status") === "streaming") return;
    turn.setAttribute("data-status", "streaming");
    var badge = turn.querySelector("[data-status-badge]");
    if (badge) badge.textContent = badge.getAttribute("data-label-streaming");
  }

  function setBusy(busy) {
    var form = composer();
    if (!form) return;
    var stop = form.querySelector("[data-stop]");
    var send = form.querySelector("[data-send]");
    if (stop) stop.hidden = !busy;
    if (send) send.disabled = busy;
  }

  function showComposerError(message, requestId) {
    var form = composer();
    if (!form) return;
    var box = form.querySelector("[data-composer-error]");
    box.querySelector("[data-composer-error-text]").textContent = message;
    box.querySelector("[data-composer-request-id]").textContent = requestId ? label("labelRequestId") + " " + requestId : "";
    box.hidden = false;
  }

  function append(node, text) {
    if (!node) return;
    var last = node.lastChild;
    if (last && last.nodeType === Node.TEXT_NODE) last.appendData(text);
    else node.appendChild(document.createTextNode(text));
  }

  function finish(turn, event) {
    var data = JSON.parse(event.data);
    if (data.rejected) {
      turn.remove();
      showComposerError(data.text, data.request_id);
      var box = input();
      if (box && !box.value) box.value = data.message || "";
    } else if (data.html) {
      var template = document.createElement("template");
      template.innerHTML = data.html.trim();
      var fresh = template.content.firstElementChild;
      turn.replaceWith(fresh);
      if (window.htmx) window.htmx.process(fresh);
      enhance(fresh);
      if (event.type === "stopped" && window.htmx) {
        // Rivya settles a stopped reply a moment later; show the final credits once it has.
        setTimeout(function () {
          window.htmx.ajax("GET", fresh.getAttribute("data-turn-url"), { target: "#" + fresh.id, swap: "outerHTML" });
        }, 2500);
      }
    }
    follow();
  }

  function listen(turn) {
    if (active && active.turn === turn) return;
    var url = turn.getAttribute("data-stream-url");
    var after = turn.getAttribute("data-after") || "0";
    var source = new EventSource(url + "?after=" + encodeURIComponent(after));
    var reply = turn.querySelector("[data-reply]");
    var thinking = turn.querySelector("[data-thinking]");
    active = { turn: turn, source: source, stopUrl: turn.getAttribute("data-stop-url") };
    // Screen readers wait for the finished reply instead of reading every few words.
    turn.setAttribute("aria-busy", "true");
    setBusy(true);

    source.addEventListener("delta", function (event) {
      append(reply, JSON.parse(event.data).text);
      markStreaming(turn);
      follow();
    });
    source.addEventListener("thinking", function (event) {
      var details = thinking && thinking.closest("details");
      if (details) details.hidden = false;
      append(thinking, JSON.parse(event.data).text);
      markStreaming(turn);
    });
    ["done", "stopped", "error"].forEach(function (name) {
      source.addEventListener(name, function (event) {
        source.close();
        active = null;
        setBusy(false);
        finish(turn, event);
      });
    });
    source.onerror = function () {
      // EventSource reconnects by itself with Last-Event-ID; CLOSED means the server said no.
      if (source.readyState === EventSource.CLOSED && active && active.source === source) {
        active = null;
        setBusy(false);
        turn.removeAttribute("aria-busy");
        showComposerError(label("labelStreamLost"), "");
      }
    };
  }

  // Translated words come from data attributes on the conversation, rendered by the template.
  function label(name) {
    var conversation = document.getElementById("conversation");
    return (conversation && conversation.dataset[name]) || "";
  }

  function stop() {
    if (!active || !active.stopUrl) return;
    fetch(active.stopUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
      credentials: "same-origin",
    });
  }

  function enhance(root) {
    root.querySelectorAll(".markdown pre").forEach(function (pre) {
      if (pre.parentElement.classList.contains("code-block")) return;
      var wrap = document.createElement("div");
      wrap.className = "code-block";
      pre.replaceWith(wrap);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button button-quiet button-small code-copy";
      button.textContent = label("labelCopy");
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(pre.textContent).then(function () {
          button.textContent = label("labelCopied");
          setTimeout(function () { button.textContent = label("labelCopy"); }, 1500);
        });
      });
      wrap.appendChild(button);
      wrap.appendChild(pre);
    });
    if (root.matches && root.matches("[data-stream-url]")) listen(root);
    root.querySelectorAll("[data-stream-url]").forEach(listen);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target.closest && target.closest("input, textarea, select, [contenteditable]");
    // Enter sends and Shift+Enter starts a new line; Ctrl/Cmd+Enter sends too. Enter that ends
    // an input method's composition (Urdu, Chinese…) only commits the word.
    var composing = event.isComposing || event.keyCode === 229;
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !composing && target.matches("[data-composer-input]")) {
      event.preventDefault();
      if (!active && target.value.trim()) composer().requestSubmit();
      return;
    }
    if (event.key === "Escape" && drawerOpen()) {
      event.preventDefault();
      setDrawer(false);
      return;
    }
    if (event.key === "Escape" && active) {
      event.preventDefault();
      stop();
      return;
    }
    // "?" opens the sheet unless it is being typed into a message (an empty box still opens it).
    var emptyComposer = target.matches && target.matches("[data-composer-input]") && !target.value;
    if (typing && !(event.key === "?" && emptyComposer)) return;
    if (event.key === "?") {
      event.preventDefault();
      document.getElementById("chat-shortcuts").showModal();
    } else if (event.key === "/") {
      event.preventDefault();
      if (input()) input().focus();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-stop]")) { stop(); return; }
    if (event.target.closest("[data-drawer-open]")) { setDrawer(!drawerOpen()); return; }
    if (event.target.closest("[data-drawer-close]")) { setDrawer(false); return; }
    if (event.target.closest("[data-shortcuts-open]")) {
      document.getElementById("chat-shortcuts").showModal();
      return;
    }
    if (event.target.closest("[data-follow]")) {
      following = true;
      follow();
      event.target.closest("[data-follow]").hidden = true;
    }
  });

  document.addEventListener("submit", function (event) {
    if (event.target.matches("[data-stop-form]")) { event.preventDefault(); stop(); }
  });

  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-attach]")) return;
    var shown = composer().querySelector("[data-attached]");
    var file = event.target.files[0];
    if (shown) shown.textContent = file ? file.name : "";
  });

  // A sent message leaves the box; the options stay as they were for the next one. A refusal
  // comes back as a new composer (HX-Retarget) and keeps what was typed.
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (event.detail.elt.id !== "composer" || !xhr || xhr.status >= 300 || xhr.getResponseHeader("HX-Retarget")) return;
    var form = composer();
    form.querySelector("[data-composer-input]").value = "";
    form.querySelector("[data-composer-error]").hidden = true;
    var attach = form.querySelector("[data-attach]");
    if (attach) attach.value = "";
    var shown = form.querySelector("[data-attached]");
    if (shown) shown.textContent = "";
    following = true;
    follow();
  });

  document.addEventListener("htmx:load", function (event) {
    enhance(event.detail.elt);
    if (event.detail.elt.id === "composer") {
      setBusy(Boolean(active));
      following = true;
      follow();
      if (input()) input().focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    following = true;
    follow();
    if (input()) input().focus();
  });
})();
