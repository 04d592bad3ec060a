// The fleet page: overview, device list, alerts and ring from the JSON API; live updates from GET /v1/stream.
import { liveChart, rollupChart } from '/ui/charts.js';

const $ = (id) => document.getElementById(id);
const state = { view: null, stream: null, timers: [], cursor: null, charts: [], device: null, range: 'live' };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const fmt = (v) =>
  typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '')) : String(v);

function showError(message) {
  const e = $('error');
  e.hidden = message === null;
  e.textContent = message ?? '';
}

async function api(path, init) {
  const r = await fetch(path, { credentials: 'same-origin', ...init });
  const body = await r.json().catch(() => ({}));
  if (r.status === 401)
    throw new Error('This node needs an API token: reload the page and give the token as the password.');
  if (!r.ok) throw Object.assign(new Error(body.error?.message ?? `${path}: HTTP ${r.status}`), { status: r.status });
  return body;
}

function statusCell(online) {
  return el('span', { class: `status ${online ? 'online' : 'offline'}` }, online ? '● online' : '○ offline');
}

// ---- live stream -------------------------------------------------------------------------------------------------

/** Opens the stream with a one-use ticket; reconnects with backoff until closed. */
function openStream(params, onMessage) {
  let ws = null;
  let closed = false;
  let wait = 500;
  const live = $('live');
  async function connect() {
    if (closed) return;
    try {
      const { ticket } = await api('/v1/stream/tickets', { method: 'POST' });
      const q = new URLSearchParams(params);
      q.set('ticket', ticket);
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream?${q}`);
    } catch {
      live.className = 'live off';
      live.textContent = 'stream unavailable';
      setTimeout(connect, (wait = Math.min(wait * 2, 10000)));
      return;
    }
    ws.onopen = () => {
      wait = 500;
      live.className = 'live on';
      live.textContent = 'live';
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === 'hello') $('node').textContent = `node ${msg.node}`;
      else if (msg.type === 'dropped') live.textContent = `live (${msg.count} updates skipped)`;
      else onMessage(msg);
    };
    ws.onclose = (e) => {
      if (closed) return;
      live.className = 'live off';
      live.textContent = e.reason ? `reconnecting (${e.reason})` : 'reconnecting…';
      setTimeout(connect, (wait = Math.min(wait * 2, 10000)));
    };
  }
  connect();
  return () => {
    closed = true;
    ws?.close();
  };
}

function stopView() {
  state.stream?.();
  state.stream = null;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  for (const c of state.charts) c.destroy();
  state.charts = [];
}

// ---- fleet view --------------------------------------------------------------------------------------------------

async function loadTotals() {
  let f;
  try {
    f = await api('/v1/fleet');
  } catch (e) {
    if (e.status !== 403) throw e;
    // A token bound to a tenant sees its devices, not the cluster's totals.
    $('totals').replaceChildren(
      el('div', {}, el('dt', {}, 'Fleet totals'), el('dd', {}, 'not shown to a tenant token')),
    );
    $('members').replaceChildren();
    return;
  }
  const cards = [
    ['Devices', f.devices],
    ['Online', f.online],
    ['Offline', f.offline],
    ['Readings/s', f.readings_per_second],
    ['Missing', f.counts.missing],
    ['Duplicates', f.counts.duplicates],
    ['Alerts firing', f.alerts_firing],
  ];
  $('totals').replaceChildren(...cards.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, fmt(v)))));
  $('members').replaceChildren(
    ...f.members.map((m) =>
      el(
        'tr',
        {},
        el('td', {}, m.id),
        el(
          'td',
          {},
          el('span', { class: `status ${m.healthy ? 'online' : 'offline'}` }, m.healthy ? 'healthy' : 'down'),
        ),
        el('td', {}, `${Math.round(m.share * 1000) / 10} %`),
        el('td', {}, m.devices ?? '—'),
        el('td', {}, m.readings_per_second ?? '—'),
      ),
    ),
  );
}

async function loadAlerts() {
  const r = await api('/v1/alerts');
  $('alerts').replaceChildren(
    ...r.alerts.map((a) =>
      el(
        'tr',
        {},
        el('td', {}, el('span', { class: `status ${a.state}` }, a.alertname), ` ${a.severity}`),
        el('td', {}, el('a', { href: `#/devices/${encodeURIComponent(a.device_id)}` }, a.device_id)),
        el('td', { title: a.starts_at }, ago(a.starts_at)),
      ),
    ),
  );
  $('alerts-note').textContent = r.alerts.length === 0 ? 'No active alerts.' : '';
}

