import type { ConfigProblem } from '../protocol/config/schema.js';
import { formatDuration } from '../protocol/config/units.js';
import { isValidAddress, MAX_ADDRESS_BYTES } from '../protocol/ring/ring.js';
import { checkProcessors } from '../runtime/processors/chain.js';
import type { AggregatorConfig } from './config.js';

/** The aggregator configuration's rules between keys (checked after the schema; each names its key). */

/** Rules between keys, reported like any other problem. */
export function crossCheck(cfg: AggregatorConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = checkProcessors(cfg.processors, 'processors', { topics: false });
  cfg.processors.forEach((p, i) => {
    if (p.kind !== 'quotas') return;
    // Quotas are per tenant, and tenants come from the agent tokens: without them the limits would bind no one.
    if (cfg.auth.agent_tokens_file === '')
      problems.push({
        path: `processors[${i}].quotas`,
        message:
          'needs tenants: set auth.agent_tokens_file with a TENANT column ("AGENT_ID TOKEN TENANT"); without it no data belongs to a tenant and no quota would apply',
      });
  });
  for (const kind of ['quotas', 'sampling'])
    cfg.processors.forEach((p, i) => {
      if (p.kind === kind && cfg.processors.findIndex((q) => q.kind === kind) !== i)
        problems.push({ path: `processors[${i}].${kind}`, message: `${kind} is listed twice; list it once` });
    });
  if (cfg.tls.enabled) {
    if (cfg.tls.cert === '')
      problems.push({ path: 'tls.cert', message: 'required when tls.enabled is true (a PEM certificate file)' });
    if (cfg.tls.key === '')
      problems.push({ path: 'tls.key', message: 'required when tls.enabled is true (a PEM private key file)' });
  }
  cfg.cluster.members.forEach((entry, i) => {
    const address = entry.slice(entry.indexOf('=') + 1);
    if (!isValidAddress(address))
      problems.push({
        path: `cluster.members[${i}]`,
        message: `address ${JSON.stringify(address.slice(0, 300))} is not HOST:PORT of at most ${MAX_ADDRESS_BYTES} bytes`,
      });
  });
  if (cfg.cluster.advertise !== '' && !isValidAddress(cfg.cluster.advertise)) {
    problems.push({
      path: 'cluster.advertise',
      message: `expected HOST:PORT of at most ${MAX_ADDRESS_BYTES} bytes, got ${JSON.stringify(cfg.cluster.advertise.slice(0, 300))}`,
    });
  }
  // Each tier kept must reach further back than the finer ones: its buckets are made of theirs as they expire.
  let longest = { key: 'devices.rollup_retention', ms: cfg.devices.rollup_retention };
  for (const key of ['hourly_retention', 'daily_retention'] as const) {
    const ms = cfg.devices[key];
    if (ms === 0) continue;
    if (ms <= longest.ms)
      problems.push({
        path: `devices.${key}`,
        message: `${formatDuration(ms)} must be longer than ${longest.key} (${formatDuration(longest.ms)}), or 0 to keep no such tier`,
      });
    else longest = { key: `devices.${key}`, ms };
  }
  const clustered = cfg.cluster.members.length > 0 || cfg.cluster.dns !== '';
  if (clustered && cfg.cluster.secret_file === '' && cfg.auth.agent_tokens_file !== '') {
    problems.push({
      path: 'cluster.secret_file',
      message:
        'required in a cluster when auth.agent_tokens_file is set: without it anyone who reaches the gRPC port could forward data as any agent (write one secret, e.g. `openssl rand -hex 32`, to a file every member reads)',
    });
  }
  const names = new Set<string>();
  exporterNames(cfg).forEach((name, i) => {
    const e = cfg.export[i];
    const at = `export${cfg.export.length > 1 ? `[${i}]` : ''}`;
    if (names.has(name))
      problems.push({
        path: `${at}.name`,
        message: `${JSON.stringify(name)} names two exporters: give each its own name`,
      });
    names.add(name);
    if (!e.enabled) return;
    if (e.endpoint === '') problems.push({ path: `${at}.endpoint`, message: 'required: where to send' });
    else if (e.protocol !== 'otlp_grpc' && !/^https?:\/\/[^\s/]+/.test(e.endpoint))
      problems.push({
        path: `${at}.endpoint`,
        message: `expected an http:// or https:// URL, got ${JSON.stringify(e.endpoint)}`,
      });
    else if (e.protocol === 'otlp_grpc' && !/^(https?:\/\/)?[^\s/:]+:\d{1,5}\/?$/.test(e.endpoint))
      problems.push({
        path: `${at}.endpoint`,
        message: `expected host:port or https://host:port, got ${JSON.stringify(e.endpoint)}`,
      });
    if (e.protocol === 'otlp_grpc' && e.compression === 'zstd')
      problems.push({ path: `${at}.compression`, message: 'otlp_grpc sends gzip or none (gRPC has no zstd here)' });
    if (e.protocol === 'prometheus_remote_write' && e.signals.some((s) => s !== 'metrics') && e.signals.length !== 3)
      problems.push({ path: `${at}.signals`, message: 'prometheus_remote_write takes metrics only' });
    if (e.protocol === 'prometheus_remote_write' && e.max_in_flight > 1)
      problems.push({
        path: `${at}.max_in_flight`,
        message:
          'prometheus_remote_write sends one request at a time: Prometheus refuses a sample older than the newest of its series, so requests overtaking each other would be refused',
      });
  });
  problems.push(...alertProblems(cfg));
  return problems;
}

