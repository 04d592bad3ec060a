/**
 * `otlp-edge-agent passwd --file devices.passwd DEVICE_ID`: adds or replaces one device's credential line.
 * The password is the first line of stdin; on a terminal it is prompted for twice without echo.
 * Exit codes: 0 done, 1 the file could not be read or written (or is malformed), 2 usage error, 130 interrupted.
 */
import { ID_RULE } from '../../protocol/ids.js';
import { parseArgs } from 'node:util';
import { AuthError, AuthErrorCodes } from '../receiver/auth-errors.js';
import { checkDeviceId, upsertCredential } from '../receiver/credentials.js';

export interface PasswdIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const USAGE = `Usage: otlp-edge-agent passwd --file FILE DEVICE_ID

Adds DEVICE_ID to the credentials file FILE (mqtt.broker.credentials_file), or replaces its password.
The password is read from the first line of stdin; on a terminal it is asked for without echo.
FILE is created if missing and always written with mode 0600, keeping its owner; other lines and comments are kept.

  -f, --file FILE   credentials file to update (required)
  -h, --help        show this help

DEVICE_ID: ${ID_RULE}. The agent re-reads FILE on SIGHUP.
Example: printf '%s\\n' "$PW" | otlp-edge-agent passwd --file /etc/otlp-edge/devices.passwd sensor-0042
`;

/** MQTT passwords are at most 65,535 bytes [MQTT-3.1.3.5]. */
const MAX_PASSWORD_BYTES = 65_535;

class UsageError extends Error {}
class Interrupted extends Error {}

/** `argv` are the arguments after `passwd`. */
export async function runPasswd(
  argv: string[],
  io: PasswdIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let file: string;
  let deviceId: string;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { file: { type: 'string', short: 'f' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (values.file === undefined || values.file === '') throw new UsageError('--file FILE is required');
    if (positionals.length !== 1) throw new UsageError(`expected exactly one DEVICE_ID, got ${positionals.length}`);
    file = values.file;
    deviceId = positionals[0];
    checkDeviceId(deviceId);
  } catch (err) {
    return usage(io, (err as Error).message);
  }

  let password: Buffer;
  try {
    password = await readPassword(io, deviceId);
  } catch (err) {
    if (err instanceof Interrupted) return 130;
    return usage(io, (err as Error).message);
  }
  if (password.length === 0) {
    return usage(
      io,
      `the password for device ${JSON.stringify(deviceId)} is empty; expected a non-empty first line on stdin`,
    );
  }

  try {
    const what = await upsertCredential(file, deviceId, password);
    io.stdout.write(`${what} device ${deviceId} in ${file}\n`);
    return 0;
  } catch (err) {
    const e = err as Error;
    if (e instanceof AuthError && (e.code === AuthErrorCodes.BAD_DEVICE_ID || e.code === AuthErrorCodes.EMPTY_PASSWORD))
      return usage(io, e.message);
    io.stderr.write(`otlp-edge-agent passwd: ${e instanceof AuthError ? `${e.code}: ` : ''}${e.message}\n`);
    return 1;
  }
}

function usage(io: PasswdIo, message: string): number {
  io.stderr.write(`otlp-edge-agent passwd: ${message}\n\n${USAGE}`);
  return 2;
}

async function readPassword(io: PasswdIo, deviceId: string): Promise<Buffer> {
  const { stdin } = io;
  if (stdin.isTTY === true && typeof stdin.setRawMode === 'function') {
    const first = await promptHidden(io, `Password for ${deviceId}: `);
    if (first.length === 0) return first;
    const again = await promptHidden(io, 'Retype password: ');
    if (!first.equals(again)) throw new UsageError('the two passwords differ');
    return first;
  }
  return readFirstLine(stdin);
}

/** Bytes up to the first newline (without it, and without a trailing \r), or up to end of input. */
function readFirstLine(stdin: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null): void => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.removeListener('error', onError);
      stdin.pause();
      if (err) return reject(err);
      let line = Buffer.concat(chunks);
      const nl = line.indexOf(0x0a);
      if (nl >= 0) line = line.subarray(0, nl);
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      if (line.length > MAX_PASSWORD_BYTES)
        return reject(
          new UsageError(`the password is ${line.length} bytes; MQTT allows at most ${MAX_PASSWORD_BYTES}`),
        );
      resolve(line);
    };
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      chunks.push(b);
      size += b.length;
      if (b.includes(0x0a) || size > MAX_PASSWORD_BYTES + 2) finish(null);
    };
    const onEnd = (): void => finish(null);
    const onError = (err: Error): void => finish(err);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}

/** Reads one line from a terminal in raw mode, echoing nothing; backspace edits, Ctrl-C aborts. */
function promptHidden(io: PasswdIo, prompt: string): Promise<Buffer> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  stdin.setRawMode!(true);
  return new Promise((resolve, reject) => {
    const typed: string[] = [];
    const done = (err: Error | null): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode!(false);
      stdin.pause();
      io.stderr.write('\n');
      if (err) reject(err);
      else resolve(Buffer.from(typed.join(''), 'utf8'));
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done(null);
        if (ch === '\u0003') return done(new Interrupted('interrupted'));
        if (ch === '\u007f' || ch === '\b') typed.pop();
        else typed.push(ch);
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}
