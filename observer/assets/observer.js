// Live tailing for the log and file viewers: polls the page's data URL
// (/logdata/... or /filedata/...) for {offset, length, data} chunks and
// appends them, following the file as it grows. Text goes in as text
// nodes, never as HTML.
(function () {
  "use strict";
  var pre = document.getElementById("pailer");
  if (!pre) { return; }
  var src = pre.getAttribute("data-src");
  var status = document.getElementById("pailer-status");
  var follow = document.getElementById("follow");
  var CHUNK = 65536;        // bytes per request
  var TAIL = 262144;        // bytes shown of an existing file at first
  var KEEP = 2097152;       // characters kept in the page
  var offset = 0;

  function get(off, len) {
    var sep = src.indexOf("?") < 0 ? "?" : "&";
    return fetch(src + sep + "offset=" + off + "&length=" + len, {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  function append(text) {
    pre.appendChild(document.createTextNode(text));
    var total = pre.textContent.length;
    if (total > KEEP) {
      pre.textContent = pre.textContent.slice(total - KEEP);
    }
    if (follow && follow.checked) { pre.scrollTop = pre.scrollHeight; }
  }

  function poll() {
    get(offset, CHUNK).then(function (c) {
      if (c.offset < offset) {         // truncated: start over from its end
        pre.textContent = "";
      }
      if (c.length > 0) { append(c.data); }
      offset = c.offset + c.length;
      status.textContent = offset + " bytes";
      setTimeout(poll, c.length === CHUNK ? 0 : 1000);
    }).catch(function (e) {
      status.textContent = "error: " + e.message + " (retrying)";
      setTimeout(poll, 3000);
    });
  }

  get(-1, 0).then(function (end) {
    offset = Math.max(0, end.offset - TAIL);
    if (offset > 0) { append("[" + offset + " earlier bytes not shown]\n"); }
    poll();
  }).catch(function (e) {
    status.textContent = "error: " + e.message;
  });
}());
