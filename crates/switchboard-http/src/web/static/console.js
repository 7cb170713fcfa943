// The chat console: each line is POSTed to /ui/console, whose answer is a
// stream of server-sent events (`post`, `update`, `file`) read from the
// response body — EventSource only makes GET requests, so the few lines
// that split the stream into events are written here.
(function () {
  var form = document.getElementById("console-form");
  var log = document.getElementById("log");
  var input = document.getElementById("line");
  var shown = {};

  function say(cls, text) {
    var div = document.createElement("div");
    div.className = "console-msg " + cls;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function handle(name, data) {
    var e = JSON.parse(data);
    if (name === "post") {
      shown[e.id] = say("bot", e.text);
    } else if (name === "update" && shown[e.id]) {
      shown[e.id].textContent = e.text;
    } else if (name === "file") {
      say("bot file", e.title + " (" + e.filename + ")" + (e.text ? "\n" + e.text : ""));
    }
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    say("me", "> " + text);
    fetch("/ui/console", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": form.dataset.csrf },
      body: JSON.stringify({ text: text })
    }).then(function (resp) {
      if (!resp.ok) { say("error", "Refused (" + resp.status + ")"); return; }
      var reader = resp.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { return; }
          buffer += decoder.decode(chunk.value, { stream: true });
          var end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            var name = "message", data = [];
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) { name = line.slice(6).trim(); }
              else if (line.indexOf("data:") === 0) { data.push(line.slice(5).replace(/^ /, "")); }
            });
            if (data.length) { handle(name, data.join("\n")); }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (err) { say("error", "The console could not be reached: " + err); });
  });
})();
