import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import mqtt from 'mqtt';
import { repoRoot } from '../../../helpers/process.js';
import { freePort, waitFor } from '../../../helpers/ports.js';
import { tempDir } from '../../../helpers/tmp.js';
import { loadAgentConfig } from '../../../../agent/config.js';

const SERVICE_USER = 'otlpedge-test';

/** `npm pack` of this checkout as a user would run it (its prepack/prepare scripts), in a copy so dist stays as is. */
function pack(dir: string): string {
  const src = join(dir, 'checkout');
  const files = execFileSync('git', ['-C', repoRoot, 'ls-files', '-co', '--exclude-standard', '-z'], {
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f !== '' && existsSync(join(repoRoot, f)));
  for (const f of files) {
    mkdirSync(dirname(join(src, f)), { recursive: true });
    cpSync(join(repoRoot, f), join(src, f));
  }
  symlinkSync(join(repoRoot, 'node_modules'), join(src, 'node_modules'));
  const out = join(dir, 'packed');
  mkdirSync(out);
  execFileSync('npm', ['pack', '--pack-destination', out, '--loglevel=error'], { cwd: src, stdio: 'pipe' });
  return join(out, readdirSync(out)[0]);
}

function install(args: string[], env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> {
  return spawnSync('sh', args, { encoding: 'utf8', env, timeout: 300_000 });
}

const ok = (r: SpawnSyncReturns<string>) => assert.equal(r.status, 0, `install.sh failed:\n${r.stdout}\n${r.stderr}`);
const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const owner = (p: string) => execFileSync('stat', ['-c', '%U:%G', p], { encoding: 'utf8' }).trim();

test('install.sh installs the packed agent under a prefix, again idempotently, runs it as its user, and uninstalls', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755); // the service user walks down to the installed files
  if (spawnSync('id', [SERVICE_USER]).status !== 0) {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      SERVICE_USER,
    ]);
    t.after(() => void spawnSync('userdel', [SERVICE_USER]));
  }
  const tgz = pack(dir);
  const prefix = join(dir, 'root');
  mkdirSync(prefix);
  const script = join(repoRoot, 'deploy', 'gateway', 'install.sh');
  const app = join(prefix, 'opt', 'otlp-edge');
  const etc = join(prefix, 'etc', 'otlp-edge');
  const data = join(prefix, 'var', 'lib', 'otlp-edge-agent');
  const unitPath = join(prefix, 'etc', 'systemd', 'system', 'otlp-edge-agent.service');
  const bin = join(prefix, 'usr', 'local', 'bin', 'otlp-edge-agent');
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'gateway-token-0123456789\n');

  // A node that cannot run it is refused before anything is written.
  const noNode = install([script, '--prefix', prefix, '--user', SERVICE_USER, '--node', '/nonexistent/node', tgz]);
  assert.equal(noNode.status, 1);
  assert.match(noNode.stderr, /Node\.js 20 or newer is required/);
  assert.equal(existsSync(app), false);

  ok(
    install([
      script,
      '--prefix',
      prefix,
      '--user',
      SERVICE_USER,
      '--uplink',
      '127.0.0.1:4999',
      '--token-file',
      tokenFile,
      tgz,
    ]),
  );
  for (const p of [join(app, 'dist', 'agent', 'main.js'), join(app, 'node_modules', 'classic-level'), bin, unitPath])
    assert.ok(existsSync(p), `${p} installed`);
  assert.equal(existsSync(join(app, 'node_modules', 'typescript')), false, 'production dependencies only');
  assert.equal(existsSync(join(app, 'dist', 'test')), false, 'no tests in the package');
  assert.equal(mode(etc), '750');
  assert.equal(mode(data), '750');
  assert.equal(owner(data), `${SERVICE_USER}:${SERVICE_USER}`);
  assert.equal(owner(join(etc, 'devices.passwd')), `${SERVICE_USER}:${SERVICE_USER}`);
  assert.equal(mode(join(etc, 'agent.env')), '640');
  assert.match(readFileSync(join(etc, 'agent.env'), 'utf8'), /^OTLP_EDGE_TOKEN=gateway-token-0123456789$/m);

  // The example configuration loads with the agent's own loader and says what the installer was told.
  const cfg = loadAgentConfig(join(etc, 'agent.yaml'), { OTLP_EDGE_TOKEN: 'x' });
  assert.equal(cfg.agent.data_dir, data);
  assert.equal(cfg.mqtt.broker.credentials_file, join(etc, 'devices.passwd'));
  assert.equal(cfg.mqtt.broker.allow_anonymous, false);
  assert.deepEqual(cfg.uplink.endpoints, ['127.0.0.1:4999']);

  const unit = readFileSync(unitPath, 'utf8');
  for (const line of [
    'Restart=always',
    `User=${SERVICE_USER}`,
    'MemoryMax=224M',
    'ProtectSystem=strict',
    `ReadWritePaths=${data}`,
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'CapabilityBoundingSet=',
    'ExecReload=/bin/kill -HUP $MAINPID',
    `EnvironmentFile=-${join(etc, 'agent.env')}`,
  ])
    assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
  const exec = /^ExecStart=(\S+node) (.*) \S+\/dist\/agent\/main\.js --config \S+agent\.yaml$/m.exec(unit);
  assert.ok(exec, 'ExecStart runs node on the agent with its configuration');
  assert.deepEqual(exec[2].split(' '), ['--max-old-space-size=144']);
  // node refuses an unknown or malformed flag (exit 9): the flags the unit gives it must be its own.
  const flags = spawnSync(exec[1], [...exec[2].split(' '), '-e', '0'], { encoding: 'utf8' });
  assert.equal(flags.status, 0, `node takes the unit's flags: ${flags.stderr}`);
  const verify = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify is silent: ${verify.stderr}`);

  // The operator moves the listeners (as anyone would on a busy host); a second run keeps that and reinstalls the
  // same files from the unpacked package itself. A port below 1024 gives the unit CAP_NET_BIND_SERVICE, only then.
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const edited = readFileSync(join(etc, 'agent.yaml'), 'utf8')
    .replace('port: 1883', 'port: 883')
    .replace('port: 9464', `port: ${httpPort}`);
  writeFileSync(join(etc, 'agent.yaml'), edited);
  execFileSync('tar', ['-xzf', tgz, '-C', dir]);
  ok(install([join(dir, 'package', 'deploy', 'gateway', 'install.sh'), '--prefix', prefix, '--user', SERVICE_USER]));
  assert.equal(readFileSync(join(etc, 'agent.yaml'), 'utf8'), edited, 'the edited configuration is kept');
  assert.match(readFileSync(unitPath, 'utf8'), /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
  assert.match(readFileSync(join(etc, 'agent.env'), 'utf8'), /gateway-token/, 'the token is kept');
  writeFileSync(join(etc, 'agent.yaml'), edited.replace('port: 883', `port: ${mqttPort}`));
  ok(install([script, '--prefix', prefix, '--user', SERVICE_USER, tgz]));
  assert.match(readFileSync(unitPath, 'utf8'), /^CapabilityBoundingSet=$/m);

  // A device credential added by root with the installed command; the agent, as its own user, reads it.
  const passwd = spawnSync(bin, ['passwd', '--file', join(etc, 'devices.passwd'), 'dev-1'], {
    input: 'dev-1-secret\n',
    encoding: 'utf8',
  });
  assert.equal(passwd.status, 0, passwd.stderr);
  assert.equal(owner(join(etc, 'devices.passwd')), `${SERVICE_USER}:${SERVICE_USER}`, 'passwd keeps the owner');
  assert.equal(mode(join(etc, 'devices.passwd')), '600');

  const agent = spawn(
    'setpriv',
    [`--reuid=${SERVICE_USER}`, `--regid=${SERVICE_USER}`, '--init-groups', bin, '--config', join(etc, 'agent.yaml')],
    {
      env: { ...process.env, OTLP_EDGE_TOKEN: 'gateway-token-0123456789' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  agent.stdout.on('data', (b) => (output += b));
  agent.stderr.on('data', (b) => (output += b));
  const exited = new Promise((r) => agent.once('exit', r));
  t.after(() => {
    agent.kill('SIGKILL');
    return exited;
  });
  await waitFor(
    'the installed agent answers /healthz',
    async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).ok,
    20_000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}\n${output}`);
  });
  await waitFor('the installed agent is ready', async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok);
  const device = await mqtt
    .connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: 'dev-1',
      username: 'dev-1',
      password: 'dev-1-secret',
      reconnectPeriod: 0,
    })
    .catch((e: Error) => {
      throw new Error(`${e.message}\n${output}`);
    });
  await device.publishAsync('devices/dev-1/telemetry', JSON.stringify({ seq: 1, temperature: 21.5 }), { qos: 1 });
  await device.endAsync();
  assert.ok(readdirSync(join(data, 'buffer')).length > 0, 'the buffer lives in the data directory');
  agent.kill('SIGTERM');
  assert.equal(await exited, 0, `the agent stopped cleanly:\n${output}`);

  // --uninstall keeps configuration and data; --purge removes them.
  ok(install([script, '--uninstall', '--prefix', prefix]));
  for (const p of [app, bin, unitPath]) assert.equal(existsSync(p), false, `${p} removed`);
  assert.ok(existsSync(join(etc, 'agent.yaml')) && existsSync(join(data, 'buffer')), 'config and data kept');
  ok(install([script, '--uninstall', '--purge', '--prefix', prefix]));
  assert.equal(existsSync(etc), false);
  assert.equal(existsSync(data), false);
});

