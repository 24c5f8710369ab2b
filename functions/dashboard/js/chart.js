// A sensor's measurements as charts, one per attribute: the aggregate route's
// minimum-maximum band and average line at a resolution fitted to the width, or the raw
// points when the range is short (zoomed in) or the server does not aggregate.

import { ApiError, call } from "./api.js";
import { h } from "./ui.js";

/** Bucket sizes the charts use, in seconds: the aggregate route takes 60 to 2,592,000. */
const INTERVALS = [
  60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 14400, 21600, 43200, 86400, 172800,
  604800, 1209600, 2592000,
];
/** About one bucket for this many pixels of width. */
const PIXELS_PER_BUCKET = 3;
/** Raw points are read page by page (64 a page), newest first, up to this many pages. */
const RAW_PAGES = 40;
const HEIGHT = 220;

/** The bucket size that fits `to - from` into `width` pixels; null: show raw points. */
export function intervalFor(from, to, width) {
  const buckets = Math.max(20, Math.floor(width / PIXELS_PER_BUCKET));
  const wanted = (to - from) / buckets;
  if (wanted < INTERVALS[0]) return null;
  return INTERVALS.find((interval) => interval >= wanted) || INTERVALS.at(-1);
}

/**
 * The series of every attribute between `from` and `to`:
 * {mode, interval, note, attributes: {name: [x, ...]}} where the arrays are uPlot's data.
 */
export async function loadSeries(path, from, to, width) {
  const interval = intervalFor(from, to, width);
  if (interval !== null) {
    try {
      const answer = await call("GET", `${path}/measurements`, {
        query: { aggregate: true, from, to, interval },
      });
      return { mode: "aggregate", interval, note: null, attributes: aggregateSeries(answer, interval) };
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0 || error.status === 401) throw error;
      const raw = await rawSeries(path, from, to);
      raw.note = `The server did not aggregate this range (it answered ${error.status}: ` +
        `${error.details}), so the charts show the raw measurements instead.${raw.note ? ` ${raw.note}` : ""}`;
      return raw;
    }
  }
  return rawSeries(path, from, to);
}

function aggregateSeries(answer, interval) {
  const attributes = {};
  for (const [name, buckets] of Object.entries(answer)) {
    const x = [], minimum = [], average = [], maximum = [];
    let previous = null;
    for (const bucket of buckets) {
      // An empty bucket between two breaks the line, so a silence shows as a gap.
      if (previous !== null && bucket.bucket_timestamp - previous > interval) {
        x.push(previous + interval);
        minimum.push(null);
        average.push(null);
        maximum.push(null);
      }
      x.push(bucket.bucket_timestamp);
      minimum.push(bucket.minimum);
      average.push(bucket.average);
      maximum.push(bucket.maximum);
      previous = bucket.bucket_timestamp;
    }
    attributes[name] = [x, minimum, average, maximum];
  }
  return attributes;
}

async function rawSeries(path, from, to) {
  const pages = [];
  let cursor = to;
  let complete = false;
  for (let index = 0; index < RAW_PAGES; index += 1) {
    const page = await call("GET", `${path}/measurements`, {
      query: { direction: "previous", creation_timestamp: cursor },
    });
    if (page.length === 0) {
      complete = true;
      break;
    }
    pages.unshift(page);
    cursor = page[0].creation_timestamp;
    if (cursor < from) {
      complete = true;
      break;
    }
  }
  const attributes = {};
  let oldest = null;
  for (const measurement of pages.flat()) {
    const timestamp = measurement.creation_timestamp;
    if (timestamp < from || timestamp >= to) continue;
    oldest = oldest === null ? timestamp : Math.min(oldest, timestamp);
    for (const [name, value] of Object.entries(measurement.value)) {
      const series = attributes[name] || (attributes[name] = [[], []]);
      series[0].push(timestamp);
      series[1].push(value);
    }
  }
  const note = complete || oldest === null ? null
    : `Only the newest ${RAW_PAGES * 64} measurements are shown; choose a shorter range for the rest.`;
  return { mode: "raw", interval: null, note, attributes };
}

const BLUE = "#1d4ed8";

function options(name, mode, width, onZoom) {
  const series = mode === "aggregate"
    ? [
      {},
      { label: "minimum", stroke: "#93c5fd", width: 1 },
      { label: "average", stroke: BLUE, width: 2 },
      { label: "maximum", stroke: "#93c5fd", width: 1 },
    ]
    : [{}, { label: name, stroke: BLUE, width: 1, points: { show: true, size: 4 } }];
  return {
    width,
    height: HEIGHT,
    series,
    bands: mode === "aggregate" ? [{ series: [3, 1], fill: "rgba(59, 130, 246, 0.18)" }] : [],
    scales: { x: { time: true } },
    axes: [{}, { size: 64 }],
    legend: { live: true },
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [(plot) => {
        if (plot.select.width < 5) return;
        const from = plot.posToVal(plot.select.left, "x");
        const to = plot.posToVal(plot.select.left + plot.select.width, "x");
        plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        onZoom(Math.floor(from), Math.ceil(to));
      }],
    },
  };
}

/**
 * Draws the charts of `series` into `container`; returns a function that removes them.
 * Dragging across a chart calls onZoom(from, to).
 */
export function drawCharts(container, series, onZoom) {
  const plots = [];
  const names = Object.keys(series.attributes).sort();
  const figures = names.map((name) => {
    const figure = h("figure", { class: "chart" }, h("figcaption", {}, name));
    container.append(figure);
    const width = Math.max(240, figure.clientWidth || container.clientWidth);
    // uPlot is loaded by a classic script before the modules run.
    const plot = new window.uPlot(options(name, series.mode, width, onZoom),
      series.attributes[name], figure);
    plots.push(plot);
    return figure;
  });
  const observer = new ResizeObserver(() => {
    plots.forEach((plot, index) => {
      const width = Math.max(240, figures[index].clientWidth);
      if (Math.abs(width - plot.width) > 1) plot.setSize({ width, height: HEIGHT });
    });
  });
  figures.forEach((figure) => observer.observe(figure));
  return () => {
    observer.disconnect();
    plots.forEach((plot) => plot.destroy());
  };
}
