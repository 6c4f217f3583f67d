/**
 * GC and allocation counter for the bench servers (BENCH_GC=1): the first SIGUSR2 starts a
 * `v8.GCProfiler`, the second stops it and writes one line to stderr,
 * `gc {"count":…,"scavenges":…,"markCompacts":…,"gcMs":…,"allocatedBytes":…}`: collections in the
 * window, their summed pause (ms) and the bytes allocated in it, estimated as the heap's growth
 * between one collection's end and the next one's start (plus the growth after the last one).
 */
import { getHeapStatistics, GCProfiler } from 'node:v8';

if (process.env.BENCH_GC === '1') {
  let profiler: GCProfiler | undefined;
  let startUsed = 0;
  process.on('SIGUSR2', () => {
    if (!profiler) {
      profiler = new GCProfiler();
      startUsed = getHeapStatistics().used_heap_size;
      profiler.start();
      return;
    }
    const { statistics } = profiler.stop()!;
    profiler = undefined;
    let allocated = 0;
    let previous = startUsed;
    let gcUs = 0;
    for (const gc of statistics) {
      allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - previous);
      previous = gc.afterGC.heapStatistics.usedHeapSize;
      gcUs += gc.cost;
    }
    allocated += Math.max(0, getHeapStatistics().used_heap_size - previous);
    const stats = {
      count: statistics.length,
      scavenges: statistics.filter((gc) => gc.gcType === 'Scavenge').length,
      markCompacts: statistics.filter((gc) => gc.gcType === 'MarkSweepCompact').length,
      gcMs: gcUs / 1000,
      allocatedBytes: allocated,
    };
    process.stderr.write(`gc ${JSON.stringify(stats)}\n`);
  });
}
