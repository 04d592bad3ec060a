import protobuf from 'protobufjs';
import { join } from 'node:path';
import { repoRoot } from './agent-process.js';

export const protoDir = join(repoRoot, 'protocol', 'proto');

/** protobufjs reflection over the project's .proto files: an independent decoder for our hand-written encoders. */
export function loadProtos(...files: string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoDir, target);
  root.loadSync(files, { keepCase: false });
  root.resolveAll();
  return root;
}

export const toObjectOptions = { longs: String, enums: Number, bytes: String, defaults: false, oneofs: false } as const;
