import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import { gatewayId, loadAgentConfig } from '../../../agent/config.js';
import { ConfigError } from '../../../protocol/errors.js';

const testdata = (name: string) =>
  fileURLToPath(new URL(`../../../../test/unit/agent/testdata/config/${name}`, import.meta.url));
const agentMain = fileURLToPath(new URL('../../../agent/main.js', import.meta.url));

test('a config with every documented key loads', () => {
  const cfg = loadAgentConfig(testdata('full.yaml'), { OTLP_EDGE_TOKEN: 'secret' });
  assert.equal(cfg.agent.id, 'gw-001');
  assert.deepEqual(cfg.agent.attributes, { site: 'plant-7' });
  assert.equal(cfg.mqtt.broker.tls.port, 8883);
  assert.equal(cfg.mqtt.broker.tls.require_client_cert, true);
  assert.equal(cfg.batch.max_delay, 200);
  assert.equal(cfg.buffer.max_bytes, 256 * 1024 * 1024);
  assert.equal(cfg.uplink.token, 'secret');
  assert.deepEqual(cfg.uplink.endpoints, ['127.0.0.1:4317']);
  assert.equal(cfg.mqtt.broker.max_session_expiry, 600_000);
  assert.equal(cfg.mqtt.sparkplug.reorder_timeout, 2000);
});

test('no config file gives the documented defaults and the host name as gateway id', () => {
  const cfg = loadAgentConfig('', {});
  assert.equal(cfg.mqtt.broker.tcp.port, 1883);
  assert.equal(cfg.mqtt.broker.allow_anonymous, false);
  assert.equal(cfg.batch.max_points, 5000);
  assert.equal(cfg.http.port, 9464);
  assert.equal(
    gatewayId(cfg),
    hostname()
      .replace(/[^A-Za-z0-9._:-]/g, '-')
      .slice(0, 128),
  );
});

test('an invalid config names every bad key, its value and what is expected', () => {
  assert.throws(
    () => loadAgentConfig(testdata('invalid.yaml'), {}),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.code, 'OTLPEDGE_CONFIG_INVALID');
      for (const line of [
        /agent\.id: expected 1–128 characters of \[A-Za-z0-9\._:-\], got "gw 001"/,
        /mqtt\.broker\.tcp\.port: expected an integer from 0 to 65535, got 99999/,
        /mqtt\.broker\.alow_anonymous: unknown key/,
        /batch\.max_delay: expected a duration/,
        /buffer\.max_bytes: expected a size of at least 64KiB, got "?10"?/,
        /log\.level: expected one of trace, debug, info, warn, error, fatal, silent, got "loud"/,
      ])
        assert.match(e.message, line);
      return true;
    },
  );
});

test('otlp-edge-agent stops at start with the config problems and exit code 2', () => {
  const r = spawnSync(process.execPath, [agentMain, '--config', testdata('invalid.yaml')], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /OTLPEDGE_CONFIG_INVALID: invalid configuration in .*invalid\.yaml \(6 problems\)/);
  const ok = spawnSync(process.execPath, [agentMain, '--config', testdata('full.yaml'), '--check'], {
    encoding: 'utf8',
    env: { ...process.env, OTLP_EDGE_TOKEN: 'x' },
  });
  assert.equal(ok.status, 0, ok.stderr);
  const help = spawnSync(process.execPath, [agentMain, '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /otlp-edge-agent passwd --file devices\.passwd DEVICE_ID/);
  assert.match(help.stdout, /buffer stats\|dump/);
});

test('keys of the contract that are not built yet, and settings that could never work, stop the agent at start', () => {
  assert.throws(
    () => loadAgentConfig(testdata('not-built.yaml'), {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      /mqtt\.sparkplug\.topic_root: expected one topic level, without \/, \+ or #, got "sp\/B"/.test(e.message) &&
      /processors\[0\]: expected a mapping with one key naming one of: memory_limiter, attributes, redaction; got the keys sampling/.test(
        e.message,
      ),
  );
  assert.throws(
    () => loadAgentConfig(testdata('sparkplug-ids.yaml'), {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      /mqtt\.sparkplug\.device_id: "\{group\}:\{device\}" must contain \{edge_node\} and \{device\}/.test(e.message) &&
      /mqtt\.sparkplug\.node_id: .* must contain \{edge_node\} and not \{device\}/.test(e.message),
  );
  assert.throws(
    () => loadAgentConfig(testdata('client-cert-no-ca.yaml'), {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      /mqtt\.broker\.tls\.cert: required/.test(e.message) &&
      /mqtt\.broker\.tls\.require_client_cert: true needs mqtt\.broker\.tls\.ca/.test(e.message),
  );
  assert.equal(loadAgentConfig(testdata('full.yaml'), { OTLP_EDGE_TOKEN: 'x' }).mqtt.broker.max_connections, 20000);
  assert.equal(loadAgentConfig(testdata('full.yaml'), { OTLP_EDGE_TOKEN: 'x' }).uplink.max_delay, 50);
  assert.equal(loadAgentConfig('', {}).uplink.max_delay, 50, 'the default');
});
