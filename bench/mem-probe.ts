/**
 * Memory probe for a bench server, preloaded into it (`node --expose-gc --import tsx --import
 * ./bench/mem-probe.ts <server>`), so any server is measured the same way without changing it.
 * It answers the bench process over the child's IPC channel (spawned with `stdio: [..., 'ipc']`):
 *
 * - `{ type: 'mem' }` → `{ type: 'mem', rss, heapUsed, heapTotal, external, arrayBuffers }` (bytes),
 *   measured after settling the heap (see `settle`);
 * - `{ type: 'snapshot', path }` → `{ type: 'snapshot', path }` once the heap is settled and a heap
 *   snapshot is written there (`v8.writeHeapSnapshot`).
 *
 * Without an IPC channel (not spawned by a bench) it does nothing.
 */
import { writeHeapSnapshot } from 'node:v8';

type Request = { type: 'mem' } | { type: 'snapshot'; path: string };

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Three full collections (`global.gc`, needs `--expose-gc`) with a turn of the event loop between
 * them: objects held only by a `FinalizationRegistry`'s holdings (undici's `Request` keeps its
 * signal, and what that signal's listeners reach, until its finalizer has run) are released by the
 * finalizers the previous collection scheduled.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  gc?.();
}

if (process.send) {
  process.on('message', (request: Request) => {
    void settle().then(() => {
      if (request.type === 'mem') {
        const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
        process.send!({ type: 'mem', rss, heapUsed, heapTotal, external, arrayBuffers, gc: gc !== undefined });
      } else if (request.type === 'snapshot') {
        writeHeapSnapshot(request.path);
        process.send!({ type: 'snapshot', path: request.path });
      }
    });
  });
  // The channel must not keep a server alive that would otherwise exit.
  process.channel?.unref();
}
