/* CSS custom properties from data attributes: `data-css-<name>="value"` on an element sets `--<name>` on it.
 *
 * The studio's colours (validated on the server: templates' safe_brand filter) reach the stylesheets as custom
 * properties (--brand, --brand-contrast on the studio pages, --accent, --accent-contrast in a client's gallery).
 * The Content-Security-Policy (studio_saas/settings.py) allows no inline <style> block or style attribute, but
 * setting a property through the CSSOM is not inline style: this script does it.
 *
 * Loaded in <head> without `defer`, so the root element (<html data-css-brand=...>) is coloured before the page
 * is first painted; elements of the body that carry such attributes (e.g. each studio's mark in the studio
 * chooser) are coloured when the document is parsed, and in content that htmx swaps in later.
 */
(function () {
  "use strict";

  var PREFIX = "data-css-";

  function apply(element) {
    for (var i = 0; i < element.attributes.length; i++) {
      var attribute = element.attributes[i];
      if (attribute.name.indexOf(PREFIX) === 0 && attribute.name.length > PREFIX.length) {
        element.style.setProperty("--" + attribute.name.slice(PREFIX.length), attribute.value);
      }
    }
  }

  function applyWithin(root) {
    if (root.nodeType !== 1) return;
    apply(root);
    root.querySelectorAll("*").forEach(function (element) {
      for (var i = 0; i < element.attributes.length; i++) {
        if (element.attributes[i].name.indexOf(PREFIX) === 0) {
          apply(element);
          return;
        }
      }
    });
  }

  apply(document.documentElement);
  document.addEventListener("DOMContentLoaded", function () {
    applyWithin(document.body);
  });
  document.addEventListener("htmx:load", function (event) {
    applyWithin(event.target);
  });
})();
