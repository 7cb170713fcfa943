// Follows an execution's output live: the API's server-sent events
// (`output` chunks after the last one shown, then `end`), read with the
// session cookie. Written by hand: a dozen lines need no framework.
(function () {
  var out = document.getElementById("output");
  if (!out || out.dataset.finished === "true") { return; }
  var id = out.dataset.execution;
  var events = new EventSource("/api/v1/executions/" + id + "/output?after=" + out.dataset.after);
  var after = Number(out.dataset.after);
  events.addEventListener("output", function (e) {
    var chunk = JSON.parse(e.data);
    if (chunk.seq <= after) { return; }
    after = chunk.seq;
    out.textContent += chunk.text + "\n"; // a chunk is a line, without its end
    out.scrollTop = out.scrollHeight;
  });
  events.addEventListener("end", function (e) {
    events.close();
    var status = JSON.parse(e.data).status;
    var badge = document.getElementById("status");
    badge.textContent = status;
    badge.className = "status status-" + status;
    // The rest of the page (result, files, times) as it now is.
    window.setTimeout(function () { window.location.reload(); }, 300);
  });
})();
