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

  // `source` is an EventSource, or the feed of a send whose response carries the reply itself.
  function listen(turn, feed) {
    // A turn already replaced by its end (htmx announces inserted elements a moment later).
    if (!turn.isConnected || (active && active.turn === turn)) return;
    if (!feed && placing && placing.id === turn.id) feed = placing.feed;
    var source = feed;
    if (!source) {
      var after = turn.getAttribute("data-after") || "0";
      source = new EventSource(turn.getAttribute("data-stream-url") + "?after=" + encodeURIComponent(after));
    }
    var reply = turn.querySelector("[data-reply]");
    var thinking = turn.querySelector("[data-thinking]");
    active = { turn: turn, source: source, stopUrl: turn.getAttribute("data-stop-url") };
    // Screen readers wait for the finished reply instead of reading every few words.
    turn.setAttribute("aria-busy", "true");
    setBusy(true);

    source.addEventListener("delta", function (event) {
      turn.setAttribute("data-after", event.lastEventId);
      append(reply, JSON.parse(event.data).text);
      markStreaming(turn);
      follow();
    });
    source.addEventListener("thinking", function (event) {
      var details = thinking && thinking.closest("details");
      if (details) details.hidden = false;
      turn.setAttribute("data-after", event.lastEventId);
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
    if (feed) return;
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

  // A message (or a regeneration) is sent with fetch, and its reply is read on the same
  // response: the sent turn comes first, then the reply's own events. No second request stands
  // between the send and the first words. Should the response end before the reply does, the
  // page resumes from the last event shown with EventSource, as it would after a reload.
  var sending = false;

  function sendStreamed(form) {
    if (active || sending) return;
    sending = true;
    var send = form.querySelector("[data-send], [type=submit]");
    if (send) send.disabled = true;
    var feed = new EventTarget();
    var controller = new AbortController();
    feed.close = function () { feed.closed = true; controller.abort(); };
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "Accept": "text/event-stream", "HX-Request": "true", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
      signal: controller.signal,
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("text/event-stream") === 0) return readFeed(response.body.getReader(), feed);
      return response.text().then(function (html) { answered(response, html); });
    }).catch(function () {
      if (!feed.closed) lost(feed);
    }).then(function () {
      sending = false;
      if (send && !active) send.disabled = false;
    });
  }

  // Server-sent events parsed from the response body, each dispatched on `feed` as EventSource
  // would; "sent" places the turn first and starts following it.
  function readFeed(reader, feed) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump(chunk) {
      if (chunk.done) { lost(feed); return; }
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      var blocks = buffer.split("\n\n");
      buffer = blocks.pop();
      blocks.forEach(function (block) { dispatch(block, feed); });
      if (feed.closed) return;
      return reader.read().then(pump);
    }
    return reader.read().then(pump);
  }

  function dispatch(block, feed) {
    var name = "message", data = [], id = "";
    block.split("\n").forEach(function (line) {
      var colon = line.indexOf(":");
      if (colon <= 0) return; // a comment (keep-alive) or a bare field name
      var field = line.slice(0, colon), value = line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    });
    if (!data.length || feed.closed) return;
    if (name === "sent") { placeSent(JSON.parse(data.join("\n")), feed); return; }
    feed.dispatchEvent(new MessageEvent(name, { data: data.join("\n"), lastEventId: id }));
  }

  // The turn being placed: htmx announces it (htmx:load) during the swap, and its events come
  // from the send's response, not from a stream of its own.
  var placing = null;

  function placeSent(sent, feed) {
    clearComposer();
    placing = { id: sent.turn, feed: feed };
    window.htmx.swap("#conversation", sent.html, { swapStyle: "beforeend" });
    placing = null;
    feed.turn = document.getElementById(sent.turn);
    if (feed.turn) listen(feed.turn, feed);
    following = true;
    follow();
  }

  // The send's response ended before the reply did (a dropped connection, a proxy's timeout):
  // follow the rest the usual way, from the last event shown.
  function lost(feed) {
    if (feed.closed) return;
    feed.closed = true;
    if (!feed.turn) {
      showComposerError(label("labelSendFailed"), "");
      return;
    }
    if (active && active.source === feed) active = null;
    listen(feed.turn);
  }

  // Not a stream: the composer again with what to fix, a sign-in to go through, or a page
  // that says what went wrong.
  function answered(response, html) {
    var redirect = response.headers.get("HX-Redirect");
    var retarget = response.headers.get("HX-Retarget");
    if (redirect) {
      window.location.href = redirect;
    } else if (retarget) {
      window.htmx.swap(retarget, html, { swapStyle: response.headers.get("HX-Reswap") || "outerHTML" });
    } else if (response.status === 503) {
      window.htmx.swap("#main", html, { swapStyle: "innerHTML" });
    } else {
      showComposerError(label("labelSendFailed"), "");
    }
  }

  function clearComposer() {
    var form = composer();
    if (!form) return;
    form.querySelector("[data-composer-input]").value = "";
    form.querySelector("[data-composer-error]").hidden = true;
    var attach = form.querySelector("[data-attach]");
    if (attach) attach.value = "";
    var shown = form.querySelector("[data-attached]");
    if (shown) shown.textContent = "";
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
    if (event.target.matches("[data-stream-send]") && window.htmx && window.ReadableStream) {
      event.preventDefault();
      sendStreamed(event.target);
    }
  });

  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-attach]")) return;
    var shown = composer().querySelector("[data-attached]");
    var file = event.target.files[0];
    if (shown) shown.textContent = file ? file.name : "";
  });

  // A new chat's first message goes with htmx, which opens the chat's page: the message leaves
  // the box. A refusal comes back as a new composer (HX-Retarget) and keeps what was typed.
  document.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (event.detail.elt.id !== "composer" || !xhr || xhr.status >= 300 || xhr.getResponseHeader("HX-Retarget")) return;
    clearComposer();
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
