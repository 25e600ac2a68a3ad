/* Copy buttons: `<button data-copy-target="<input id>" data-copy-status="<status id>">` copies the input's value
   to the clipboard and says so in the status element (an aria-live region). Used by the API key page (the new
   key) and the studio's gallery page (the share link). */
(function () {
  "use strict";
  var gettext = window.gettext || function (s) { return s; };

  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.dataset.copyTarget);
      var status = document.getElementById(button.dataset.copyStatus);
      var say = function (text) {
        if (status) status.textContent = text;
      };
      var done = function () {
        say(gettext("Copied."));
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          say(gettext("Press Ctrl+C to copy."));
        });
      } else {
        try {
          document.execCommand("copy");
          done();
        } catch (e) {
          say(gettext("Press Ctrl+C to copy."));
        }
      }
    });
  });
})();
