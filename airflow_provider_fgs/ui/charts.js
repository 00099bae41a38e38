// The FunctionGraph view's charts: SVG drawn from /api/stats, no library, nothing fetched from elsewhere
// (deployments are often air-gapped). Colors come from the page's CSS variables, so the charts follow
// Airflow's light and dark themes; each bar and point names its numbers on hover (an SVG <title>).
"use strict";

const FunctionGraphCharts = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 640, HEIGHT = 160, LEFT = 48, RIGHT = 8, TOP = 10, BOTTOM = 22;
  const OUTCOMES = [
    ["success", "succeeded", "--chart-success"],
    ["function_error", "function error", "--chart-function-error"],
    ["platform_error", "platform error", "--chart-platform-error"],
    ["outcome_unknown", "outcome unknown", "--chart-unknown"],
  ];

  function node(name, attributes = {}, text = null) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== null) element.textContent = text;
    return element;
  }

  function color(variable) {
    return `var(${variable})`;
  }

  function when(iso, stepSeconds) {
    const date = new Date(iso);
    return stepSeconds >= 86400
      ? date.toLocaleDateString(undefined, { month: "short", day: "numeric" })
      : date.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }

  function number(value, digits = 0) {
    return value.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  // An empty chart: its frame, the y axis from 0 to `top`, and the first, middle and last intervals' times.
  function frame(title, testid, stats, top, unit) {
    const svg = node("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, "data-testid": testid,
      class: "chart",
    });
    const plotBottom = HEIGHT - BOTTOM;
    svg.append(node("line", { x1: LEFT, y1: plotBottom, x2: WIDTH - RIGHT, y2: plotBottom, class: "axis" }));
    svg.append(node("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: plotBottom, class: "axis" }));
    svg.append(node("text", { x: LEFT - 4, y: TOP + 8, "text-anchor": "end", class: "tick" }, `${number(top, 2)}${unit}`));
    svg.append(node("text", { x: LEFT - 4, y: plotBottom, "text-anchor": "end", class: "tick" }, "0"));
    const intervals = stats.intervals;
    const last = intervals.length - 1;
    for (const [index, anchor] of [[0, "start"], [Math.floor(last / 2), "middle"], [last, "end"]]) {
      const x = anchor === "start" ? LEFT : anchor === "end" ? WIDTH - RIGHT : LEFT + (index + 0.5) * slot(intervals.length);
      svg.append(node("text", { x, y: HEIGHT - 6, "text-anchor": anchor, class: "tick" },
        when(intervals[index].start, stats.step_seconds)));
    }
    return svg;
  }

  function slot(count) {
    return (WIDTH - LEFT - RIGHT) / count;
  }

  function y(value, top) {
    const plotHeight = HEIGHT - BOTTOM - TOP;
    return HEIGHT - BOTTOM - (top ? (value / top) * plotHeight : 0);
  }

  function niceTop(value) {
    if (value <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    return [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= value);
  }

  function outcomes(stats) {
    const top = niceTop(Math.max(0, ...stats.intervals.map((i) => OUTCOMES.reduce((sum, [key]) => sum + i[key], 0))));
    const svg = frame("Invocations by outcome", "chart-outcomes", stats, top, "");
    const width = slot(stats.intervals.length);
    stats.intervals.forEach((interval, index) => {
      const group = node("g", { "data-interval": interval.start });
      let base = 0;
      for (const [key, , variable] of OUTCOMES) {
        if (!interval[key]) continue;
        const top0 = y(base + interval[key], top);
        group.append(node("rect", {
          x: LEFT + index * width + 1, y: top0, width: Math.max(width - 2, 1),
          height: y(base, top) - top0, fill: color(variable), "data-outcome": key,
        }));
        base += interval[key];
      }
      const lines = OUTCOMES.map(([key, label]) => `${number(interval[key])} ${label}`).join("\n");
      group.append(node("title", {}, `${when(interval.start, stats.step_seconds)}\n${lines}`));
      group.prepend(node("rect", {  // the whole column answers the hover, also where nothing ran
        x: LEFT + index * width, y: TOP, width, height: HEIGHT - BOTTOM - TOP, class: "hover",
      }));
      svg.append(group);
    });
    return svg;
  }

  function durations(stats) {
    const values = stats.intervals.flatMap((i) => [i.p50_ms, i.p95_ms]).filter((v) => v != null);
    const top = niceTop(Math.max(0, ...values));
    const svg = frame("Function duration, p50 and p95", "chart-duration", stats, top, " ms");
    const width = slot(stats.intervals.length);
    for (const [key, variable, label] of [["p95_ms", "--chart-p95", "p95"], ["p50_ms", "--chart-p50", "p50"]]) {
      const points = stats.intervals
        .map((interval, index) => [interval, index])
        .filter(([interval]) => interval[key] != null);
      if (points.length > 1) {
        const path = points.map(([interval, index]) => `${LEFT + (index + 0.5) * width},${y(interval[key], top)}`);
        svg.append(node("polyline", { points: path.join(" "), fill: "none", stroke: color(variable), "stroke-width": 2 }));
      }
      for (const [interval, index] of points) {
        const dot = node("circle", {
          cx: LEFT + (index + 0.5) * width, cy: y(interval[key], top), r: 3, fill: color(variable),
          "data-series": label,
        });
        dot.append(node("title", {}, `${when(interval.start, stats.step_seconds)}\n${label}: ${number(interval[key], 1)} ms`));
        svg.append(dot);
      }
    }
    return svg;
  }

  function billing(stats) {
    const top = niceTop(Math.max(0, ...stats.intervals.map((i) => i.gb_seconds)));
    const svg = frame("Billed GB-s", "chart-gb-seconds", stats, top, "");
    const width = slot(stats.intervals.length);
    stats.intervals.forEach((interval, index) => {
      const group = node("g", { "data-interval": interval.start });
      group.append(node("rect", {
        x: LEFT + index * width, y: TOP, width, height: HEIGHT - BOTTOM - TOP, class: "hover",
      }));
      if (interval.gb_seconds > 0) {
        const top0 = y(interval.gb_seconds, top);
        group.append(node("rect", {
          x: LEFT + index * width + 1, y: top0, width: Math.max(width - 2, 1),
          height: HEIGHT - BOTTOM - top0, fill: color("--chart-billing"),
        }));
      }
      group.append(node("title", {}, `${when(interval.start, stats.step_seconds)}\n${number(interval.gb_seconds, 4)} GB-s`));
      svg.append(group);
    });
    return svg;
  }

  function legend(stats) {
    const list = document.createElement("p");
    list.className = "legend";
    list.dataset.testid = "chart-totals";
    for (const [key, label, variable] of OUTCOMES) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = color(variable);
      const item = document.createElement("span");
      item.dataset.outcome = key;
      item.append(swatch, ` ${number(stats.totals[key])} ${label}`);
      list.append(item, " ");
    }
    list.append(`· ${number(stats.totals.gb_seconds, 4)} GB-s billed`);
    return list;
  }

  function titled(title, chart) {
    const figure = document.createElement("figure");
    figure.append(Object.assign(document.createElement("figcaption"), { textContent: title }), chart);
    return figure;
  }

  // Draw the three charts of `stats` (an /api/stats answer) into `container`, replacing what was there.
  function render(container, stats) {
    container.replaceChildren(
      legend(stats),
      titled("Invocations by outcome", outcomes(stats)),
      titled("Function duration (p50, p95)", durations(stats)),
      titled("Billed GB-s", billing(stats)),
    );
  }

  return { render };
})();
