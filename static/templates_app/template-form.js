/* The template designer (templates_app/_template_form.html): the likeness slider shows its value as it moves, in
   the <output> that names the slider in its `for` attribute; a group template's box inputs follow "People in the
   picture" (shown for 2-6 people, as many as there are people), and the numbered boxes over the template photo
   follow what is typed (positions set through the CSSOM: the CSP allows no style attribute). */
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

  var SIDES = ["left", "top", "right", "bottom"];
  var slotsInput = document.getElementById("id_subject_slots");
  var section = document.querySelector("[data-slot-boxes]");
  if (!slotsInput || !section) return;

  function people() {
    var n = parseInt(slotsInput.value, 10);
    return n >= 1 && n <= 6 ? n : 1;
  }

  function sides(slot) {
    return SIDES.map(function (side) {
      var input = document.getElementById("id_slot_" + slot + "_" + side);
      var value = input ? parseFloat(String(input.value).replace(",", ".")) : NaN;
      return value >= 0 && value <= 100 ? value : NaN;
    });
  }

  function drawBox(slot, shown) {
    var box = section.querySelector('[data-slot-box="' + slot + '"]');
    if (!box) return;
    var s = sides(slot);
    var ok = shown && !s.some(isNaN) && s[0] < s[2] && s[1] < s[3];
    if (ok) {
      box.style.setProperty("--slot-l", s[0] + "%");
      box.style.setProperty("--slot-t", s[1] + "%");
      box.style.setProperty("--slot-w", s[2] - s[0] + "%");
      box.style.setProperty("--slot-h", s[3] - s[1] + "%");
    }
    box.hidden = !ok;
  }

  function update() {
    var n = people();
    section.hidden = n < 2;
    section.querySelectorAll("[data-slot]").forEach(function (row) {
      var slot = parseInt(row.getAttribute("data-slot"), 10);
      row.hidden = n < 2 || slot > n;
      drawBox(slot, !row.hidden);
    });
  }

  slotsInput.addEventListener("input", update);
  section.addEventListener("input", update);
})();
