import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { repoRoot } from '../../helpers/process.js';
import { tempDir } from '../../helpers/tmp.js';
import { loadAgentConfig, type AgentConfig } from '../../../agent/config.js';
import { loadAggregatorConfig, type AggregatorConfig } from '../../../aggregator/config.js';

/**
 * What deploy/ ships, checked without a container engine or a Kubernetes cluster: every YAML lints, every script
 * passes shellcheck, every configuration loads with the binaries' own loader, and every port, path, probe and file
 * the Dockerfile, the compose stack and the Kubernetes manifests name is one the binaries serve or read — taken
 * from the loaded configurations, not from literals copied into this test.
 */

const deploy = join(repoRoot, 'deploy');
const read = (p: string) => readFileSync(join(deploy, p), 'utf8');

function files(dir: string, match: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p, match));
    else if (match(name)) out.push(p);
  }
  return out;
}

/** The ports an aggregator listens on, by what they carry. */
const aggregatorPorts = (c: AggregatorConfig) => ({ grpc: c.grpc.port, otlpHttp: c.otlp_http.port, api: c.api.port });
const agentPorts = (c: AgentConfig) =>
  [c.mqtt.broker.enabled ? c.mqtt.broker.tcp.port : 0, c.http.port].filter(Boolean);

test('every YAML file in deploy/ passes yamllint and every script shellcheck', () => {
  const lint = spawnSync('yamllint', ['-f', 'parsable', '-c', join(deploy, '.yamllint'), deploy], { encoding: 'utf8' });
  assert.equal(lint.status, 0, `yamllint found errors:\n${lint.stdout}${lint.stderr}`);
  const yamls = files(deploy, (n) => /\.ya?ml$/.test(n));
  assert.ok(yamls.length >= 15, `yamllint saw ${yamls.length} files`);
  const scripts = [...files(deploy, (n) => n.endsWith('.sh')), join(repoRoot, '.ci', 'run')];
  const sc = spawnSync('shellcheck', scripts, { encoding: 'utf8' });
  assert.equal(sc.status, 0, `shellcheck:\n${sc.stdout}${sc.stderr}`);
});

// ---- the Dockerfile ----

interface Stage {
  name: string;
  from: string;
  lines: { op: string; args: string }[];
}

function dockerStages(text: string): Stage[] {
  const joined = text.replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  const args = new Map<string, string>();
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    const rem = rest.join(' ');
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rem.split('=');
      args.set(k, v);
    } else if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rem)!;
      const from = m[1].replace(/\$\{(\w+)\}/g, (_, k: string) => args.get(k) ?? '');
      stages.push({ name: m[2] ?? String(stages.length), from, lines: [] });
    } else stages.at(-1)!.lines.push({ op, args: rem });
  }
  return stages;
}

/** Every instruction of `name` and the stages it builds on, base first. */
function lineage(stages: Stage[], name: string): Stage[] {
  const s = stages.find((x) => x.name === name);
  if (!s) return [];
  return [...lineage(stages, s.from), s];
}

