// cs3collab: the live notebook view behind an OCM webapp uri (see cs3collab/service/webapp_live.py).
// Our own code; no library. Everything from the notebook is put in the page as text (textContent /
// value), never as markup, and the page's CSP runs no other script.
"use strict";
(function () {
  const main = document.getElementById("notebook");
  if (!main) return;
  const shareId = main.dataset.share;
  const token = main.dataset.token;
  const status = document.getElementById("status");
  const cellsBox = document.getElementById("cells");
  const sentSource = new Map(); // cell id -> source last sent by this page
  const inFlight = new Map(); // cell id -> number of this page's last edit of it, until the server says it is in
  let edits = 0;
  const shown = new Map(); // cell id -> source last taken from the room
  const timers = new Map();
  let writable = false;

  function say(text) {
    status.textContent = text;
  }

  function send(socket, payload) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
  }

  function outputsOf(cell) {
    const box = document.createElement("div");
    box.className = "outputs";
    for (const text of cell.outputs) {
      const pre = document.createElement("pre");
      pre.className = "out";
      pre.textContent = text;
      box.appendChild(pre);
    }
    return box;
  }

  // Put ``row`` right after ``previous`` (first when null). Only a row out of
  // place moves: moving an element in the DOM takes the focus from it, and the
  // keys the person types next would go nowhere. A cell that does move (cells
  // reordered by someone else) keeps its focus and selection.
  function place(row, previous) {
    const here = previous ? previous.nextElementSibling : cellsBox.firstElementChild;
    if (here === row) return;
    const source = row.querySelector("textarea");
    const focused = source && document.activeElement === source;
    const start = focused ? source.selectionStart : 0, end = focused ? source.selectionEnd : 0;
    if (previous) previous.after(row); else cellsBox.prepend(row);
    if (focused) {
      source.focus();
      source.setSelectionRange(start, end);
    }
  }

  function render(socket, doc) {
    const before = document.getElementById("static");
    if (before) before.remove(); // the server-rendered copy, replaced by the live one
    writable = doc.writable;
    say(doc.writable ? "Live: you can edit this notebook." : "Live: you can view this notebook (" + doc.role + ").");
    const seen = new Set();
    let previous = null;
    for (const cell of doc.cells) {
      seen.add(cell.id);
      let row = cellsBox.querySelector('[data-cell="' + CSS.escape(cell.id) + '"]');
      if (!row) {
        row = document.createElement("section");
        row.className = "cell";
        row.dataset.cell = cell.id;
        const source = document.createElement("textarea");
        source.className = "source";
        source.spellcheck = false;
        source.value = cell.source;
        shown.set(cell.id, cell.source);
        source.addEventListener("input", function () {
          if (!writable) return;
          clearTimeout(timers.get(cell.id));
          timers.set(cell.id, setTimeout(function () {
            edits += 1;
            sentSource.set(cell.id, source.value);
            inFlight.set(cell.id, edits);
            send(socket, { type: "source", cell: cell.id, source: source.value, n: edits });
          }, 150));
        });
        row.appendChild(source);
        row.appendChild(outputsOf(cell));
      }
      const source = row.querySelector("textarea");
      source.readOnly = !doc.writable;
      source.rows = Math.max(2, cell.source.split("\n").length);
      // a change from elsewhere replaces the text unless this tab has typed something not sent yet
      // (it is sent when the typing pauses, and the next notebook from the room includes it), or
      // its last edit of the cell is not in this notebook yet (rendered before that edit arrived:
      // taking it would undo the typing, and keys pressed meanwhile would build on the old text)
      if (inFlight.has(cell.id) && inFlight.get(cell.id) <= (doc.acked || 0)) inFlight.delete(cell.id);
      const unsent = source.value !== shown.get(cell.id) && source.value !== sentSource.get(cell.id);
      const keep = unsent || inFlight.has(cell.id);
      if (!keep && source.value !== cell.source) {
        const start = source.selectionStart, end = source.selectionEnd;
        source.value = cell.source;
        if (document.activeElement === source) source.setSelectionRange(start, end);
      }
      if (!keep) shown.set(cell.id, cell.source);
      row.replaceChild(outputsOf(cell), row.querySelector(".outputs"));
      place(row, previous);
      previous = row;
    }
    for (const row of Array.from(cellsBox.querySelectorAll("[data-cell]"))) {
      if (!seen.has(row.dataset.cell)) row.remove();
    }
    main.dataset.state = "live";
  }

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + "/api/collaboration/ocm/" +
    encodeURIComponent(shareId) + "/live");
  socket.addEventListener("open", function () {
    send(socket, { type: "auth", token: token });
    say("Joining the live notebook…");
  });
  socket.addEventListener("message", function (event) {
    let doc;
    try { doc = JSON.parse(event.data); } catch (e) { return; }
    if (doc.type === "notebook") render(socket, doc);
    else if (doc.type === "error") say(doc.message);
  });
  socket.addEventListener("close", function () {
    main.dataset.state = "closed";
    for (const box of cellsBox.querySelectorAll("textarea")) box.readOnly = true;
    if (!status.textContent.startsWith("Live")) return;
    say("Disconnected: reload the page from your site to join again.");
  });
})();
