// Keyboard shortcuts for the triage queue. Everything works without this script: every team is a
// button, reached with Tab and pressed with Enter. With it, j/k move between
// tickets and 1-9, 0 press the numbered team of the current ticket.
(function () {
  "use strict";
  function items() { return Array.prototype.slice.call(document.querySelectorAll("[data-item]")); }
  function current() {
    var here = document.activeElement && document.activeElement.closest ? document.activeElement.closest("[data-item]") : null;
    return here || document.querySelector("[data-item].current");
  }
  function focusItem(item) {
    if (!item) { return; }
    items().forEach(function (other) { other.classList.toggle("current", other === item); });
    var first = item.querySelector("button.guess") || item.querySelector("button");
    if (first) { first.focus(); }
    item.scrollIntoView({ block: "nearest" });
  }
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-queue]")) { return; }
    var anchored = location.hash && location.hash.indexOf("#item-") === 0 ? document.getElementById(location.hash.slice(1)) : null;
    if (anchored || document.querySelector(".notice")) {
      // After the page's own fragment scrolling, or the browser takes the focus back.
      window.addEventListener("load", function () { focusItem(anchored || items()[0]); });
    }
    document.addEventListener("focusin", function (event) {
      var item = event.target.closest ? event.target.closest("[data-item]") : null;
      if (item) { items().forEach(function (other) { other.classList.toggle("current", other === item); }); }
    });
    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) { return; }
      var list = items();
      var item = current();
      var index = item ? list.indexOf(item) : -1;
      if (event.key === "j") {
        focusItem(list[Math.min(index + 1, list.length - 1)]);
        event.preventDefault();
      } else if (event.key === "k") {
        focusItem(list[Math.max(index - 1, 0)]);
        event.preventDefault();
      } else if (item && /^[0-9]$/.test(event.key)) {
        var button = item.querySelector('button[data-key="' + event.key + '"]');
        if (button) { button.click(); event.preventDefault(); }
      }
    });
  });
})();
