// Charts of the device view, drawn with uPlot (served from its npm package by the node).
import uPlot from '/ui/vendor/uPlot.esm.js';

const KEEP_POINTS = 600;
const LIVE_WINDOW_S = 300;
/** The chart's width: its box's, once laid out in the grid. */
const WIDTH = (box) => Math.max(280, Math.min(900, box.clientWidth || 600));

function frame(container, title) {
  const box = document.createElement('figure');
  box.className = 'chart';
  box.style.margin = '0';
  const h = document.createElement('h3');
  h.textContent = title;
  box.append(h);
  container.append(box);
  return box;
}

/** A chart of a metric's readings as they arrive on the live stream. */
export function liveChart(container, metric) {
  const box = frame(container, `${metric} (live)`);
  const xs = [];
  const ys = [];
  const plot = new uPlot(
    {
      width: WIDTH(box),
      height: 200,
      series: [{}, { label: metric, stroke: '#1d4ed8', width: 2, points: { size: 4 } }],
      axes: [{}, { size: 60 }],
    },
    [xs, ys],
    box,
  );
  let drawing = false;
  return {
    metric,
    add(tsMs, value) {
      // Readings may arrive out of order (a backlog draining): keep the series sorted by time.
      const t = tsMs / 1000;
      let i = xs.length;
      while (i > 0 && xs[i - 1] > t) i--;
      xs.splice(i, 0, t);
      ys.splice(i, 0, value);
      if (xs.length > KEEP_POINTS) {
        xs.splice(0, xs.length - KEEP_POINTS);
        ys.splice(0, ys.length - KEEP_POINTS);
      }
      if (drawing) return;
      drawing = true;
      requestAnimationFrame(() => {
        drawing = false;
        plot.setData([xs, ys], false);
        // At least the last LIVE_WINDOW_S seconds, so the first readings do not stretch over years.
        const last = xs[xs.length - 1];
        plot.setScale('x', { min: Math.min(xs[0], last - LIVE_WINDOW_S), max: last + 5 });
      });
    },
    get points() {
      return xs.length;
    },
    destroy() {
      plot.destroy();
      box.remove();
    },
  };
}

/** A chart of a metric's 1-minute rollups: min–max band, mean and last value per minute. */
export function rollupChart(container, metric, points, label) {
  const box = frame(container, `${metric} (${label}, 1-minute rollups)`);
  const xs = points.map((p) => Date.parse(p.start) / 1000);
  const data = [
    xs,
    points.map((p) => p.min),
    points.map((p) => p.max),
    points.map((p) => (p.count > 0 ? p.sum / p.count : null)),
    points.map((p) => p.last),
  ];
  const plot = new uPlot(
    {
      width: WIDTH(box),
      height: 200,
      series: [
        {},
        { label: 'min', stroke: '#9db4e8' },
        { label: 'max', stroke: '#9db4e8' },
        { label: 'mean', stroke: '#1d4ed8', width: 2 },
        { label: 'last', stroke: '#0b6e4f', dash: [4, 4] },
      ],
      bands: [{ series: [2, 1], fill: 'rgba(29, 78, 216, 0.1)' }],
      axes: [{}, { size: 60 }],
    },
    data,
    box,
  );
  if (points.length === 0) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No rollups in this range.';
    box.append(p);
  }
  return {
    metric,
    destroy() {
      plot.destroy();
      box.remove();
    },
  };
}
