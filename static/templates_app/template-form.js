/* The template designer (templates_app/_template_form.html): the likeness slider shows its value as it moves, in
   the <output> that names the slider in its `for` attribute. */
(function () {
  "use strict";

  document.querySelectorAll("output.identity-value[for]").forEach(function (out) {
    var input = document.getElementById(out.htmlFor.value);
    if (input) {
      input.addEventListener("input", function () {
        out.textContent = input.value;
      });
    }
  });
})();
