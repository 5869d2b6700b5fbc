/* qualify's charts: the JSON of qualify/report/charts.py drawn with uPlot.
   Drag to zoom (x), wheel to zoom, shift+drag or middle-drag to pan, double-click to reset;
   hover shows every value in the legend. Events and limits are drawn on the same axes. */
(function () {
  "use strict";
  var COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
  var SEVERITY = {critical: "#b00020", error: "#d62728", warning: "#e69500", info: "#555"};

  function fmtTime(v) {
    var d = new Date(v * 1000);
    return d.toISOString().substring(11, 19) + "Z";
  }

  function overlays(chart) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          (chart.limits || []).forEach(function (lim) {
            var scale = lim.axis === "y2" ? "y2" : "y";
            if (!u.scales[scale] || u.scales[scale].min == null) return;
            var y = u.valToPos(lim.value, scale, true);
            ctx.strokeStyle = "#d62728"; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.5;
            ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
            ctx.setLineDash([]); ctx.fillStyle = "#d62728"; ctx.font = (12 * devicePixelRatio) + "px sans-serif";
            ctx.textAlign = "right"; ctx.fillText(lim.text, u.bbox.left + u.bbox.width - 4, y - 4);
            ctx.textAlign = "left";
          });
          (chart.markers || []).forEach(function (m) {
            var x = u.valToPos(m.x, "x", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = SEVERITY[m.severity] || "#555"; ctx.lineWidth = 1.5;
            ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle; ctx.font = (11 * devicePixelRatio) + "px sans-serif";
            ctx.save(); ctx.translate(x + 3, u.bbox.top + 14); ctx.rotate(Math.PI / 2);
            ctx.fillText(m.text.substring(0, 60), 0, 0); ctx.restore();
          });
          ctx.restore();
        }]
      }
    };
  }

  function wheelZoom() {
    return {
      hooks: {
        ready: [function (u) {
          var over = u.over, full = [u.scales.x.min, u.scales.x.max];
          over.addEventListener("wheel", function (e) {
            e.preventDefault();
            var rect = over.getBoundingClientRect();
            var at = u.posToVal(e.clientX - rect.left, "x");
            var min = u.scales.x.min, max = u.scales.x.max, f = e.deltaY < 0 ? 0.75 : 1 / 0.75;
            var nmin = at - (at - min) * f, nmax = at + (max - at) * f;
            u.setScale("x", {min: Math.max(nmin, full[0]), max: Math.min(nmax, full[1])});
          }, {passive: false});
          over.addEventListener("mousedown", function (e) {
            if (!(e.shiftKey || e.button === 1)) return;
            e.preventDefault(); e.stopPropagation();
            var x0 = e.clientX, min0 = u.scales.x.min, max0 = u.scales.x.max;
            var perPx = (max0 - min0) / u.bbox.width * (window.devicePixelRatio || 1);
            function move(ev) {
              var d = (ev.clientX - x0) * perPx;
              u.setScale("x", {min: min0 - d, max: max0 - d});
            }
            function up() { document.removeEventListener("mousemove", move); document.removeEventListener("mouseup", up); }
            document.addEventListener("mousemove", move); document.addEventListener("mouseup", up);
          }, true);
        }]
      }
    };
  }

  function build(chart, el) {
    var cats = chart.categories && chart.categories.length ? chart.categories : null;
    var xValue = chart.time_axis ? function (u, v) { return v == null ? "" : fmtTime(v); }
      : cats ? function (u, v) { return v == null ? "" : (cats[Math.round(v)] || ""); } : undefined;
    var data = [chart.x], series = [{label: chart.time_axis ? "time" : (chart.x_label || "x"), value: xValue}];
    var bands = [];
    chart.series.forEach(function (s, i) {
      var colour = COLOURS[i % COLOURS.length];
      var unit = s.unit ? " " + s.unit : "";
      var fmt = function (u, v) { return v == null ? "—" : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) + unit; };
      if (s.low && s.high) {
        data.push(s.high); series.push({label: s.label + " max", stroke: colour, width: 0.5, alpha: 0.5,
                                        scale: s.axis, value: fmt});
        data.push(s.low); series.push({label: s.label + " min", stroke: colour, width: 0.5, alpha: 0.5,
                                       scale: s.axis, value: fmt});
        bands.push({series: [data.length - 2, data.length - 1], fill: colour + "33"});
      }
      data.push(s.values);
      series.push({label: s.label, stroke: colour, width: 1.5, dash: s.dashed ? [5, 5] : undefined,
                   scale: s.axis, value: fmt, spanGaps: !!s.span_gaps,
                   points: s.points ? {show: true, size: 6, fill: colour} : undefined});
    });
    var axes = [{label: chart.x_label || (chart.time_axis ? "time (UTC)" : ""),
                 values: chart.time_axis ? function (u, vals) {  // HH:MM over hours, HH:MM:SS zoomed in
                     var wide = u.scales.x.max - u.scales.x.min > 3 * 3600;
                     return vals.map(function (v) { return fmtTime(v).substring(0, wide ? 5 : 8); }); }
                   : cats ? function (u, vals) { return vals.map(function (v) { return v === Math.round(v) ? (cats[v] || "") : ""; }); }
                   : undefined,
                 splits: cats ? function () { return cats.map(function (c, i) { return i; }); } : undefined},
                {label: chart.y_label, scale: "y"}];
    var scales = {x: cats ? {time: false, range: [-0.3, cats.length - 0.7]} : {time: false}};
    if (chart.log_y) scales.y = {distr: 3};
    if (chart.series.some(function (s) { return s.axis === "y2"; })) {
      axes.push({label: chart.y2_label, scale: "y2", side: 1, grid: {show: false}});
    }
    var width = Math.max(300, Math.min(el.clientWidth || 900, 1200));
    var opts = {width: width, height: 300, series: series, axes: axes, scales: scales, bands: bands,
                cursor: {drag: {x: true, y: false}}, plugins: [overlays(chart), wheelZoom()]};
    var plot = new uPlot(opts, data, el);
    window.addEventListener("resize", function () {
      plot.setSize({width: Math.max(300, Math.min(el.clientWidth || 900, 1200)), height: 300});
    });
    return plot;
  }

  window.qualifyCharts = [];
  function drawAll() {
    var holder = document.getElementById("qualify-chart-data");
    if (!holder || typeof uPlot === "undefined") return;
    var charts = JSON.parse(holder.textContent);
    charts.forEach(function (chart, i) {
      var el = document.getElementById("chart-" + i);
      if (el) window.qualifyCharts.push(build(chart, el));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
