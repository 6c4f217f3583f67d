/**
 * A wall clock a test can step while the process runs, with Debian's libfaketime (package
 * `faketime`): the process is started with `LD_PRELOAD` of the library and an offset file
 * (`FAKETIME_TIMESTAMP_FILE`, re-read at most every second), so writing `+2h` to the file makes its
 * clock jump two hours ahead — as an NTP step would. Only the wall clock moves
 * (`FAKETIME_DONT_FAKE_MONOTONIC`): timers and `performance.now()` run on, as they do under a real
 * clock step. For a process that is off from its start, `startDemo`'s `prefix: ['faketime', '-f',
 * '+2h']` is simpler.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether the `faketime` command is installed. */
export function hasFaketime(): boolean {
  try {
    execFileSync('which', ['faketime'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The path of libfaketime.so.1 (Debian: `/usr/lib/<triplet>/faketime/`), or undefined. */
export function libfaketimePath(): string | undefined {
  for (const base of ['/usr/lib', '/usr/local/lib']) {
    if (!existsSync(base)) continue;
    for (const entry of ['', ...readdirSync(base)]) {
      const path = join(base, entry, 'faketime', 'libfaketime.so.1');
      if (existsSync(path)) return path;
    }
  }
  return undefined;
}

/** A wall-clock offset file for one process (see the file comment). */
export class SteppableClock {
  constructor(
    /** The offset file. */
    readonly file: string,
    offset = '+0',
  ) {
    this.set(offset);
  }

  /** The environment to start the process with. Throws when libfaketime is not installed. */
  env(): Record<string, string> {
    const library = libfaketimePath();
    if (!library) throw new Error('libfaketime is not installed (Debian package faketime; .ci/run installs it)');
    return {
      LD_PRELOAD: library,
      FAKETIME_TIMESTAMP_FILE: this.file,
      FAKETIME_CACHE_DURATION: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
  }

  /** Steps the clock: `+2h`, `-30s`, `+0` (libfaketime's relative syntax); in effect within a second. */
  set(offset: string): void {
    writeFileSync(this.file, `${offset}\n`);
  }
}
