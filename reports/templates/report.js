/* fleetscan report: optional progressive enhancement (sort, filter, expand).
   The report is complete without it. It only reads textContent and moves
   existing rows: it never turns data into markup. */
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function cellValue(row, idx) {
    var cell = row.cells[idx];
    if (!cell) { return ""; }
    var v = cell.getAttribute("data-sort");
    return v !== null ? v : cell.textContent.trim();
  }

  function compare(a, b) {
    var na = Number(a), nb = Number(b);
    if (a !== "" && b !== "" && !isNaN(na) && !isNaN(nb)) { return na - nb; }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    var headers = table.tHead.rows[0].cells;
    each(headers, function (th, idx) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        each(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(cellValue(r1, idx), cellValue(r2, idx));
          return asc ? c : -c;
        });
        each(rows, function (r) { body.appendChild(r); });
      });
    });
  }

  function makeFilterable(table) {
    if (!table.tBodies.length) { return; }
    var box = table.parentNode;
    var bar = document.createElement("div");
    bar.className = "filter-bar";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "filter";
    input.placeholder = "Filter rows\u2026";
    input.setAttribute("aria-label", "Filter " + (table.getAttribute("aria-label") || "table"));
    var count = document.createElement("span");
    count.className = "filter-count";
    count.setAttribute("aria-live", "polite");
    bar.appendChild(input);
    bar.appendChild(count);
    box.parentNode.insertBefore(bar, box);
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      var rows = table.tBodies[0].rows;
      var shown = 0;
      each(rows, function (r) {
        var hit = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) { shown += 1; }
      });
      count.textContent = q ? shown + " of " + rows.length + " rows" : "";
    });
  }

  function addExpandTools() {
    var section = document.getElementById("details");
    if (!section) { return; }
    var details = section.querySelectorAll("details");
    if (!details.length) { return; }
    var tools = document.createElement("div");
    tools.className = "tools";
    [["Expand all", true], ["Collapse all", false]].forEach(function (spec) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = spec[0];
      b.addEventListener("click", function () { each(details, function (d) { d.open = spec[1]; }); });
      tools.appendChild(b);
    });
    var heading = section.querySelector("h2");
    heading.parentNode.insertBefore(tools, heading.nextSibling);
  }

  function openTarget() {
    var id = window.location.hash.slice(1);
    var el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }

  each(document.querySelectorAll("table[data-sortable]"), makeSortable);
  each(document.querySelectorAll("table[data-filterable]"), makeFilterable);
  addExpandTools();
  openTarget();
  window.addEventListener("hashchange", openTarget);
  // Print everything: closed <details> would hide host data on paper.
  var reopened = [];
  window.addEventListener("beforeprint", function () {
    each(document.querySelectorAll("details:not([open])"), function (d) {
      d.open = true;
      reopened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    reopened.forEach(function (d) { d.open = false; });
    reopened = [];
  });
}());
