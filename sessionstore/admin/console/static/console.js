// sessionstore console: the one script. The pages work without it; it only keeps the
// relative times ("5 minutes ago") current while a page stays open, with the same words as
// the server (sessionstore/admin/console/text.py), measured against the server's clock.
"use strict";

(function () {
  // Smallest first: each unit is used while the rounded count stays below the next one's size.
  const UNITS = [
    [60, "minute"],
    [3600, "hour"],
    [86400, "day"],
    [30 * 86400, "month"],
    [365 * 86400, "year"],
  ];

  function plural(count, noun) {
    if (count === 0) {
      return "no " + noun + "s";
    }
    return count === 1 ? count + " " + noun : count + " " + noun + "s";
  }

  // Rounded to the nearest whole unit, the largest the rounded count reaches (text.relative).
  function relative(seconds) {
    const span = Math.abs(seconds);
    for (let index = 0; index < UNITS.length; index += 1) {
      const [size, unit] = UNITS[index];
      const next = index + 1 < UNITS.length ? UNITS[index + 1][0] : Infinity;
      const rounded = Math.floor(span / size + 0.5);
      if (rounded * size < next) {
        if (rounded === 0) {
          break;
        }
        const words = plural(rounded, unit);
        return seconds > 0 ? "in " + words : words + " ago";
      }
    }
    return seconds > 0 ? "in less than a minute" : "just now";
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