test('the Dockerfile: multi-stage, non-root, slim, health on the port the image config serves, data in a volume', () => {
  const stages = dockerStages(read('docker/Dockerfile'));
  for (const target of ['agent', 'aggregator'] as const) {
    const chain = lineage(stages, target);
    const all = chain.flatMap((s) => s.lines);
    const last = (op: string) => all.filter((l) => l.op === op).at(-1)?.args ?? '';
    assert.ok(chain.length >= 2 && stages.length >= 3, `${target}: multi-stage`);
    assert.match(chain[0].from, /-slim$/, `${target}: a slim base image`);
    assert.equal(last('USER'), 'node', `${target}: runs as the unprivileged user node`);
    const configCopy = all.find((l) => l.op === 'COPY' && l.args.includes(`deploy/docker/${target}.yaml`))!;
    const configPath = configCopy.args.split(/\s+/).at(-1)!;
    assert.deepEqual(JSON.parse(last('CMD')), ['--config', configPath], `${target}: runs with the config it ships`);
    const entry = JSON.parse(last('ENTRYPOINT')) as string[];
    assert.ok(existsSync(join(repoRoot, entry.at(-1)!)), `${target}: ${entry.at(-1)} is built`);
    const flags = spawnSync(process.execPath, [...entry.slice(1, -1), '-e', '0'], { encoding: 'utf8' });
    assert.equal(
      flags.status,
      0,
      `${target}: node takes the ENTRYPOINT's flags ${entry.slice(1, -1).join(' ')}: ${flags.stderr}`,
    );
    // The shipped configuration, as the binary loads it.
    const env = { OTLP_EDGE_TOKEN: '' };
    const ports =
      target === 'agent'
        ? agentPorts(loadAgentConfig(join(deploy, 'docker', 'agent.yaml'), env))
        : Object.values(aggregatorPorts(loadAggregatorConfig(join(deploy, 'docker', 'aggregator.yaml'), env)));
    const exposed = all.filter((l) => l.op === 'EXPOSE').flatMap((l) => l.args.split(/\s+/).map(Number));
    assert.deepEqual(exposed.sort(), [...ports].sort(), `${target}: EXPOSE lists what it listens on`);
    const health = /fetch\('http:\/\/127\.0\.0\.1:(\d+)(\/\w+)'\)/.exec(last('HEALTHCHECK'));
    assert.ok(health, `${target}: HEALTHCHECK asks an HTTP endpoint`);
    const config =
      target === 'agent'
        ? loadAgentConfig(join(deploy, 'docker', 'agent.yaml'), env).http.port
        : loadAggregatorConfig(join(deploy, 'docker', 'aggregator.yaml'), env).api.port;
    assert.deepEqual([Number(health[1]), health[2]], [config, '/healthz'], `${target}: HEALTHCHECK on /healthz`);
    const dataDir =
      target === 'agent'
        ? loadAgentConfig(join(deploy, 'docker', 'agent.yaml'), env).agent.data_dir
        : loadAggregatorConfig(join(deploy, 'docker', 'aggregator.yaml'), env).node.data_dir;
    assert.equal(last('VOLUME'), dataDir, `${target}: data_dir is the volume`);
  }
  // Every file the build copies from the repository exists.
  for (const s of stages)
    for (const l of s.lines)
      if (l.op === 'COPY' && !l.args.startsWith('--from')) {
        const parts = l.args.split(/\s+/).filter((p) => !p.startsWith('--'));
        for (const src of parts.slice(0, -1)) assert.ok(existsSync(join(repoRoot, src)), `COPY ${src} exists`);
      }
});

// ---- compose ----

test('compose: 3 aggregators, agent, mosquitto, fleet and Prometheus agree on names, ports and probes', () => {
  const compose = parseYaml(read('compose.yaml'), { merge: true });
  const svc = compose.services as Record<string, any>;
  const stages = dockerStages(read('docker/Dockerfile')).map((s) => s.name);
  const containerPath = (s: any, file: string) => {
    // The host directory mounted where the service reads `file`.
    for (const v of s.volumes as string[]) {
      const [host, inside] = v.split(':');
      if (file.startsWith(`${inside}/`) && host.startsWith('.')) return join(deploy, host, file.slice(inside.length));
    }
    throw new Error(`${file} is not in a mounted directory`);
  };
  const aggregators = Object.keys(svc).filter((k) => k.startsWith('aggregator-'));
  assert.equal(aggregators.length, 3);
  const seen: string[] = [];
  const apiPorts: number[] = [];
  for (const name of aggregators) {
    const s = svc[name];
    assert.ok(stages.includes(s.build.target), `${name}: builds a Dockerfile target`);
    const file = containerPath(s, s.command[1]);
    const cfg = loadAggregatorConfig(file, { ...s.environment });
    const ports = aggregatorPorts(cfg);
    for (const p of s.ports as string[]) {
      const [ip, , inside] = p.split(':');
      assert.equal(ip, '127.0.0.1', `${name}: published on loopback only`);
      assert.ok(Object.values(ports).includes(Number(inside)), `${name}: ${inside} is a port it serves`);
    }
    assert.match(s.healthcheck.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${ports.api}/readyz`));
    // Its members entry is this service, at its gRPC port.
    const self = cfg.cluster.members.find((m) => m.startsWith(`${cfg.node.id}=`));
    assert.equal(self, `${cfg.node.id}=${name}:${ports.grpc}`);
    seen.push(cfg.node.id);
    apiPorts.push(ports.api);
    assert.ok(
      s.volumes.some((v: string) => v.endsWith(`:${cfg.node.data_dir}`)),
      `${name}: data_dir in a volume`,
    );
    // It exports to the compose Prometheus by remote write.
    const exp = cfg.export.find((e) => e.protocol === 'prometheus_remote_write')!;
    assert.match(exp.endpoint, /^http:\/\/prometheus:9090\/api\/v1\/write$/);
    assert.ok(svc.prometheus.command.includes('--web.enable-remote-write-receiver'));
  }
  assert.equal(new Set(seen).size, 3, 'three distinct node ids');

  const agent = svc.agent;
  const agentCfg = loadAgentConfig(containerPath(agent, agent.command[1]), {});
  for (const e of agentCfg.uplink.endpoints) {
    const [host, port] = e.split(':');
    assert.ok(aggregators.includes(host), `uplink ${e} is an aggregator service`);
    const target = loadAggregatorConfig(containerPath(svc[host], svc[host].command[1]), { ...svc[host].environment });
    assert.equal(Number(port), target.grpc.port);
  }
  assert.equal(agentCfg.mqtt.client.enabled, true, 'client mode');
  const broker = new URL(agentCfg.mqtt.client.url);
  const mosquittoConf = read('compose/mosquitto.conf');
  assert.equal(broker.hostname, 'mosquitto');
  assert.match(mosquittoConf, new RegExp(`^listener ${broker.port}$`, 'm'));
  assert.match(agent.healthcheck.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${agentCfg.http.port}/healthz`));
  const fleetUrl = new URL(svc.fleet.command[svc.fleet.command.indexOf('--url') + 1]);
  assert.equal(`${fleetUrl.hostname}:${fleetUrl.port}`, `mosquitto:${broker.port}`);

  // Prometheus scrapes what the nodes and the agent serve, and its config passes promtool.
  const prom = parseYaml(read('compose/prometheus.yml'));
  const targets = prom.scrape_configs.flatMap((j: any) => j.static_configs.flatMap((s: any) => s.targets));
  assert.deepEqual(
    targets.sort(),
    [...aggregators.map((a, i) => `${a}:${apiPorts[i]}`), `agent:${agentCfg.http.port}`].sort(),
  );
  const promtool = spawnSync('promtool', ['check', 'config', join(deploy, 'compose', 'prometheus.yml')], {
    encoding: 'utf8',
  });
  assert.equal(promtool.status, 0, promtool.stdout + promtool.stderr);
});

