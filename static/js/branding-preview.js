/* The branding page's live preview: the chosen accent colour (and a readable text colour on it) and the
 * watermark text are shown as they are typed, before anything is saved. No inline style: custom properties are
 * set through the CSSOM, as css-vars.js does. */
(function () {
  "use strict";
  var script = document.currentScript;
  var studioName = script ? script.getAttribute("data-studio-name") || "" : "";

  function contrast(hex) {
    var m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
    if (!m) return "#ffffff";
    var channel = function (v) {
      v = parseInt(v, 16) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    var l = 0.2126 * channel(m[1]) + 0.7152 * channel(m[2]) + 0.0722 * channel(m[3]);
    return (1.05 / (l + 0.05)) >= ((l + 0.05) / 0.05) ? "#ffffff" : "#111827";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var preview = document.getElementById("branding-preview");
    var color = document.getElementById("id_primary_color");
    var watermark = document.getElementById("id_watermark_text");
    var shown = document.getElementById("branding-preview-watermark");
    if (!preview) return;
    if (color) {
      color.addEventListener("input", function () {
        if (!/^#[0-9a-f]{6}$/i.test(color.value)) return;
        preview.style.setProperty("--brand", color.value);
        preview.style.setProperty("--brand-contrast", contrast(color.value));
      });
    }
    if (watermark && shown) {
      watermark.addEventListener("input", function () {
        shown.textContent = watermark.value.trim() || studioName;
      });
    }
  });
})();
