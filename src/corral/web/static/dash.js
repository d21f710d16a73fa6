// Drag across a VM's chart to zoom: the dragged span becomes the page's new time range.
// Zooming is a link (the range is in the URL), so this only builds that link.
"use strict";
(function () {
  const svg = document.getElementById("chart");
  if (!svg) return;
  const box = document.getElementById("chart-selection");
  const start = Number(svg.dataset.start), end = Number(svg.dataset.end);
  const left = Number(svg.dataset.left), right = Number(svg.dataset.right);
  let from = null;

  function plotX(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    const x = point.matrixTransform(svg.getScreenCTM().inverse()).x;
    return Math.min(right, Math.max(left, x));
  }
  function time(x) {
    return Math.round(start + ((x - left) / (right - left)) * (end - start));
  }
  svg.addEventListener("mousedown", function (event) {
    from = plotX(event);
    box.setAttribute("x", from);
    box.setAttribute("width", 0);
    event.preventDefault();
  });
  svg.addEventListener("mousemove", function (event) {
    if (from === null) return;
    const x = plotX(event);
    box.setAttribute("x", Math.min(from, x));
    box.setAttribute("width", Math.abs(x - from));
  });
  window.addEventListener("mouseup", function (event) {
    if (from === null) return;
    const to = plotX(event);
    const lo = time(Math.min(from, to)), hi = time(Math.max(from, to));
    from = null;
    if (hi - lo < 60) { box.setAttribute("width", 0); return; }
    window.location.assign(svg.dataset.url + "&from=" + lo + "&to=" + hi);
  });
})();
