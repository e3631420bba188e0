// Punchr dashboard: fetches /api/health and /api/report and draws SVG. No libraries, no
// external assets. Every number shown also sits in an element with a data-* attribute naming
// it, so tests (and curious users) can read the page.
'use strict';

const HEALTH_EVERY_MS = 5000;
const PERFORMANCE_EVERY_MS = 15000;
const SVG_NS = 'http://www.w3.org/2000/svg';
// Same colours as the HTML report (render/svg.rs).
const OUTCOME_COLOURS = {
  SUCCESS: '#2e7d32', FAILED: '#c62828', NO_STREAM: '#ef6c00', NO_CONNECTION: '#616161',
  CONNECTION_REVERSED: '#6a1b9a', CANCELLED: '#9e9e9e', UNKNOWN: '#bdbdbd',
};
const OUTCOMES = Object.keys(OUTCOME_COLOURS);
const SERIES_COLOURS = ['#1565c0', '#ef6c00', '#2e7d32', '#6a1b9a'];

function svgElement(tag, attributes, text) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function svgRoot(width, height) {
  return svgElement('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img' });
}

function setMetric(name, text) {
  document.querySelectorAll(`[data-metric="${name}"]`).forEach((element) => { element.textContent = text; });
}

function percent(value) { return value == null ? '–' : `${(value * 100).toFixed(1)} %`; }
function interval(rate) {
  return rate.ci95 ? `${(rate.ci95[0] * 100).toFixed(1)}–${(rate.ci95[1] * 100).toFixed(1)} %` : '–';
}
function fraction(rate) { return `${rate.successes}/${rate.trials}`; }
function seconds(value) { return value == null ? '–' : `${value.toFixed(3)} s`; }
function total(outcomes) { return OUTCOMES.reduce((sum, outcome) => sum + outcomes[outcome], 0); }
function clock(unixSeconds) { return new Date(unixSeconds * 1000).toISOString().slice(11, 16); }

function replaceChart(id, svg) {
  const container = document.getElementById(id);
  container.replaceChildren(svg);
}

function emptyChart(id, message) {
  const container = document.getElementById(id);
  const note = document.createElement('div');
  note.className = 'empty';
  note.textContent = message;
  container.replaceChildren(note);
}

// Vertical bars; bars = [{label, value, text, colour, data: {name: value}}].
function columnChart(bars, height = 200) {
  const width = 440, left = 36, bottom = 34, top = 16;
  const plotHeight = height - bottom - top;
  const largest = Math.max(1, ...bars.map((bar) => bar.value));
  const slot = (width - left - 8) / Math.max(1, bars.length);
  const svg = svgRoot(width, height);
  svg.append(svgElement('path', { d: `M${left} ${top + plotHeight}H${width - 8}`, stroke: '#999' }));
  bars.forEach((bar, index) => {
    const barHeight = (bar.value / largest) * plotHeight;
    const x = left + slot * index + slot * 0.15;
    const y = top + plotHeight - barHeight;
    const rect = svgElement('rect', { x, y, width: slot * 0.7, height: barHeight, fill: bar.colour });
    rect.append(svgElement('title', {}, `${bar.label}: ${bar.text}`));
    svg.append(rect);
    const value = svgElement('text', { x: x + slot * 0.35, y: y - 3, 'text-anchor': 'middle' }, bar.text);
    for (const [name, data] of Object.entries(bar.data || {})) value.setAttribute(`data-${name}`, data);
    svg.append(value);
    svg.append(svgElement('text', { x: x + slot * 0.35, y: height - bottom + 14, 'text-anchor': 'middle' }, bar.label));
  });
  return svg;
}