function deviceRow(d) {
  return el(
    'tr',
    { 'data-device': d.id },
    el('td', {}, statusCell(d.online)),
    el('td', {}, el('a', { href: `#/devices/${encodeURIComponent(d.id)}` }, d.id)),
    el('td', { title: d.last_seen ?? '', class: 'seen', 'data-seen': d.last_seen ?? '' }, ago(d.last_seen)),
  );
}

/** The device list: a new first page, the next page (append), or the rows shown again (refresh). */
async function loadDevices(append, refresh = false) {
  const shown = $('devices').children.length;
  const q = new URLSearchParams({ limit: String(refresh ? Math.min(1000, Math.max(100, shown)) : 100) });
  const match = $('search').value.trim();
  if (match) q.set('match', match);
  if ($('online-filter').value) q.set('online', $('online-filter').value);
  if (append && state.cursor) q.set('cursor', state.cursor);
  const r = await api(`/v1/devices?${q}`);
  const rows = r.devices.map(deviceRow);
  if (append) $('devices').append(...rows);
  else $('devices').replaceChildren(...rows);
  state.cursor = r.next;
  $('more').hidden = r.next === null;
  const n = $('devices').children.length;
  $('devices-note').textContent =
    (n === 0 ? 'No devices match.' : `${n} shown.`) +
    (r.missing_members ? ` Members not answering: ${r.missing_members.join(', ')}.` : '');
}

function refreshSeen() {
  for (const td of document.querySelectorAll('td.seen')) td.textContent = ago(td.dataset.seen);
}

function fleetView() {
  $('fleet-view').hidden = false;
  $('device-view').hidden = true;
  const run = (p) =>
    p.then(
      () => showError(null),
      (e) => showError(e.message),
    );
  run(Promise.all([loadTotals(), loadAlerts(), loadDevices(false)]));
  state.timers.push(setInterval(() => run(Promise.all([loadTotals(), loadAlerts(), loadDevices(false, true)])), 5000));
  state.timers.push(setInterval(refreshSeen, 1000));
  state.stream = openStream({ kind: 'status,alert' }, (msg) => {
    if (msg.type === 'status') {
      const row = document.querySelector(`tr[data-device="${CSS.escape(msg.device)}"]`);
      if (row) {
        row.cells[0].replaceChildren(statusCell(msg.online));
        row.cells[2].dataset.seen = msg.last_seen;
        row.cells[2].textContent = ago(msg.last_seen);
      }
    } else if (msg.type === 'alert') run(loadAlerts());
  });
}

// ---- device view -------------------------------------------------------------------------------------------------

/** Shows a metric's value unless a newer one is shown already (the stream and the API may cross). */
function setLatest(metric, value, ts) {
  let row = document.querySelector(`#latest tr[data-metric="${CSS.escape(metric)}"]`);
  if (!row) {
    row = el('tr', { 'data-metric': metric }, el('th', { scope: 'row' }, metric), el('td'), el('td'));
    $('latest').append(row);
  } else if (row.cells[2].title && Date.parse(row.cells[2].title) > Date.parse(ts)) return;
  row.cells[1].textContent = fmt(value);
  row.cells[2].textContent = new Date(ts).toLocaleTimeString();
  row.cells[2].title = ts;
}

function pairs(target, obj) {
  target.replaceChildren(
    ...Object.entries(obj).flatMap(([k, v]) => [
      el('dt', {}, k),
      el('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)),
    ]),
  );
}

function setStatus(online, lastSeen, owner) {
  const s = $('device-status');
  s.replaceChildren(statusCell(online), ` · last seen ${ago(lastSeen)}${owner ? ` · owner ${owner}` : ''}`);
}

async function drawCharts() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
  const d = state.device;
  if (!d) return;
  const metrics = Object.keys(d.latest);
  if (state.range === 'live') {
    for (const m of metrics) state.charts.push(liveChart($('charts'), m));
    return;
  }
  const span = state.range === 'hour' ? 3600e3 : 86400e3;
  const to = Date.now();
  const series = await Promise.all(
    metrics.map((m) =>
      api(`/v1/devices/${encodeURIComponent(d.id)}/series?metric=${encodeURIComponent(m)}&from=${to - span}&to=${to}`),
    ),
  );
  for (const s of series)
    state.charts.push(rollupChart($('charts'), s.metric, s.points, state.range === 'hour' ? 'last hour' : 'last day'));
}

