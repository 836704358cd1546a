/* Leaderboard site: sortable tables, filters, column toggle. Plain script, no modules (works from file://). */
(function () {
  "use strict";

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) { return ""; }
    var value = cell.getAttribute("data-sort");
    return (value === null ? cell.textContent : value).trim();
  }

  function isNumber(text) { return text !== "" && isFinite(Number(text)); }

  function sortBy(table, th) {
    var index = th.cellIndex;
    var direction = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    each(table.tHead.rows[0].cells, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row) {
      return { row: row, value: cellValue(row, index), at: Number(row.getAttribute("data-index")) };
    });
    var numeric = keyed.every(function (k) { return k.value === "" || isNumber(k.value); });
    var sign = direction === "ascending" ? 1 : -1;
    keyed.sort(function (a, b) {
      var emptyA = a.value === "", emptyB = b.value === "";
      if (emptyA || emptyB) { return emptyA === emptyB ? a.at - b.at : (emptyA ? 1 : -1); }  // empty last
      var c = numeric ? Number(a.value) - Number(b.value)
        : a.value.localeCompare(b.value, undefined, { numeric: true, sensitivity: "base" });
      return c !== 0 ? sign * c : a.at - b.at;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  function setUpSorting(table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    each(table.tBodies[0].rows, function (row, i) { row.setAttribute("data-index", String(i)); });
    each(table.tHead.rows[0].cells, function (th) {
      var button = th.querySelector("button.sort");
      if (!button) { return; }
      th.addEventListener("click", function () { sortBy(table, th); });
    });
  }

  function applyFilters(bar) {
    var id = bar.getAttribute("data-filters-for");
    var target = document.getElementById(id);
    if (!target) { return; }
    var selects = bar.querySelectorAll("select[data-filter-key]");
    var text = bar.querySelector("[data-filter-text]");
    var needle = text ? text.value.trim().toLowerCase() : "";
    var shown = 0, total = 0;
    each(target.querySelectorAll("[data-filterable]"), function (item) {
      var ok = true;
      each(selects, function (select) {
        var key = select.getAttribute("data-filter-key");
        if (select.value !== "" && item.getAttribute("data-filter-" + key) !== select.value) { ok = false; }
      });
      if (ok && needle && item.textContent.toLowerCase().indexOf(needle) < 0) { ok = false; }
      item.hidden = !ok;
      total += 1;
      if (ok) { shown += 1; }
    });
    var noun = total === 1 ? (bar.getAttribute("data-noun-one") || "row") : (bar.getAttribute("data-noun") || "rows");
    var count = document.querySelector('[data-count-for="' + id + '"]');
    if (count) { count.textContent = shown === total ? total + " " + noun : shown + " of " + total + " " + noun; }
    var empty = document.querySelector('[data-empty-for="' + id + '"]');
    if (empty) { empty.hidden = shown !== 0; }
  }

  function setUpFilters(bar) {
    each(bar.querySelectorAll("select, input"), function (control) {
      control.addEventListener(control.tagName === "SELECT" ? "change" : "input", function () { applyFilters(bar); });
    });
    applyFilters(bar);  // a reload may keep form values
  }

  function setUpToggle(button) {
    var table = document.getElementById(button.getAttribute("data-toggle-columns"));
    if (!table) { return; }
    button.addEventListener("click", function () {
      var on = table.classList.toggle("show-all");
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = on ? "Hide extra columns" : "Show all columns";
    });
  }

  function start() {
    document.documentElement.classList.add("js");
    each(document.querySelectorAll("table.sortable"), setUpSorting);
    each(document.querySelectorAll("[data-filters-for]"), setUpFilters);
    each(document.querySelectorAll("[data-toggle-columns]"), setUpToggle);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
}());
