// Steward's one script: only improves pages that work without it. Shows times in the
// viewer's own time zone.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    return;
  }
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var text = el.textContent || "";
    if (!/UTC$/.test(text)) return; // dates alone stay as they are
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d.getTime())) {
      el.title = text;
      el.textContent = fmt.format(d);
    }
  });
});
