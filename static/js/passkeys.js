// Passkey ceremonies: a [data-passkey="create"|"get"] button carries the server's options as
// JSON; the browser's answer goes into the form's [data-passkey-output] field and the form is
// sent. Messages come from the button's data- attributes (templates translate them).
(function () {
  function show(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    status.textContent = text;
    status.hidden = false;
  }

  function ceremony(mode, options) {
    var key = window.PublicKeyCredential;
    if (mode === "create") {
      return navigator.credentials.create({ publicKey: key.parseCreationOptionsFromJSON(options) });
    }
    return navigator.credentials.get({ publicKey: key.parseRequestOptionsFromJSON(options) });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-passkey]");
    if (!button) return;
    event.preventDefault();
    var form = button.closest("form");
    var key = window.PublicKeyCredential;
    if (!key || !key.parseCreationOptionsFromJSON || !navigator.credentials) {
      show(form, button.getAttribute("data-passkey-unsupported"));
      return;
    }
    var options = JSON.parse(button.getAttribute("data-passkey-options"));
    button.disabled = true;
    ceremony(button.getAttribute("data-passkey"), options).then(function (credential) {
      form.querySelector("[data-passkey-output]").value = JSON.stringify(credential.toJSON());
      form.submit();
    }).catch(function () {
      button.disabled = false;
      show(form, button.getAttribute("data-passkey-failed"));
    });
  });
})();
