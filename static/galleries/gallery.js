/* A client's gallery: the full-screen viewer and small touches on top of plain links and forms.

   Without JavaScript everything still works: a tile is a link to the portrait's own page (previous / next
   links), hearts and "More like me" are forms. With it:
   - tapping a tile opens the viewer (a modal dialog): swipe left / right (touch), arrow keys, Escape closes,
     focus stays inside while it is open and goes back to the tile when it closes; its heart favorites the
     portrait shown (through the tile's own heart form, which htmx posts);
   - the grid comes one page at a time: the "Next page" link at its end loads the next tiles (htmx, when it is
     revealed); the viewer goes on across the page boundary (past the last tile loaded it asks for the next page,
     before the first tile of a later page opened without it, it goes to the previous portrait's own page);
   - "More like me" turns into "On its way" once asked (the notice above the grid polls with htmx until the
     new portrait arrives, then it is inserted after its source);
   - the signed preview links expire (GALLERY_PREVIEW_LINK_SECONDS): an image failing long after the page
     loaded reloads the page once for fresh links. */
(function () {
  "use strict";
  // Words in the page's language: the catalogue script (tenants/i18n.py client_js_catalog) loads first and
  // defines gettext and interpolate; without it, English.
  var gettext = window.gettext || function (s) { return s; };
  var fmt = function (s, args) { return window.interpolate ? window.interpolate(s, args, true) : s.replace(/%\((\w+)\)s/g, function (_, k) { return String(args[k]); }); };

  var viewer = document.getElementById("g-viewer");
  if (!viewer) return;
  var stage = viewer.querySelector(".g-viewer-stage");
  var img = viewer.querySelector("[data-viewer-img]");
  var counter = viewer.querySelector("[data-viewer-count]");
  var heart = viewer.querySelector("[data-viewer-heart]");
  var closeButton = viewer.querySelector("[data-viewer-close]");
  var prevButton = viewer.querySelector("[data-viewer-prev]");
  var nextButton = viewer.querySelector("[data-viewer-next]");
  var tiles = [];
  var index = -1;
  var loadedAt = Date.now();
  var reloaded = false;
  var waitingForNext = false;

  function grid() {
    return document.getElementById("gallery-grid");
  }

  function collect() {
    var g = grid();
    tiles = g ? Array.prototype.slice.call(g.querySelectorAll(".g-tile")) : [];
  }

  // Numbers in the whole gallery: the grid's first tile says where this page starts, the grid the total when
  // the page was made; portraits that arrived since ("more like me") add to it.
  function total() {
    var g = grid();
    var base = (g && parseInt(g.getAttribute("data-total"), 10)) || 0;
    var arrived = g ? g.querySelectorAll(".g-tile[data-arrived]").length : 0;
    return Math.max(base + arrived, tiles.length);
  }

  function number(i) {
    var first = tiles[0] && parseInt(tiles[0].getAttribute("data-n"), 10);
    return (first || 1) + i;
  }

  function nextPageLink() {
    var g = grid();
    return g ? g.querySelector("[data-next] a") : null;
  }

  function beforeUrl() {
    var g = grid();
    return g ? g.getAttribute("data-before-url") : null;
  }

  function tileImage(tile) {
    return tile.querySelector(".g-tile-link img");
  }

  function tileHeartForm(tile) {
    return tile.querySelector(".g-heart-form");
  }

  function warm(i) {
    var tile = tiles[i];
    if (!tile) return;
    var image = tileImage(tile);
    if (image && image.loading === "lazy") image.loading = "eager";
  }

  function syncHeart() {
    var tile = tiles[index];
    var form = tile && tileHeartForm(tile);
    var button = form && form.querySelector("button");
    heart.hidden = !button;
    if (button) {
      heart.setAttribute("aria-pressed", button.getAttribute("aria-pressed") || "false");
      heart.setAttribute("aria-label", fmt(gettext("Favorite portrait %(number)s"), { number: number(index) }));
    }
  }

  function show(i) {
    if (!tiles.length) return;
    if (i >= tiles.length && nextPageLink()) {
      // Past the last tile loaded: load the next page, then show its first portrait.
      waitingForNext = true;
      window.htmx.trigger(nextPageLink(), "g-more");
      return;
    }
    if (i < 0 && beforeUrl()) {
      window.location.href = beforeUrl();  // the previous portrait is on an earlier page: its own page
      return;
    }
    index = Math.max(0, Math.min(tiles.length - 1, i));
    var tile = tiles[index];
    var source = tileImage(tile);
    img.src = source.currentSrc || source.src;
    img.alt = source.alt;
    img.style.transform = "";
    viewer.setAttribute("data-portrait", tile.getAttribute("data-portrait"));
    counter.textContent = fmt(gettext("%(number)s of %(total)s"), { number: number(index), total: total() });
    prevButton.disabled = index === 0 && !beforeUrl();
    nextButton.disabled = index === tiles.length - 1 && !nextPageLink();
    syncHeart();
    warm(index + 1);
    warm(index - 1);
  }

  function open(tile) {
    collect();
    var i = tiles.indexOf(tile);
    if (i < 0) return;
    viewer.hidden = false;
    document.body.classList.add("g-viewer-open");
    show(i);
    closeButton.focus();
  }

  function close() {
    if (viewer.hidden) return;
    viewer.hidden = true;
    document.body.classList.remove("g-viewer-open");
    img.removeAttribute("src");
    var tile = tiles[index];
    var link = tile && tile.querySelector(".g-tile-link");
    if (link) {
      link.focus();
      if (link.scrollIntoView) link.scrollIntoView({ block: "nearest" });
    }
  }

  function focusables() {
    return [heart, closeButton, prevButton, nextButton].filter(function (el) {
      return !el.hidden && !el.disabled && el.offsetParent !== null;
    });
  }

  // Opening: a tap on a tile (a plain link without JavaScript, or with a modifier key).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-viewer-open]");
    if (!link || !grid() || !grid().contains(link)) return;
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    open(link.closest(".g-tile"));
  });

  closeButton.addEventListener("click", close);
  prevButton.addEventListener("click", function () { show(index - 1); });
  nextButton.addEventListener("click", function () { show(index + 1); });
  stage.addEventListener("click", function (event) {
    if (event.target === stage) close();
  });

  // The viewer's heart submits the tile's heart form (htmx swaps it); the new button says the new state.
  heart.addEventListener("click", function () {
    var tile = tiles[index];
    var form = tile && tileHeartForm(tile);
    if (!form) return;
    var pressed = heart.getAttribute("aria-pressed") === "true";
    heart.setAttribute("aria-pressed", pressed ? "false" : "true");
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  });
  document.addEventListener("htmx:load", function (event) {
    var el = event.detail && event.detail.elt;
    // A tile already in the grid (a "more like me" arrival shifts the pages by one): keep the first.
    if (el && el.classList && el.classList.contains("g-tile") && el.id) {
      var same = document.querySelectorAll("#" + el.id);
      if (same.length > 1 && same[0] !== el) el.parentNode.removeChild(el);
    }
    if (!viewer.hidden) {
      collect();
      if (waitingForNext) {
        waitingForNext = false;
        show(index + 1);
      } else {
        syncHeart();
      }
    }
  });

  // Keyboard: arrows, Escape, and Tab kept inside the dialog.
  document.addEventListener("keydown", function (event) {
    if (viewer.hidden) return;
    if (event.key === "ArrowRight") {
      event.preventDefault();
      show(index + 1);
    } else if (event.key === "ArrowLeft") {
      event.preventDefault();
      show(index - 1);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    } else if (event.key === "Tab") {
      var items = focusables();
      if (!items.length) return;
      var first = items[0];
      var last = items[items.length - 1];
      if (event.shiftKey && (document.activeElement === first || !viewer.contains(document.activeElement))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (document.activeElement === last || !viewer.contains(document.activeElement))) {
        event.preventDefault();
        first.focus();
      }
    }
  });

  // Touch: swipe left / right for the next / previous portrait, down to close. Pinch-zoom is left alone.
  var start = null;
  viewer.addEventListener("touchstart", function (event) {
    if (event.touches.length !== 1) {
      start = null;
      return;
    }
    start = { x: event.touches[0].clientX, y: event.touches[0].clientY };
  }, { passive: true });
  viewer.addEventListener("touchmove", function (event) {
    if (!start || event.touches.length !== 1) return;
    var dx = event.touches[0].clientX - start.x;
    var dy = event.touches[0].clientY - start.y;
    if (Math.abs(dx) > Math.abs(dy)) img.style.transform = "translateX(" + dx / 3 + "px)";
  }, { passive: true });
  viewer.addEventListener("touchend", function (event) {
    if (!start) return;
    var touch = event.changedTouches[0];
    var dx = touch.clientX - start.x;
    var dy = touch.clientY - start.y;
    start = null;
    img.style.transform = "";
    if (Math.abs(dx) > 40 && Math.abs(dx) > Math.abs(dy) * 1.2) {
      show(dx < 0 ? index + 1 : index - 1);
    } else if (dy > 90 && dy > Math.abs(dx) * 1.5) {
      close();
    }
  });

  // "More like me": once asked, the button says so (the server refuses a second one anyway).
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target && event.target.closest && event.target.closest(".g-more-form");
    if (!form || !event.detail || !event.detail.successful) return;
    var button = form.querySelector("button");
    var label = form.querySelector(".g-more-label");
    if (button) button.disabled = true;
    if (label) label.textContent = gettext("On its way");
  });

  // Expired preview links (a page left open for long): reload once for fresh ones.
  document.addEventListener("error", function (event) {
    var target = event.target;
    if (reloaded || !target || target.tagName !== "IMG" || !target.closest(".g-grid")) return;
    if (Date.now() - loadedAt > 5 * 60 * 1000) {
      reloaded = true;
      window.location.reload();
    }
  }, true);
})();
