/* Multi-file uploader with per-file progress, for forms marked `data-uploader`.
 *
 * Each file is sent on its own XMLHttpRequest (field `files`) so that every file has its own progress bar and
 * its own answer; at most 3 go at once. The endpoint answers JSON: {files: [{name, status, status_label,
 * reason, ...}]} or {error: {code, message}}. Without JavaScript the same form posts every file at once.
 *
 * A file that could not be sent (network error, a refusal that may pass on a second try, a server error) keeps
 * its reason and gets a Retry button that sends it again; a file the server judged (a verdict) gets none.
 *
 * Options (data attributes on the form):
 *   data-autosend          send as soon as files are chosen (phones: the camera roll picker returns here)
 *   data-refresh="URL"     when every upload has finished, GET it with htmx and swap it into
 *   data-refresh-target    this element (outerHTML), e.g. the validation progress or the photo grid
 */
(function () {
  "use strict";

  var CONCURRENCY = 3;

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : null;
  }

  function setState(item, state, text) {
    item.className = "upload-item upload-" + state;
    item.querySelector(".upload-status").textContent = text;
    var retry = item.querySelector(".upload-retry");
    if (retry && state !== "error") retry.remove();
  }

  // Answers worth a second try: the network, the server, a busy server, a timeout. A 4xx with a reason (not a
  // photo, too big, the link is closed) would only be refused again.
  function retryable(status) {
    return status === 0 || status === 408 || status === 429 || status >= 500;
  }

  // Words in the page's language: the client's page loads the catalogue script (tenants/i18n.py
  // client_js_catalog) first, which defines gettext and interpolate; elsewhere (the studio's pages), English.
  var gettext = window.gettext || function (s) { return s; };
  function fmt(s, args) {
    if (window.interpolate) return window.interpolate(s, args, true);
    return s.replace(/%\((\w+)\)s/g, function (_, k) { return String(args[k]); });
  }

  function describe(file) {
    var entry = file.files && file.files[0];
    if (!entry) return ["done", gettext("Uploaded")];
    if (entry.status === "rejected") return ["rejected", fmt(gettext("Rejected: %(reason)s"), { reason: entry.reason || gettext("this file can't be used") })];
    if (entry.status === "accepted") return ["accepted", gettext("Accepted")];
    return ["done", gettext("Uploaded, checking…")];
  }

  function init(form) {
    var input = form.querySelector("input[type=file]");
    var list = form.querySelector(".upload-list");
    var zone = form.querySelector(".dropzone");
    var queue = [];
    var active = 0;
    var outstanding = 0;

    function finishedAll() {
      var url = form.getAttribute("data-refresh");
      var target = form.getAttribute("data-refresh-target");
      if (url && target && window.htmx && document.querySelector(target)) {
        window.htmx.ajax("GET", url, { target: target, swap: "outerHTML" });
      }
      form.dispatchEvent(new CustomEvent("uploads:done", { bubbles: true }));
    }

    function next() {
      while (active < CONCURRENCY && queue.length) {
        send(queue.shift());
      }
      if (active === 0 && queue.length === 0 && outstanding === 0) finishedAll();
    }

    function send(job) {
      active += 1;
      var xhr = new XMLHttpRequest();
      var data = new FormData();
      data.append("files", job.file, job.file.name);
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      var token = csrfToken(form);
      if (token) xhr.setRequestHeader("X-CSRFToken", token);
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          job.bar.value = Math.round((event.loaded / event.total) * 100);
          job.bar.textContent = job.bar.value + "%";
        }
      });
      xhr.upload.addEventListener("load", function () {
        job.bar.value = 100;
        setState(job.item, "sending", gettext("Processing…"));
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300 && body) {
          var verdict = describe(body);
          setState(job.item, verdict[0], verdict[1]);
          // A per-link cap ("You can add N more") counts down as files arrive.
          var remaining = form.querySelector("[data-remaining]");
          if (remaining && body.files) {
            remaining.textContent = String(Math.max(0, parseInt(remaining.textContent, 10) - body.files.length));
          }
        } else {
          var message = body && body.error && body.error.message;
          if (!message && xhr.status === 413) message = gettext("This file is too big.");
          if (!message && xhr.status === 403) message = gettext("The upload was refused: reload the page and try again.");
          if (!message && xhr.status >= 500) message = fmt(gettext("The server could not store this photo (error %(status)s)."), { status: xhr.status });
          fail(job, message || fmt(gettext("Upload failed (error %(status)s)."), { status: xhr.status }), retryable(xhr.status));
        }
      });
      xhr.addEventListener("error", function () { fail(job, gettext("Network error: check your connection."), true); });
      xhr.addEventListener("abort", function () { fail(job, gettext("Upload cancelled."), true); });
      xhr.addEventListener("loadend", function () {
        active -= 1;
        outstanding -= 1;
        next();
      });
      setState(job.item, "sending", gettext("Uploading…"));
      xhr.send(data);
    }

    function fail(job, message, canRetry) {
      setState(job.item, "error", message);
      if (!canRetry || job.item.querySelector(".upload-retry")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-small upload-retry";
      button.textContent = gettext("Retry");
      button.setAttribute("aria-label", fmt(gettext("Retry uploading %(name)s"), { name: job.file.name }));
      button.addEventListener("click", function () {
        button.remove();
        job.bar.value = 0;
        setState(job.item, "waiting", gettext("Waiting…"));
        queue.push(job);
        outstanding += 1;
        next();
      });
      job.item.appendChild(button);
    }

    function add(files) {
      if (!files || !files.length) return;
      for (var i = 0; i < files.length; i += 1) {
        var file = files[i];
        var item = document.createElement("li");
        var name = document.createElement("span");
        name.className = "upload-name";
        name.textContent = file.name;
        var bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", fmt(gettext("Upload progress of %(name)s"), { name: file.name }));
        var status = document.createElement("span");
        status.className = "upload-status";
        item.appendChild(name);
        item.appendChild(bar);
        item.appendChild(status);
        list.appendChild(item);
        setState(item, "waiting", gettext("Waiting…"));
        queue.push({ file: file, item: item, bar: bar });
        outstanding += 1;
      }
      next();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      add(input.files);
      input.value = "";
    });
    if (form.hasAttribute("data-autosend")) {
      input.addEventListener("change", function () {
        add(input.files);
        input.value = "";
      });
      // Files chosen before this script arrived (a slow phone connection): send them now.
      if (input.files && input.files.length) {
        add(input.files);
        input.value = "";
      }
    }
    if (zone) {
      ["dragenter", "dragover"].forEach(function (type) {
        zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("is-dragging"); });
      });
      ["dragleave", "drop"].forEach(function (type) {
        zone.addEventListener(type, function () { zone.classList.remove("is-dragging"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        add(event.dataTransfer && event.dataTransfer.files);
      });
    }
  }

  function initCopy(button) {
    button.addEventListener("click", function () {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) return;
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy link"; }, 2000); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
      } else {
        field.select();
        try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected for a manual copy */ }
      }
    });
  }

  function start() {
    document.querySelectorAll("form[data-uploader]").forEach(init);
    document.querySelectorAll("[data-copy]").forEach(initCopy);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
