// sessionstore console: the one script. The pages work without it; it only keeps the
// relative times ("5 minutes ago") current while a page stays open, with the same words as
// the server (sessionstore/admin/console/text.py), measured against the server's clock.
"use strict";

(function () {
  const UNITS = [
    [365 * 86400, "year"],
    [30 * 86400, "month"],
    [86400, "day"],
    [3600, "hour"],
    [60, "minute"],
  ];

  function plural(count, noun) {
    return count === 1 ? count + " " + noun : count + " " + noun + "s";
  }

  function relative(seconds) {
    const span = Math.abs(seconds);
    if (span < 60) {
      return seconds > 0 ? "in less than a minute" : "just now";
    }
    for (const [size, unit] of UNITS) {
      if (span >= size) {
        const words = plural(Math.floor(span / size), unit);
        return seconds > 0 ? "in " + words : words + " ago";
      }
    }
    return "";
  }

  // The page says when the server rendered it; a skewed client clock is corrected by that.
  const rendered = Date.parse(document.documentElement.dataset.serverNow || "");
  const skew = Number.isNaN(rendered) ? 0 : rendered - Date.now();

  function refresh() {
    const now = Date.now() + skew;
    for (const element of document.querySelectorAll("[data-relative]")) {
      const at = Date.parse(element.dataset.relative);
      if (!Number.isNaN(at)) {
        element.textContent = relative((at - now) / 1000);
      }
    }
  }

  window.setInterval(refresh, 30000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      refresh();
    }
  });
})();
