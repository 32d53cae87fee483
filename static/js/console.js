// Small behaviours shared by every page: theme toggle, mobile navigation, copy buttons, error focus.
(function () {
  function currentTheme() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen) return chosen;
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      var next = currentTheme() === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("rivya-theme", next); } catch (e) { /* storage disabled */ }
      return;
    }
    var navToggle = event.target.closest("[data-nav-toggle]");
    if (navToggle) {
      var open = navToggle.getAttribute("aria-expanded") === "true";
      navToggle.setAttribute("aria-expanded", open ? "false" : "true");
      document.body.classList.toggle("nav-open", !open);
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.getAttribute("data-copy"));
      var text = source ? (source.value || source.textContent) : "";
      navigator.clipboard.writeText(text.trim()).then(function () {
        var label = copy.textContent;
        copy.textContent = copy.getAttribute("data-copied") || "Copied";
        setTimeout(function () { copy.textContent = label; }, 1500);
      });
    }
  });

  // The Admin menu is a <details>: close it on a click elsewhere or on Escape, like a menu.
  function closeMenus(except) {
    document.querySelectorAll("[data-nav-menu][open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest("[data-nav-menu]"));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var viewer = document.querySelector(".viewer:target");
    if (viewer) {
      viewer.querySelector("[data-viewer-close]").click();
      return;
    }
    var open = document.querySelector("[data-nav-menu][open]");
    if (open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
    }
  });

  // After a rejected form, start where the first error is, not at the autofocus field.
  document.addEventListener("DOMContentLoaded", function () {
    var invalid = document.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