// ---- Kubernetes ----

function kustomizeDocs(dir: string): any[] {
  const k = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const docs: any[] = [];
  for (const r of k.resources ?? []) {
    const p = join(dir, r);
    assert.ok(existsSync(p), `${relative(deploy, dir)}: resource ${r} exists`);
    if (statSync(p).isDirectory()) docs.push(...kustomizeDocs(p));
    else docs.push(...parseAllDocuments(readFileSync(p, 'utf8')).map((d) => d.toJS()));
  }
  return docs;
}

test('kubernetes: a StatefulSet whose ports, probes, mounts, DNS membership and preStop leave match the node', () => {
  const base = join(deploy, 'kubernetes', 'base');
  const docs = kustomizeDocs(base);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const sts = byKind('StatefulSet')[0];
  const pod = sts.spec.template.spec;
  const c = pod.containers[0];
  const podLabels = sts.spec.template.metadata.labels;
  const env = { POD_NAME: `${sts.metadata.name}-0`, POD_NAMESPACE: 'telemetry', POD_IP: '10.1.2.3' };
  for (const e of c.env) if (e.valueFrom) assert.ok(e.name in env, `${e.name} is one the config uses`);
  const configPath = c.args[c.args.indexOf('--config') + 1];
  const mountOf = (path: string) => c.volumeMounts.find((m: any) => path.startsWith(`${m.mountPath}/`));
  const configMount = mountOf(configPath);
  const volume = pod.volumes.find((v: any) => v.name === configMount.name);
  const k = parseYaml(readFileSync(join(base, 'kustomization.yaml'), 'utf8'));
  const generated = k.configMapGenerator.find((g: any) => g.name === volume.configMap.name);
  const file = generated.files.find((f: string) => f === configPath.slice(configMount.mountPath.length + 1));
  const cfg = loadAggregatorConfig(join(base, file), env);
  const ports = aggregatorPorts(cfg);

  // Ports and probes.
  const named = new Map<string, number>(c.ports.map((p: any) => [p.name, p.containerPort]));
  assert.deepEqual(
    [...named.values()].sort(),
    Object.values(ports).sort(),
    'containerPorts are what the node listens on',
  );
  assert.equal(named.get('api'), ports.api);
  assert.equal(named.get('grpc'), ports.grpc);
  for (const [probe, path] of [
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
    ['startupProbe', '/healthz'],
  ]) {
    assert.equal(c[probe].httpGet.path, path, probe);
    assert.equal(named.get(c[probe].httpGet.port), ports.api, `${probe} asks the API port`);
  }
  for (const svc of byKind('Service')) {
    for (const p of svc.spec.ports) assert.ok(named.has(p.targetPort), `${svc.metadata.name}: ${p.targetPort}`);
    for (const [key, value] of Object.entries(svc.spec.selector)) assert.equal(podLabels[key], value);
  }
  // Membership: the headless Service's records, each pod by its own IP, published before they are ready.
  const headless = byKind('Service').find((s) => s.spec.clusterIP === 'None');
  assert.equal(headless.spec.publishNotReadyAddresses, true);
  assert.equal(sts.spec.serviceName, headless.metadata.name);
  assert.equal(cfg.cluster.dns, `${headless.metadata.name}.telemetry.svc.cluster.local`);
  assert.equal(cfg.cluster.advertise, `${env.POD_IP}:${ports.grpc}`);
  assert.equal(cfg.node.id, env.POD_NAME);
  // Files the config reads are mounted: auth from the Secret, data from the PVC.
  for (const path of [cfg.auth.agent_tokens_file, cfg.auth.api_tokens_file, cfg.cluster.secret_file])
    assert.ok(mountOf(path), `${path} is mounted`);
  const data = c.volumeMounts.find((m: any) => m.mountPath === cfg.node.data_dir);
  assert.ok(
    sts.spec.volumeClaimTemplates.some((t: any) => t.metadata.name === data.name),
    'data_dir on a PVC',
  );
  // A stopping pod leaves the cluster first, within its grace period.
  const preStop = c.lifecycle.preStop.exec.command as string[];
  assert.deepEqual(preStop.slice(0, 3), ['node', 'dist/aggregator/main.js', 'leave']);
  assert.equal(preStop[preStop.indexOf('--config') + 1], configPath);
  const leaveSeconds = parseInt(preStop[preStop.indexOf('--timeout') + 1], 10);
  assert.ok(leaveSeconds < pod.terminationGracePeriodSeconds, 'leave ends before the pod is killed');
  // Non-root, requests for the HPA, a PDB and an HPA on this StatefulSet.
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.ok(c.resources.requests.cpu && c.resources.limits.memory);
  const pdb = byKind('PodDisruptionBudget')[0];
  for (const [key, value] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(podLabels[key], value);
  const hpa = byKind('HorizontalPodAutoscaler')[0];
  assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['StatefulSet', sts.metadata.name]);
  assert.equal(hpa.spec.metrics[0].resource.name, 'cpu');

  // The example overlay: its patches name resources of the base, its config (TLS) loads and uses mounted files, and
  // its Secret has the files the config reads.
  const overlay = join(deploy, 'kubernetes', 'overlays', 'example');
  const ok = parseYaml(readFileSync(join(overlay, 'kustomization.yaml'), 'utf8'));
  const all = kustomizeDocs(overlay);
  for (const p of ok.patches) {
    const target = p.target ?? parseYaml(readFileSync(join(overlay, p.path), 'utf8'));
    const name = target.name ?? target.metadata.name;
    assert.ok(
      all.some((d) => d.kind === target.kind && d.metadata.name === name),
      `patch target ${target.kind}/${name}`,
    );
  }
  const tlsPatch = parseYaml(readFileSync(join(overlay, 'tls.yaml'), 'utf8')).spec.template.spec;
  const replaced = ok.configMapGenerator.find((g: any) => g.name === volume.configMap.name);
  assert.equal(replaced.behavior, 'replace');
  const ocfg = loadAggregatorConfig(join(overlay, replaced.files[0]), env);
  assert.equal(ocfg.tls.enabled, true);
  const tlsMount = tlsPatch.containers[0].volumeMounts[0];
  for (const f of [ocfg.tls.cert, ocfg.tls.key, ocfg.tls.ca]) assert.ok(f.startsWith(`${tlsMount.mountPath}/`), f);
  const authSecret = pod.volumes.find((v: any) => v.name === mountOf(cfg.auth.api_tokens_file).name).secret.secretName;
  const gen = ok.secretGenerator.find((g: any) => g.name === authSecret);
  const authDir = mountOf(cfg.auth.api_tokens_file).mountPath;
  for (const f of [ocfg.auth.agent_tokens_file, ocfg.auth.api_tokens_file, ocfg.cluster.secret_file])
    assert.ok(
      gen.files.some((g: string) => `${authDir}/${g.split('/').at(-1)}` === f),
      `${f} comes from the generated Secret`,
    );
});

test('the gateway example config loads once install.sh has filled it in, with the defaults it claims', (t) => {
  const text = read('gateway/agent.yaml')
    .replaceAll('@APP@', '/opt/otlp-edge')
    .replaceAll('@CONFIG_DIR@', '/etc/otlp-edge')
    .replaceAll('@DATA_DIR@', '/var/lib/otlp-edge-agent')
    .replaceAll('@UPLINK@', 'aggregator.example.com:4317');
  assert.doesNotMatch(text, /@[A-Z_]+@/);
  const file = join(tempDir(t), 'agent.yaml');
  writeFileSync(file, text);
  const cfg = loadAgentConfig(file, { OTLP_EDGE_TOKEN: 'token' });
  const defaults = loadAgentConfig('', {});
  assert.equal(cfg.http.port, defaults.http.port, 'it serves /metrics where the default does');
  assert.equal(cfg.mqtt.broker.tcp.port, defaults.mqtt.broker.tcp.port);
  assert.equal(cfg.batch.max_delay, defaults.batch.max_delay);
  assert.equal(cfg.buffer.max_bytes, defaults.buffer.max_bytes);
  assert.equal(cfg.agent.data_dir, '/var/lib/otlp-edge-agent');
});