function addEvent(e) {
  const li = el(
    'li',
    {},
    el('span', { class: `sev ${e.severity}` }, e.severity),
    el('time', { dateTime: e.ts }, new Date(e.ts).toLocaleTimeString()),
    ' ',
    typeof e.body === 'string' ? e.body : JSON.stringify(e.body),
  );
  $('events').prepend(li);
  while ($('events').children.length > 100) $('events').lastChild.remove();
  $('events-note').hidden = true;
}

async function deviceView(id) {
  $('fleet-view').hidden = true;
  $('device-view').hidden = false;
  $('device-title').textContent = id;
  $('latest').replaceChildren();
  $('events').replaceChildren();
  $('events-note').hidden = false;
  let d;
  try {
    d = await api(`/v1/devices/${encodeURIComponent(id)}`);
    showError(null);
  } catch (e) {
    // Not known yet (or not reachable now): wait for its data on the stream and the next poll.
    showError(`${e.message} Waiting for data from ${id}…`);
    d = { id, online: false, last_seen: null, owner: null, latest: {}, counts: {}, resource: {} };
  }
  state.device = d;
  setStatus(d.online, d.last_seen, d.owner);
  for (const [m, v] of Object.entries(d.latest)) setLatest(m, v.value, v.ts);
  pairs($('counts'), d.counts);
  pairs($('resource'), d.resource ?? {});
  await drawCharts().catch((e) => showError(e.message));
  const recent = await api(`/v1/devices/${encodeURIComponent(id)}/events?limit=50`).catch(() => ({ events: [] }));
  for (const e of recent.events.reverse()) addEvent(e);
  $('events-note').textContent = 'No events yet.';
  $('events-note').hidden = recent.events.length > 0;
  state.timers.push(
    setInterval(async () => {
      const now = await api(`/v1/devices/${encodeURIComponent(id)}`).catch(() => null);
      if (now) {
        showError(null);
        state.device = { ...now, latest: { ...state.device.latest, ...now.latest } };
        for (const [m, v] of Object.entries(now.latest)) setLatest(m, v.value, v.ts);
        pairs($('counts'), now.counts);
        pairs($('resource'), now.resource ?? {});
        setStatus(now.online, now.last_seen, now.owner);
      }
    }, 5000),
  );
  state.stream = openStream({ device: id, events: 'true' }, (msg) => {
    if (msg.type === 'reading') {
      for (const [m, v] of Object.entries(msg.metrics)) {
        setLatest(m, v, msg.ts);
        if (!(m in state.device.latest)) {
          state.device.latest[m] = { value: v, ts: msg.ts };
          if (state.range === 'live') state.charts.push(liveChart($('charts'), m));
        }
        if (state.range === 'live') state.charts.find((c) => c.metric === m)?.add(Date.parse(msg.ts), v);
      }
      setStatus(true, msg.ts, state.device.owner);
    } else if (msg.type === 'status') setStatus(msg.online, msg.last_seen, state.device.owner);
    else if (msg.type === 'event') addEvent(msg);
  });
}

// ---- routing -----------------------------------------------------------------------------------------------------

function route() {
  stopView();
  const m = /^#\/devices\/(.+)$/.exec(location.hash);
  if (m) deviceView(decodeURIComponent(m[1]));
  else fleetView();
}

let searchTimer = null;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadDevices(false).catch((e) => showError(e.message)), 250);
});
$('online-filter').addEventListener('change', () => loadDevices(false).catch((e) => showError(e.message)));
$('device-filter').addEventListener('submit', (e) => e.preventDefault());
$('more').addEventListener('click', () => loadDevices(true).catch((e) => showError(e.message)));
for (const r of document.querySelectorAll('input[name="range"]'))
  r.addEventListener('change', () => {
    state.range = r.value;
    drawCharts().catch((e) => showError(e.message));
  });
window.addEventListener('hashchange', route);
route();
