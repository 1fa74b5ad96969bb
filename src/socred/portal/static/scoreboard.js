// The live board: new published violations arrive as server-sent events (no reload, no inline script).
(function () {
  "use strict";
  var list = document.getElementById("board");
  if (!list || !window.EventSource) { return; }
  var status = document.getElementById("board-status");
  var seqEl = document.getElementById("board-seq");
  var max = parseInt(list.getAttribute("data-max") || "20", 10);
  var source = new EventSource(list.getAttribute("data-stream"));

  function setStatus(live) {
    if (!status) { return; }
    status.textContent = status.getAttribute(live ? "data-live" : "data-offline");
    document.body.classList.toggle("offline", !live);
  }

  source.addEventListener("open", function () { setStatus(true); });
  source.addEventListener("error", function () { setStatus(false); });
  source.addEventListener("ping", function (e) {
    setStatus(true);
    if (seqEl && e.lastEventId) { seqEl.textContent = e.lastEventId; }
  });
  source.addEventListener("violation", function (e) {
    setStatus(true);
    var data = JSON.parse(e.data);
    if (list.querySelector('[data-seq="' + data.seq + '"]')) { return; }
    var holder = document.createElement("template");
    holder.innerHTML = data.html.trim();  // rendered and escaped by the server's templates
    var item = holder.content.firstElementChild;
    if (!item) { return; }
    list.insertBefore(item, list.firstChild);
    while (list.children.length > max) { list.removeChild(list.lastChild); }
    var empty = document.getElementById("board-empty");
    if (empty) { empty.remove(); }
    if (seqEl) { seqEl.textContent = String(data.seq); }
    window.setTimeout(function () { item.classList.remove("fresh"); }, 4000);
  });
})();
