// Generate, job and files pages: prompt counter, upload progress, finished-job toasts.
(function () {
  function updateCounter(textarea) {
    var counter = textarea.closest(".field").querySelector("[data-prompt-count]");
    if (!counter) return;
    var limit = parseInt(textarea.getAttribute("data-max-length") || "0", 10);
    var length = textarea.value.length;
    counter.textContent = limit ? length + " / " + limit : String(length);
    counter.classList.toggle("counter-over", limit > 0 && length > limit);
  }

  function setUpCounters(root) {
    root.querySelectorAll("textarea[data-prompt]").forEach(updateCounter);
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches("textarea[data-prompt]")) updateCounter(event.target);
  });

  // The Files form tells the server the key, kind and model in the URL, so the size limit and
  // the grant are checked before the body is read.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt.closest("[data-upload-form]");
    if (!form) return;
    var query = new URLSearchParams();
    ["key", "kind", "model"].forEach(function (name) {
      var field = form.querySelector("[name=" + name + "]");
      if (field && field.value) query.set(name, field.value);
    });
    // With the exact size known up front, the console relays the bytes while they arrive.
    var file = form.querySelector("input[type=file]");
    if (file && file.files.length) {
      var size = file.files[0].size;
      var limits = JSON.parse(document.getElementById("upload-limits").textContent);
      var refused = form.querySelector("[data-upload-refused]");
      refused.hidden = !(size > (limits[query.get("kind")] || Infinity));
      if (!refused.hidden) {
        // Refuse before sending: the server would stop reading anyway, and a browser cut off
        // mid-send often never shows the answer.
        refused.textContent = form.getAttribute("data-too-large");
        event.preventDefault();
        return;
      }
      query.set("size", String(size));
    }
    event.detail.path += (event.detail.path.indexOf("?") < 0 ? "?" : "&") + query.toString();
  });

  function progressFor(element) {
    var region = element.closest("[data-swap-errors]") || element.closest("form");
    return region ? region.querySelector("[data-upload-progress]") : null;
  }

  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB";
  }

  // Percent, size and a Cancel button while an upload runs; the words come from the template.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var status = progressFor(event.target);
    if (!status || !event.detail.lengthComputable) return;
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    status.hidden = false;
    status.uploading = event.target;
    status.querySelector("progress").value = percent;
    status.querySelector("[data-upload-text]").textContent = status
      .getAttribute("data-progress-text")
      .replace("{percent}", percent + "%")
      .replace("{sent}", megabytes(event.detail.loaded))
      .replace("{total}", megabytes(event.detail.total));
  });

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest("[data-upload-cancel]");
    if (!cancel) return;
    var status = cancel.closest("[data-upload-progress]");
    if (status.uploading) htmx.trigger(status.uploading, "htmx:abort");
    status.hidden = true;
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var status = progressFor(event.target);
    if (status) status.hidden = true;
  });

  // Refused uploads and forms answer 4xx with the region re-rendered around the message.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ([400, 403, 413].indexOf(status) >= 0 && event.detail.elt.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function toast(text) {
    var region = document.querySelector("[data-toasts]");
    if (!region) return;
    var item = document.createElement("div");
    item.className = "toast";
    item.setAttribute("role", "status");
    item.textContent = text;
    region.appendChild(item);
    setTimeout(function () { item.remove(); }, 6000);
  }

  function announceFinished(root) {
    var finished = root.matches && root.matches("[data-job-finished]")
      ? [root] : Array.prototype.slice.call(root.querySelectorAll("[data-job-finished]"));
    finished.forEach(function (element) {
      var text = element.getAttribute("data-job-title") + ": " + element.getAttribute("data-job-finished");
      toast(text);
      if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
        new Notification(text);
      }
    });
  }

  document.addEventListener("htmx:load", function (event) {
    setUpCounters(event.detail.elt.querySelectorAll ? event.detail.elt : document);
    announceFinished(event.detail.elt);
  });

  document.addEventListener("DOMContentLoaded", function () {
    setUpCounters(document);
    var notify = document.querySelector("[data-notify]");
    if (notify && "Notification" in window && Notification.permission === "default") {
      notify.hidden = false;
      notify.addEventListener("click", function () {
        Notification.requestPermission().then(function () { notify.hidden = true; });
      });
    }
  });
})();