test('install.sh refuses, changing nothing, where the native modules cannot be built', async (t) => {
  const dir = tempDir(t);
  const tgz = pack(dir);
  // A machine without make or a C++ compiler (a bare arm64 gateway, say): PATH without them.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const hidden = new Set(['make', 'g++', 'c++', 'gcc', 'cc', 'x86_64-linux-gnu-g++', 'aarch64-linux-gnu-g++']);
  for (const d of ['/usr/local/bin', '/usr/bin', '/bin'])
    for (const name of readdirSync(d))
      if (!hidden.has(name) && !existsSync(join(bin, name))) symlinkSync(join(d, name), join(bin, name));
  const prefix = join(dir, 'root');
  mkdirSync(prefix);
  const r = install([join(repoRoot, 'deploy', 'gateway', 'install.sh'), '--prefix', prefix, '--user', 'root', tgz], {
    ...process.env,
    PATH: bin,
    // Build native modules here rather than download them: what a gateway without that download does.
    npm_config_build_from_source: 'true',
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /install make g\+\+ .*and run install\.sh again\. Nothing was installed\./);
  assert.equal(existsSync(join(prefix, 'opt', 'otlp-edge')), false);
  assert.equal(existsSync(join(prefix, 'etc')), false);
  assert.deepEqual(
    readdirSync(join(prefix, 'opt')).filter((f) => f.startsWith('.otlp-edge-stage')),
    [],
    'no staging left behind',
  );
});