// One bar per minute with a time axis; points = [{minute, count}].
function minuteChart(points, colour, name) {
  const width = 440, height = 140, left = 30, bottom = 20, top = 10;
  const plotHeight = height - bottom - top;
  const largest = Math.max(1, ...points.map((point) => point.count));
  const slot = (width - left - 4) / Math.max(1, points.length);
  const svg = svgRoot(width, height);
  svg.append(svgElement('text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, String(largest)));
  svg.append(svgElement('text', { x: left - 4, y: top + plotHeight, 'text-anchor': 'end' }, '0'));
  points.forEach((point, index) => {
    const barHeight = (point.count / largest) * plotHeight;
    const x = left + slot * index;
    const rect = svgElement('rect', {
      x, y: top + plotHeight - barHeight, width: Math.max(1, slot * 0.8), height: barHeight, fill: colour,
      'data-series': name, 'data-minute': point.minute, 'data-count': point.count,
    });
    rect.append(svgElement('title', {}, `${clock(point.minute)} UTC: ${point.count}`));
    svg.append(rect);
    if (index % 15 === 0) svg.append(svgElement('text', { x, y: height - 4 }, clock(point.minute)));
  });
  return svg;
}

// Horizontal bars of rates with 95 % interval whiskers; rows = [{key, published}].
function rateChart(rows) {
  const width = 440, left = 90, right = 120, row = 24;
  const height = row * rows.length + 24;
  const plot = width - left - right;
  const svg = svgRoot(width, height);
  [0, 0.5, 1].forEach((tick) => {
    const x = left + tick * plot;
    svg.append(svgElement('path', { d: `M${x} 0V${height - 18}`, stroke: '#e0e0e0' }));
    svg.append(svgElement('text', { x, y: height - 4, 'text-anchor': 'middle' }, `${tick * 100} %`));
  });
  rows.forEach((entry, index) => {
    const y = 4 + row * index;
    const rate = entry.published;
    svg.append(svgElement('text', { x: left - 6, y: y + 13, 'text-anchor': 'end' }, entry.key));
    if (rate.value != null) {
      svg.append(svgElement('rect', { x: left, y, width: rate.value * plot, height: 16, fill: '#1565c0' }));
      const [low, high] = rate.ci95.map((bound) => left + bound * plot);
      svg.append(svgElement('path', {
        d: `M${low} ${y + 3}V${y + 13}M${low} ${y + 8}H${high}M${high} ${y + 3}V${y + 13}`, stroke: '#111', fill: 'none',
      }));
    }
    svg.append(svgElement('text', { x: width - right + 6, y: y + 13, 'data-transport': entry.key },
      `${percent(rate.value)} (${fraction(rate)})`));
  });
  return svg;
}

// Horizontal bars of counts with their share; rows = [{label, value, colour, data}].
function countRows(rows) {
  const width = 440, left = 150, right = 90, row = 22;
  const height = row * rows.length + 6;
  const largest = Math.max(1, ...rows.map((entry) => entry.value));
  const all = rows.reduce((sum, entry) => sum + entry.value, 0);
  const plot = width - left - right;
  const svg = svgRoot(width, height);
  rows.forEach((entry, index) => {
    const y = 3 + row * index;
    svg.append(svgElement('text', { x: left - 6, y: y + 13, 'text-anchor': 'end' }, entry.label));
    svg.append(svgElement('rect', { x: left, y, width: (entry.value / largest) * plot, height: 16, fill: entry.colour }));
    const value = svgElement('text', { x: width - right + 6, y: y + 13 }, String(entry.value));
    for (const [name, data] of Object.entries(entry.data || {})) value.setAttribute(`data-${name}`, data);
    svg.append(value);
    svg.append(svgElement('text', { x: width - 6, y: y + 13, 'text-anchor': 'end' }, all ? percent(entry.value / all) : '–'));
  });
  return svg;
}

// Lines of rates over time; series = [{name, colour, points: [{start, value}]}].
function lineChart(series, from, to) {
  const width = 900, height = 220, left = 44, bottom = 24, top = 24;
  const plotWidth = width - left - 12, plotHeight = height - bottom - top;
  const span = Math.max(1, to - from);
  const svg = svgRoot(width, height);
  [0, 0.5, 1].forEach((tick) => {
    const y = top + plotHeight * (1 - tick);
    svg.append(svgElement('path', { d: `M${left} ${y}H${width - 12}`, stroke: '#e0e0e0' }));
    svg.append(svgElement('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, `${tick * 100} %`));
  });
  svg.append(svgElement('text', { x: left, y: height - 6 }, `${new Date(from * 1000).toISOString().slice(0, 16)}Z`));
  svg.append(svgElement('text', { x: width - 12, y: height - 6, 'text-anchor': 'end' },
    `${new Date(to * 1000).toISOString().slice(0, 16)}Z`));
  series.forEach((line, index) => {
    svg.append(svgElement('rect', { x: left + 100 * index, y: 4, width: 12, height: 12, fill: line.colour }));
    svg.append(svgElement('text', { x: left + 16 + 100 * index, y: 14 }, line.name));
    const xy = line.points.map((point) => [
      left + ((point.start - from) / span) * plotWidth, top + plotHeight * (1 - point.value)]);
    if (xy.length > 1) {
      svg.append(svgElement('path', {
        d: xy.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)} ${y.toFixed(1)}`).join(''),
        stroke: line.colour, 'stroke-width': 2, fill: 'none',
      }));
    }
    line.points.forEach((point, i) => {
      const dot = svgElement('circle', {
        cx: xy[i][0], cy: xy[i][1], r: 3, fill: line.colour, 'data-transport': line.name, 'data-start': point.start,
        'data-rate': point.value,
      });
      dot.append(svgElement('title', {}, `${line.name} ${clock(point.start)} UTC: ${percent(point.value)}`));
      svg.append(dot);
    });
  });
  return svg;
}

async function fetchJson(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function showStatus(text) { document.getElementById('status').textContent = text; }

function markRendered(view) {
  const key = `${view}Rendered`;
  document.body.dataset[key] = String(Number(document.body.dataset[key] || 0) + 1);
}

async function refreshHealth() {
  const health = await fetchJson('/api/health?minutes=60');
  const sum = (points) => points.reduce((total, point) => total + point.count, 0);
  const lastFull = (points) => (points.length > 1 ? points[points.length - 2].count : 0);
  setMetric('active-clients', String(health.active_clients));
  setMetric('active-api-keys-metric', health.active_api_keys_metric == null ? 'n/a' : String(health.active_api_keys_metric));
  setMetric('results-60m', String(sum(health.results_per_minute)));
  setMetric('results-last-minute', String(lastFull(health.results_per_minute)));
  setMetric('honeypot-peers-60m', String(sum(health.honeypot_peers_per_minute)));
  setMetric('honeypot-peers-last-minute', String(lastFull(health.honeypot_peers_per_minute)));
  const errors = health.server_errors;
  setMetric('server-errors-total', errors.available ? String(errors.total) : 'n/a');
  setMetric('server-errors-by-code', Object.entries(errors.by_code).map(([code, n]) => `${code}: ${n}`).join(', '));
  replaceChart('chart-results-per-minute', minuteChart(health.results_per_minute, '#1565c0', 'results'));
  replaceChart('chart-honeypot-peers', minuteChart(health.honeypot_peers_per_minute, '#6a1b9a', 'honeypot-peers'));
  if (errors.available) {
    replaceChart('chart-server-errors', minuteChart(errors.per_minute, '#c62828', 'server-errors'));
  } else {
    emptyChart('chart-server-errors', 'not available: the dashboard runs without the server');
  }
  markRendered('health');
}

function reportUrl() {
  const params = new URLSearchParams();
  const range = document.getElementById('range').value;
  if (range) params.set('since', range);
  return `/api/report?${params}`;
}

async function refreshPerformance() {
  const report = await fetchJson(reportUrl());
  setMetric('published-rate', percent(report.published_rate.value));
  setMetric('published-ci', interval(report.published_rate));
  setMetric('published-fraction', fraction(report.published_rate));
  setMetric('end-to-end-rate', percent(report.end_to_end_rate.value));
  setMetric('end-to-end-ci', interval(report.end_to_end_rate));
  setMetric('end-to-end-fraction', fraction(report.end_to_end_rate));
  setMetric('ttd-p50', seconds(report.time_to_direct.p50_seconds));
  setMetric('ttd-p90', seconds(report.time_to_direct.p90_seconds));
  setMetric('ttd-count', String(report.time_to_direct.count));

  const transports = [...new Set(report.transport_over_time.map((bucket) => bucket.transport))].sort();
  if (report.transport_over_time.length === 0) {
    emptyChart('chart-transport-over-time', 'no hole punches with a known transport in this range');
  } else {
    const series = transports.map((name, index) => ({
      name,
      colour: SERIES_COLOURS[index % SERIES_COLOURS.length],
      points: report.transport_over_time
        .filter((bucket) => bucket.transport === name && bucket.published.value != null)
        .map((bucket) => ({ start: bucket.start + report.bucket_seconds / 2, value: bucket.published.value })),
    }));
    const starts = report.over_time.map((bucket) => bucket.start);
    const from = Math.min(...starts);
    const to = Math.max(...starts) + report.bucket_seconds;
    replaceChart('chart-transport-over-time', lineChart(series, from, to));
  }

  replaceChart('chart-outcomes', countRows(OUTCOMES.map((outcome) => ({
    label: outcome, value: report.outcomes[outcome], colour: OUTCOME_COLOURS[outcome], data: { outcome },
  }))));

  const attempts = report.by_attempt.rows;
  if (attempts.length === 0) {
    emptyChart('chart-attempts', 'no attempts in this range');
  } else {
    replaceChart('chart-attempts', columnChart(attempts.map((row) => ({
      label: `attempt ${row.attempt_number}`,
      value: row.successful,
      text: `${row.successful} (${percent(row.share_of_successes.value)})`,
      colour: OUTCOME_COLOURS.SUCCESS,
      data: { attempt: row.attempt_number, successful: row.successful },
    }))));
  }

  const bins = report.time_to_direct.histogram;
  if (report.time_to_direct.count === 0) {
    emptyChart('chart-time-to-direct', 'no successful hole punches in this range');
  } else {
    replaceChart('chart-time-to-direct', columnChart(bins.map((bin, index) => ({
      label: bin.label.replace(' s', ''), value: bin.count, text: String(bin.count), colour: '#1565c0', data: { bin: index },
    }))));
  }

  if (report.by_transport.length === 0) {
    emptyChart('chart-transport', 'no results in this range');
  } else {
    replaceChart('chart-transport', rateChart(report.by_transport));
  }
  markRendered('performance');
}

async function loop(refresh, everyMs) {
  try {
    await refresh();
    showStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (error) {
    showStatus(`update failed: ${error.message}`);
  }
  setTimeout(() => loop(refresh, everyMs), everyMs);
}

document.getElementById('range').addEventListener('change', () => refreshPerformance().catch((e) => showStatus(e.message)));
document.getElementById('range-form').addEventListener('submit', (event) => event.preventDefault());
loop(refreshHealth, HEALTH_EVERY_MS);
loop(refreshPerformance, PERFORMANCE_EVERY_MS);
