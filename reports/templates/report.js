/* fleetscan report: progressive enhancement (sort, filter, pages, host
   details on demand). The first screen is complete HTML without it. Data is
   read from the embedded JSON block (#fleetscan-data) and shown with
   textContent only: it never turns data into markup. */
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  var PAGE = 100;
  var D = null;

  function data() {
    if (D === null) {
      var block = document.getElementById("fleetscan-data");
      D = block ? JSON.parse(block.textContent) : { s: [""], k: [], h: [], f: [] };
    }
    return D;
  }
  function S(i) { return data().s[i || 0] || ""; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function clip(text, limit) {
    return text.length <= limit ? text
      : text.slice(0, limit) + "\u2026 [" + (text.length - limit) + " more characters not shown]";
  }
  function duration(seconds) {
    if (seconds < 60) { return seconds.toFixed(1) + "s"; }
    var m = Math.round(seconds), sec = m % 60; m = (m - sec) / 60;
    if (m < 60) { return m + "m " + (sec < 10 ? "0" : "") + sec + "s"; }
    var h = Math.floor(m / 60); m = m % 60;
    return h + "h " + (m < 10 ? "0" : "") + m + "m";
  }

  var SEVERITIES = ["info", "low", "medium", "high", "critical"];
  var VERDICT = { "compliant": ["\u2714", "compliant"], "non-compliant": ["\u2716", "non-compliant"],
                  "not-scanned": ["?", "not fully scanned"] };
  function statusBadge(st) {
    var icon = st === "ok" ? "\u2714" : st === "partial" ? "\u25d0" : "\u2716";
    return el("span", "badge st-" + st, icon + " " + st);
  }
  function verdictBadge(v) {
    var spec = VERDICT[v] || ["?", v];
    return el("span", "badge vd-" + v, spec[0] + " " + spec[1]);
  }
  function severityBadge(level) {
    var name = SEVERITIES[level] || String(level);
    return el("span", "badge sev sev-" + name, name);
  }
  function code(text, cls) { return el("code", cls || "", text); }
  function muted(text) { return el("span", "muted", text); }

  /* --- rows from the data ------------------------------------------------ */

  function hostOf(i) {
    var h = data().h[i];
    return {
      i: i, name: S(h[0]), address: S(h[1]), port: h[2] || 0, platform: S(h[3]),
      status: S(h[4]), verdict: S(h[5]), collector: S(h[6]), listeners: h[7] || 0,
      active: h[8] || 0, waived: h[9] || 0, message: S(h[10]), groups: (h[11] || []).map(S),
      transport: S(h[12]), duration: (h[13] || 0) / 10, ls: h[14] || [], unparsed: h[15] || [],
      evidence: h[16] || [], unparsedTotal: h[17] || 0
    };
  }
  function listenerOf(row) {
    var kind = data().k[row[0]] || [0, 4, 0, 0];
    var procs = [], flat = row[4] || [];
    for (var j = 0; j < flat.length; j += 3) {
      procs.push({ name: S(flat[j]), pid: flat[j + 1], user: S(flat[j + 2]) });
    }
    return { proto: S(kind[0]), family: kind[1], state: S(kind[2]), bind: S(kind[3]),
             address: S(row[1]), port: row[2], line: row[3], procs: procs, raw: S(row[5]),
             zone: S(row[6]), findings: row[7] || [] };
  }
  function findingOf(n) {
    var f = data().f[n];
    return { n: n, severity: f[0], host: f[1], rule: S(f[2]), kind: S(f[3]),
             listener: f[4] === undefined ? -1 : f[4], message: S(f[5]), gating: !!f[6],
             waiver: f[7] ? { id: S(f[7]), expires: S(f[8]), owner: S(f[9]), why: S(f[10]) } : null };
  }
  function addrText(x) {
    var a = x.family === 6 ? "[" + x.address + (x.zone ? "%" + x.zone : "") + "]"
      : x.address + (x.zone ? "%" + x.zone : "");
    return x.proto + " " + a + ":" + x.port;
  }
  function procList(procs, full) {
    if (!procs.length) { return muted("unknown"); }
    var ul = el("ul", "procs");
    procs.forEach(function (p) {
      var li = add(ul, el("li"));
      add(li, el("span", "pname", p.name));
      if (full || p.pid !== null) {
        var extra = " pid " + (p.pid !== null ? p.pid : "?");
        if (full || p.user) { extra += ", " + (p.user || "user ?"); }
        add(li, muted(extra));
      }
    });
    return ul;
  }
  function hostLink(i) {
    var a = el("a", "", i >= 0 ? S(data().h[i][0]) : "?");
    a.href = "#host-" + (i + 1);
    return a;
  }
  function td(row, child, cls, sort) {
    var cell = add(row, el("td", cls || ""));
    if (child !== null && child !== undefined) {
      if (typeof child === "object") { cell.appendChild(child); } else { cell.textContent = String(child); }
    }
    if (sort !== undefined) { cell.setAttribute("data-sort", String(sort)); }
    return cell;
  }

  function hostRow(i) {
    var h = hostOf(i), tr = el("tr");
    td(tr, hostLink(i), "host");
    td(tr, code(h.address + (h.port ? ":" + h.port : ""), "nowrap"));
    td(tr, h.platform || "\u2014");
    td(tr, statusBadge(h.status), "", h.status);
    td(tr, verdictBadge(h.verdict), "", h.verdict);
    td(tr, h.collector ? code(h.collector, "nowrap") : "\u2014");
    td(tr, h.listeners, "r");
    var f = td(tr, h.active, "r", h.active);
    if (h.waived) { f.appendChild(document.createTextNode(" ")); add(f, muted("+" + h.waived + " waived")); }
    td(tr, clip(h.message, 300), "msg");
    return tr;
  }

  function listenerAddr(hostIdx, pos) {
    if (pos < 0) { return muted("host"); }
    return code(addrText(listenerOf(hostOf(hostIdx).ls[pos])), "addr");
  }
  function findingRow(n) {
    var f = findingOf(n), tr = el("tr");
    if (f.waiver) { tr.className = "waived"; }
    if (f.gating) { tr.className += " gating"; }
    td(tr, severityBadge(f.severity), "", f.severity);
    td(tr, hostLink(f.host), "host");
    var rule = td(tr, code(f.rule), "rule");
    if (f.kind !== "listener") { rule.appendChild(document.createTextNode(" ")); add(rule, el("span", "tag", f.kind)); }
    td(tr, listenerAddr(f.host, f.listener), "lst");
    var x = f.listener >= 0 ? listenerOf(hostOf(f.host).ls[f.listener]) : null;
    td(tr, x ? procList(x.procs, false) : "\u2014", "prc");
    td(tr, clip(f.message, 1000), "msg");
    td(tr, x && x.raw ? code(clip(x.raw, 500), "raw") : "\u2014", "evd");
    if (f.waiver) {
      var w = el("div", "waiver");
      add(w, code(f.waiver.id));
      add(w, muted(" expires " + (f.waiver.expires || "never")));
      add(w, el("div", "just", clip(f.waiver.why, 500)));
      td(tr, w);
    } else { td(tr, muted("\u2014")); }
    return tr;
  }

  /* --- pages: the hosts and findings tables beyond their first page ------ */

  function makePager(table, count, renderRow, searchText, sortKey) {
    var order = [], i;
    for (i = 0; i < count; i += 1) { order.push(i); }
    var shown = order, page = 0, search = null;
    var box = table.parentNode;
    var bar = el("div", "filter-bar pager");
    var input = add(bar, el("input", "filter"));
    input.type = "search";
    input.placeholder = "Filter rows\u2026";
    input.setAttribute("aria-label", "Filter " + (table.getAttribute("aria-label") || "table"));
    var prev = add(bar, el("button", "", "\u2190 Previous"));
    var label = add(bar, el("span", "filter-count"));
    var next = add(bar, el("button", "", "Next \u2192"));
    prev.type = next.type = "button";
    label.setAttribute("aria-live", "polite");
    box.parentNode.insertBefore(bar, box);
    var note = box.parentNode.querySelector("[data-paged-note]");
    if (note) { note.hidden = true; }

    function draw() {
      var pages = Math.max(1, Math.ceil(shown.length / PAGE));
      page = Math.min(Math.max(page, 0), pages - 1);
      var body = table.tBodies[0], fresh = el("tbody");
      shown.slice(page * PAGE, (page + 1) * PAGE).forEach(function (k) { fresh.appendChild(renderRow(k)); });
      table.replaceChild(fresh, body);
      label.textContent = shown.length + " of " + count + " rows \u00b7 page " + (page + 1) + " of " + pages;
      prev.disabled = page === 0;
      next.disabled = page >= pages - 1;
    }
    prev.addEventListener("click", function () { page -= 1; draw(); });
    next.addEventListener("click", function () { page += 1; draw(); });
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      if (search === null) { search = order.map(function (k) { return searchText(k).toLowerCase(); }); }
      shown = q ? order.filter(function (k) { return search[k].indexOf(q) !== -1; }) : order.slice();
      page = 0;
      draw();
    });
    sortButtons(table, function (col, asc) {
      shown.sort(function (a, b) {
        var c = compare(String(sortKey(a, col)), String(sortKey(b, col)));
        return asc ? c : -c;
      });
      page = 0;
      draw();
    });
    draw();
  }

  function hostSearch(i) {
    var h = hostOf(i);
    return [h.name, h.address, h.platform, h.status, h.verdict, h.collector, h.message].join(" ");
  }
  function hostKey(i, col) {
    var h = hostOf(i);
    return [h.name, h.address, h.platform, h.status, h.verdict, h.collector, h.listeners,
            h.active, h.message][col];
  }
  function findingSearch(n) {
    var f = findingOf(n);
    return [SEVERITIES[f.severity], S(data().h[f.host] ? data().h[f.host][0] : 0), f.rule, f.message,
            f.waiver ? f.waiver.id : ""].join(" ");
  }
  function findingKey(n, col) {
    var f = findingOf(n);
    return [f.severity, S(data().h[f.host] ? data().h[f.host][0] : 0), f.rule, f.listener,
            "", f.message, "", f.waiver ? f.waiver.id : ""][col];
  }

  /* --- host details on demand ------------------------------------------- */

  function detailsFor(i) {
    var h = hostOf(i);
    var d = el("details", "host-detail");
    d.id = "host-" + (i + 1);
    var sum = add(d, el("summary"));
    add(sum, el("span", "hname", h.name));
    sum.appendChild(document.createTextNode(" "));
    add(sum, statusBadge(h.status));
    sum.appendChild(document.createTextNode(" "));
    add(sum, verdictBadge(h.verdict));
    add(sum, muted(" " + h.listeners + " listener" + (h.listeners === 1 ? "" : "s") + ", " +
                   h.active + " active finding" + (h.active === 1 ? "" : "s")));
    var body = add(d, el("div", "detail-body"));
    var dl = add(body, el("dl", "meta small"));
    [["Address", code(h.address + (h.port ? ":" + h.port : ""))], ["Groups", h.groups.join(", ") || "\u2014"],
     ["Platform", h.platform || "unknown"], ["Collector", h.collector ? code(h.collector) : "none"],
     ["Transport", h.transport], ["Scan time", duration(h.duration)]].forEach(function (kv) {
      var div = add(dl, el("div"));
      add(div, el("dt", "", kv[0]));
      var dd = add(div, el("dd"));
      if (typeof kv[1] === "object") { dd.appendChild(kv[1]); } else { dd.textContent = kv[1]; }
    });
    if (h.message) {
      var p = add(body, el("p", "host-msg" + (h.status === "ok" ? "" : " bad")));
      add(p, el("strong", "", h.status + ":"));
      p.appendChild(document.createTextNode(" " + clip(h.message, 2000)));
    }
    add(body, el("h4", "", "Listeners"));
    if (h.ls.length) {
      var wrap = add(body, el("div", "scroll"));
      var table = add(wrap, el("table", "data compact"));
      table.setAttribute("aria-label", "Listeners of " + h.name);
      var hr = add(add(table, el("thead")), el("tr"));
      ["Proto", "Family", "Address", "Port", "State", "Bind", "Processes", "Findings", "Line", "Raw"]
        .forEach(function (t) { add(hr, el("th", t === "Port" || t === "Line" ? "r" : "", t)).scope = "col"; });
      var tb = add(table, el("tbody"));
      h.ls.forEach(function (row) {
        var x = listenerOf(row), tr = add(tb, el("tr"));
        td(tr, x.proto);
        td(tr, "IPv" + x.family);
        td(tr, code(x.address + (x.zone ? "%" + x.zone : "")));
        td(tr, x.port, "r");
        td(tr, x.state);
        td(tr, el("span", "bind bind-" + x.bind, x.bind));
        td(tr, procList(x.procs, true), "prc");
        var fc = td(tr, null);
        if (!x.findings.length) { add(fc, muted("\u2014")); }
        x.findings.forEach(function (n) {
          var f = findingOf(n), div = add(fc, el("div", "lf"));
          add(div, severityBadge(f.severity));
          div.appendChild(document.createTextNode(" "));
          add(div, code(f.rule));
          if (f.waiver) { div.appendChild(document.createTextNode(" (waived)")); }
        });
        td(tr, x.line >= 0 ? x.line : "", "r");
        td(tr, x.raw ? code(x.raw, "raw") : muted("in report.json"));
      });
    } else {
      add(body, el("p", "empty", h.status === "ok" || h.status === "partial"
        ? "No listening sockets." : "Not scanned: no listener data."));
    }
    if (h.unparsed.length) {
      add(body, el("h4", "", "Unparsed lines (" + h.unparsedTotal + ")"));
      var ut = add(add(body, el("div", "scroll")), el("table", "data compact lines"));
      var ub = add(ut, el("tbody"));
      h.unparsed.forEach(function (u) {
        var tr = add(ub, el("tr"));
        td(tr, u[0], "r");
        td(tr, code(S(u[1]), "raw"));
      });
      if (h.unparsedTotal > h.unparsed.length) {
        add(body, el("p", "hint", (h.unparsedTotal - h.unparsed.length) +
                     " more unparsed lines not shown (see report.json)."));
      }
    }
    if (h.evidence.length) {
      add(body, el("h4", "", "Commands run"));
      h.evidence.forEach(function (e) {
        var div = add(body, el("div", "evidence"));
        var p = add(div, el("p"));
        add(p, code(S(e[0]), "cmd"));
        var exit = e[1] === undefined || e[1] === null ? "none" : e[1];
        add(p, el("span", "tag" + (exit !== 0 ? " bad" : ""), "exit " + exit));
        add(p, muted(duration(e[2] || 0) + (e[3] ? ", output truncated" : "")));
        if (e[4]) { add(div, el("pre", "stderr", S(e[4]))); }
      });
    }
    return d;
  }

  function showHost(id) {
    var m = /^host-(\d+)$/.exec(id);
    var existing = document.getElementById(id);
    if (!existing && m) {
      var i = Number(m[1]) - 1;
      if (i >= 0 && i < data().h.length) {
        existing = detailsFor(i);
        var section = document.getElementById("details");
        if (section) { section.appendChild(existing); }
      }
    }
    if (existing && existing.tagName === "DETAILS") {
      existing.open = true;
      existing.scrollIntoView();
    }
  }

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

  /* A sort button in every header cell; onSort(column, ascending). */
  function sortButtons(table, onSort) {
    var headers = table.tHead.rows[0].cells;
    each(headers, function (th, col) {
      var button = el("button", "sort");
      button.type = "button";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        each(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        onSort(col, asc);
      });
    });
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    sortButtons(table, function (idx, asc) {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var c = compare(cellValue(r1, idx), cellValue(r2, idx));
        return asc ? c : -c;
      });
      each(rows, function (r) { body.appendChild(r); });
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
    if (id) { showHost(id); }
  }

  function paged(table) {
    var total = Number(table.getAttribute("data-total") || 0);
    return table.hasAttribute("data-pager") && table.tBodies.length &&
      total > table.tBodies[0].rows.length;
  }
  each(document.querySelectorAll("table[data-sortable]"), function (t) { if (!paged(t)) { makeSortable(t); } });
  each(document.querySelectorAll("table[data-filterable]"), function (t) { if (!paged(t)) { makeFilterable(t); } });
  each(document.querySelectorAll("table[data-pager]"), function (t) {
    if (!paged(t)) { return; }
    if (t.getAttribute("data-pager") === "hosts") {
      makePager(t, data().h.length, hostRow, hostSearch, hostKey);
    } else {
      makePager(t, data().f.length, findingRow, findingSearch, findingKey);
    }
  });
  addExpandTools();
  openTarget();
  window.addEventListener("hashchange", openTarget);
  // when the first screen is ready, in ms since navigation (bench/reports.py reads it)
  document.documentElement.setAttribute("data-ready-ms", String(Math.round(performance.now())));
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
