/**
 * Throwaway TLS material for tests, made at test time with the `openssl` command-line tool in a temp directory (no
 * key is ever committed): a CA, a server certificate for 127.0.0.1 / localhost, and client certificates with a given
 * CN signed by that CA (or by a second, untrusted CA). EC P-256 keys keep generation to a few ms.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pem {
  cert: Buffer;
  key: Buffer;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  ca: Buffer;
  caFile: string;
  server: Pem;
  /** A client certificate with subject CN=`cn`, signed by the test CA (or by an unrelated CA with `untrusted`). */
  client(cn: string, options?: { untrusted?: boolean }): Promise<Pem>;
  cleanup(): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-sha256',
      '-days',
      '2',
      '-subj',
      `/CN=otlp-edge ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
}

async function issue(dir: string, ca: string, name: string, cn: string, ext: string): Promise<Pem> {
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '2',
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: await readFile(certFile), key: await readFile(keyFile), certFile, keyFile };
}

export async function createTestPki(): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'otlp-edge-tls-'));
  await makeCa(dir, 'ca');
  const server = await issue(
    dir,
    'ca',
    'server',
    'localhost',
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  let untrustedCa = false;
  let n = 0;
  return {
    dir,
    ca: await readFile(join(dir, 'ca.crt')),
    caFile: join(dir, 'ca.crt'),
    server,
    async client(cn, options = {}) {
      let ca = 'ca';
      if (options.untrusted) {
        if (!untrustedCa) await makeCa(dir, 'rogue-ca');
        untrustedCa = true;
        ca = 'rogue-ca';
      }
      return issue(
        dir,
        ca,
        `client-${n++}`,
        cn,
        'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n',
      );
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