const URL_PATTERN = /^https?:\/\/[^\s/]+/;

function alertProblems(cfg: AggregatorConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const a = cfg.alerts;
  const names = new Set<string>();
  a.rules.forEach((r, i) => {
    const at = `alerts.rules${a.rules.length > 1 ? `[${i}]` : ''}`;
    if (r.name === '') problems.push({ path: `${at}.name`, message: 'required: the alertname, e.g. HighTemperature' });
    else if (names.has(r.name) || r.name === 'DeviceOffline' || r.name === 'DeviceMissingReadings')
      problems.push({
        path: `${at}.name`,
        message: `${JSON.stringify(r.name)} names another alert already: give each rule its own name`,
      });
    names.add(r.name);
    if (r.metric === '') problems.push({ path: `${at}.metric`, message: 'required: the metric the rule compares' });
    if (r.devices === '') problems.push({ path: `${at}.devices`, message: 'expected a glob such as "*" or "pump-*"' });
  });
  if (a.alertmanager.url !== '' && !URL_PATTERN.test(a.alertmanager.url))
    problems.push({
      path: 'alerts.alertmanager.url',
      message: `expected an http:// or https:// base URL (e.g. http://alertmanager:9093), got ${JSON.stringify(a.alertmanager.url)}`,
    });
  a.webhooks.forEach((w, i) => {
    const at = `alerts.webhooks${a.webhooks.length > 1 ? `[${i}]` : ''}`;
    if (!URL_PATTERN.test(w.url))
      problems.push({
        path: `${at}.url`,
        message: `expected an http:// or https:// URL, got ${JSON.stringify(w.url)}`,
      });
  });
  for (const key of Object.keys(a.labels))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
      problems.push({
        path: `alerts.labels.${key}`,
        message: 'expected a Prometheus label name ([A-Za-z_][A-Za-z0-9_]*)',
      });
  return problems;
}

/** Each export entry's name: its own, or its protocol (then -2, -3… for further entries of one protocol). */
export function exporterNames(cfg: AggregatorConfig): string[] {
  const seen = new Map<string, number>();
  return cfg.export.map((e) => {
    if (e.name !== '') return e.name;
    const n = (seen.get(e.protocol) ?? 0) + 1;
    seen.set(e.protocol, n);
    return n === 1 ? e.protocol : `${e.protocol}-${n}`;
  });
}
