/* Copy buttons: `<button data-copy-target="<input id>" data-copy-status="<status id>">` copies the input's value
   to the clipboard and says so in the status element (an aria-live region). Used by the API key page (the new
   key) and the studio's gallery page (the share link). */
(function () {
  "use strict";

  document.querySelectorAll("button[data-copy-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.dataset.copyTarget);
      var status = document.getElementById(button.dataset.copyStatus);
      var say = function (text) {
        if (status) status.textContent = text;
      };
      var done = function () {
        say("Copied.");
      };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          say("Press Ctrl+C to copy.");
        });
      } else {
        try {
          document.execCommand("copy");
          done();
        } catch (e) {
          say("Press Ctrl+C to copy.");
        }
      }
    });
  });
})();
