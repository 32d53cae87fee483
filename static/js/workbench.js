// The API explorer's streamed exchanges: events appended as they arrive, Stop closes the stream.
(function () {
  function badge(status) {
    var span = document.createElement("span");
    span.className = "badge " + (status < 400 ? "badge-ok" : "badge-bad");
    span.textContent = status;
    return span;
  }

  function headerList(target, headers) {
    if (!target) return;
    target.textContent = "";
    headers.forEach(function (pair) {
      var row = document.createElement("div");
      var name = document.createElement("dt");
      var value = document.createElement("dd");
      name.className = value.className = "mono";
      name.textContent = pair[0];
      value.textContent = pair[1];
      row.append(name, value);
      target.append(row);
    });
  }

  function pre(text) {
    var block = document.createElement("pre");
    block.className = "code-block";
    block.dir = "ltr";
    block.textContent = text;
    return block;
  }

  function start(panel) {
    var source = new EventSource(panel.getAttribute("data-workbench-stream"));
    var list = panel.querySelector("[data-stream-events]");
    var note = panel.querySelector("[data-stream-note]");
    var stop = panel.querySelector("[data-stream-stop]");
    var field = function (name) { return panel.querySelector("[data-exchange-" + name + "]"); };
    function finish(text) {
      source.close();
      if (stop) stop.hidden = true;
      if (text !== undefined && note) note.textContent = text;
      panel.setAttribute("data-stream-finished", "");
    }
    source.addEventListener("head", function (event) {
      var head = JSON.parse(event.data);
      field("status").replaceChildren(badge(head.status));
      field("request-id").textContent = head.request_id || "—";
      field("time").textContent = head.elapsed_ms + " ms";
      headerList(field("request-headers"), head.request_headers);
      headerList(field("response-headers"), head.response_headers);
    });
    source.addEventListener("upstream", function (event) {
      var item = JSON.parse(event.data);
      var row = document.createElement("li");
      var name = document.createElement("span");
      name.className = "badge";
      name.textContent = item.event;
      row.append(name, pre(item.data));
      list.append(row);
    });
    source.addEventListener("body", function (event) {
      var body = JSON.parse(event.data);
      field("body").replaceChildren(pre(body.pretty || body.text));
    });
    source.addEventListener("end", function (event) {
      field("time").textContent = JSON.parse(event.data).elapsed_ms + " ms";
      finish("");
    });
    source.addEventListener("failed", function (event) {
      finish(panel.getAttribute("data-failed-text") + " " + JSON.parse(event.data).message);
    });
    if (stop) {
      stop.addEventListener("click", function () {
        finish(panel.getAttribute("data-stopped-text"));
        panel.setAttribute("data-stream-stopped", "");
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-workbench-stream]").forEach(start);
  });
})();
