#!/usr/bin/env node
/**
 * `otlp-edge-sim`: simulators and benchmarks. Each subcommand lives in its own module; this file only dispatches.
 */
import { print } from './bench/report.js';

const HELP = `otlp-edge-sim — simulators and benchmarks for otlp-edge

Usage:
  otlp-edge-sim bench protocol     hot paths of the protocol package (payload decode, OTLP encode,
                                   zstd, OTLP decode, ring lookups) beside baselines from the same run
  otlp-edge-sim --help             this text

Benchmarks print one JSON line, then a table with each figure beside its baseline and budget.
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, sub] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'bench') {
    if (sub === 'protocol') {
      const { benchProtocol } = await import('./bench/protocol.js');
      print(await benchProtocol());
      return 0;
    }
    process.stderr.write(`otlp-edge-sim bench: unknown benchmark '${sub ?? ''}'; expected one of: protocol\n`);
    return 2;
  }
  process.stderr.write(`otlp-edge-sim: unknown command '${cmd}'; run 'otlp-edge-sim --help'\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
