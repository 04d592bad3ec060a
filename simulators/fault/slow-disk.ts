import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A slow disk for one process, without root, cgroups or a special file system: a tiny shared library, preloaded
 * (LD_PRELOAD) into the agent, that makes every fsync and fdatasync — the calls a durable store waits on (LevelDB's
 * synced writes, Node's fs.fsync) — sleep for the delay written in a control file before doing the real call. The
 * harness changes the delay while the agent runs; with the file absent or 0 the calls go straight through.
 *
 * The library is compiled from the source below with the system's C compiler when a scenario needs it, so it
 * matches the machine (glibc, architecture) it runs on.
 */

const SOURCE = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long delay_ms(void) {
  const char *path = getenv("OTLP_EDGE_SLOW_DISK_CONTROL");
  if (path == NULL) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  return strtol(buf, NULL, 10);
}

static void slow(void) {
  long ms = delay_ms();
  if (ms <= 0) return;
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) != 0) {}
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  slow();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  slow();
  return real(fd);
}
`;

export interface SlowDisk {
  /** Environment for the process whose disk is to be slow. */
  env: Record<string, string>;
  /** Every fsync/fdatasync of that process now takes `ms` longer (0: full speed). */
  set(ms: number): void;
}

export class SlowDiskUnavailable extends Error {
  readonly code = 'OTLPEDGE_SIM_SLOW_DISK_UNAVAILABLE';
}

/** Builds the library in `dir` (needs `cc`: on Debian, apt-get install gcc). */
export async function buildSlowDisk(dir: string): Promise<SlowDisk> {
  const src = join(dir, 'slow-disk.c');
  const lib = join(dir, 'slow-disk.so');
  const control = join(dir, 'slow-disk.ms');
  writeFileSync(src, SOURCE);
  writeFileSync(control, '0');
  try {
    await promisify(execFile)('cc', ['-shared', '-fPIC', '-O2', '-o', lib, src, '-ldl']);
  } catch (e) {
    throw new SlowDiskUnavailable(
      `the slow-disk scenario compiles a small LD_PRELOAD library and could not: ${(e as Error).message.split('\n')[0]} (install a C compiler, e.g. apt-get install gcc)`,
    );
  }
  return {
    env: { LD_PRELOAD: lib, OTLP_EDGE_SLOW_DISK_CONTROL: control },
    set: (ms) => writeFileSync(control, String(Math.max(0, Math.round(ms)))),
  };
}
