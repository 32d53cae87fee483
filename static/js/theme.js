// Applies the saved theme before first paint, so a dark-theme user never sees a light flash.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("rivya-theme"); } catch (e) { /* storage disabled */ }
  if (saved === "light" || saved === "dark") {
    document.documentElement.setAttribute("data-theme", saved);
  }
})();
