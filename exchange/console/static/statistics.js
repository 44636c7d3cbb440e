// 统计分析: draws each chart from its JSON data island with the vendored ECharts (no inline
// script: the page carries data only). The table beside each chart is the accessible version;
// the chart container is role="img" with an aria-label. A suppressed cell arrives as null with
// its mark ("<5" or "*"), never as a number: no bar is drawn for it, and the mark is shown in
// the axis label (one series) or the tooltip.
(function () {
  "use strict";

  function markedLabel(data) {
    var marks = data.series.length === 1 ? data.series[0].marks : null;
    return function (value, index) {
      var mark = marks && marks[index];
      return mark ? value + " (" + mark + ")" : value;
    };
  }

  function tooltip(data) {
    // richText tooltips are drawn on the canvas: no HTML, so nothing for the CSP to refuse
    return function (items) {
      var lines = [items[0].axisValueLabel];
      items.forEach(function (item) {
        var series = data.series[item.seriesIndex];
        var mark = series.marks[item.dataIndex];
        var value = series.values[item.dataIndex];
        lines.push(series.name + ": " + (mark || (value === null ? "" : String(value))));
      });
      return lines.join("\n");
    };
  }

  function draw(container) {
    var island = document.getElementById(container.getAttribute("data-chart"));
    if (!island || !window.echarts) { return; }
    var data = JSON.parse(island.textContent);
    var single = data.series.length === 1;
    var many = data.categories.length > 6;
    var chart = window.echarts.init(container, null, {
      renderer: "canvas", locale: data.locale === "en" ? "EN" : "ZH"
    });
    chart.setOption({
      animation: false,
      aria: { enabled: false },  // the container's own aria-label and the table say it
      textStyle: { fontFamily: "WenQuanYi Micro Hei, Microsoft YaHei, PingFang SC, sans-serif" },
      color: ["#1f3a5f", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#a16207", "#be123c",
              "#4d7c0f"],
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" },
                 formatter: tooltip(data) },
      legend: single ? { show: false } : { type: "scroll", top: 0 },
      grid: { left: 8, right: 24, top: single ? 32 : 48, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.categories,
               axisLabel: { interval: 0, rotate: many ? 35 : 0, formatter: markedLabel(data) } },
      yAxis: { type: "value", minInterval: 1, name: data.yName,
               nameTextStyle: { align: "left" } },
      series: data.series.map(function (s) {
        return { type: "bar", name: s.name, data: s.values,
                 label: { show: single, position: "top" } };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.querySelectorAll(".stat-chart[data-chart]").forEach(draw);
})();
