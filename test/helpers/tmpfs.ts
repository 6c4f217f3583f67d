/**
 * A small tmpfs a test can fill to the last byte (a disk-full fault) and free again. Needs
 * `mount -t tmpfs` (root, or CAP_SYS_ADMIN): where mount is not permitted the test is skipped with
 * the reason — except in CI (`process.env.CI`), where it fails instead, so the proof cannot go
 * missing quietly.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync, fsyncSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export interface Tmpfs {
  /** The mount point. */
  readonly dir: string;
  /** Bytes still free on it. */
  free(): number;
  /** Writes zeros to `dir/filler` until the file system is full (`ENOSPC`, down to the last byte). Returns the bytes written. */
  fill(): number;
  /** Deletes the filler: the space is free again. */
  release(): void;
  /** Unmounts (lazily if something still holds a file open) and removes the mount point. Safe to call twice. */
  unmount(): void;
}

/**
 * Mounts a tmpfs of `size` (`mount`'s syntax: `8m`, `64k`, …) on a new directory under the
 * system's temp dir. When mount is not permitted: in CI throws; elsewhere marks the test skipped
 * (`t.skip(reason)`) and returns undefined — the caller returns at once.
 */
export function mountTmpfs(t: TestContext, size: string): Tmpfs | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-tasks-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    const reason = `mounting a tmpfs is not permitted here (${stderr || (error as Error).message}); run as root or with CAP_SYS_ADMIN`;
    if (process.env.CI) throw new Error(`${reason} — required in CI`);
    t.skip(reason);
    return undefined;
  }
  let mounted = true;
  const filler = join(dir, 'filler');
  return {
    dir,
    free: () => {
      const stats = statfsSync(dir);
      return stats.bavail * stats.bsize;
    },
    fill: () => {
      const fd = openSync(filler, 'a');
      let written = 0;
      try {
        for (const chunk of [1 << 20, 1 << 16, 4096, 512, 1]) {
          const zeros = Buffer.alloc(chunk);
          for (;;) {
            try {
              const n = writeSync(fd, zeros);
              written += n;
              if (n < chunk) break;
            } catch (error) {
              if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw error;
            }
          }
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return written;
    },
    release: () => rmSync(filler, { force: true }),
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
