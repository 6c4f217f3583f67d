import type { TimelineItem } from './timeline.js';

/**
 * The time axis of a task's timeline chart. It runs from the task's creation to its end (or to now
 * while it lives) — never to a future deadline, which is drawn as a labelled marker instead — and
 * it is broken where nothing happened for long: each long quiet stretch (a wait of days between two
 * bursts of steps, a restart hours later) is drawn as a narrow labelled gap, so the bursts keep the
 * width and their bars stay readable instead of shrinking to slivers at the edges. Waiting (for an
 * answer, on a timer) is quiet; running a step is not. Between the breaks, each stretch from one
 * instant something starts or ends to the next is as wide as the logarithm of its length, so a
 * step of a few ms beside a wait of seconds still has its own place; the rows' texts give the exact
 * times and durations. Times are ms since the epoch; positions are percentages of the chart's width.
 */
export interface TimelineAxis {
  /** Where the axis starts (the task's creation). */
  start: number;
  /** Where it ends: the task's end, or now while it lives. */
  end: number;
  /** The long quiet stretches drawn narrow, in order: from/to in ms, left/width in %. */
  breaks: AxisBreak[];
  /** The position (0–100) of time `t` on the chart; times outside the axis are clamped to its ends. */
  pos(t: number): number;
}

/** A stretch of the axis drawn narrower than its duration (see `TimelineAxis`). */
export interface AxisBreak {
  from: number;
  to: number;
  left: number;
  width: number;
}

/** A quiet stretch is broken when it lasts at least this long (ms). */
const BREAK_MIN_MS = 10_000;
/** Width of one break (%), and of all breaks together at most. */
const BREAK_WIDTH = 8;
const BREAKS_MAX_WIDTH = 32;

/**
 * The axis of `items` for a task created at `start` whose chart ends at `end` (its end, or now).
 * The stretches between consecutive instants at which something starts or ends are as wide as
 * `log(1 + ms)`, except the quiet ones of at least 10 s (no step runs during them), each drawn
 * `BREAK_WIDTH`% wide (less when there are more than four) — unless every stretch is one (then
 * nothing would be left to widen, and none is a break).
 */
export function timelineAxis(items: TimelineItem[], start: number, end: number): TimelineAxis {
  const last = Math.max(start, end);
  const clamp = (t: number) => Math.min(last, Math.max(start, t));
  const instants = [...new Set([start, last, ...items.flatMap((i) => [i.start, ...(i.end !== undefined ? [i.end] : [])]).map(clamp)])].sort((a, b) => a - b);
  const total = last - start;
  const stretches = instants.slice(1).map((to, i) => ({ from: instants[i]!, to }));
  const steps = items.filter((i) => i.kind === 'step' && i.end !== undefined && i.end > i.start);
  const isLong = (s: { from: number; to: number }) => s.to - s.from >= BREAK_MIN_MS && !steps.some((step) => step.start < s.to && step.end! > s.from);
  const long = stretches.filter(isLong);
  const broken = long.length < stretches.length ? long : [];
  const breakWidth = broken.length === 0 ? 0 : Math.min(BREAK_WIDTH, BREAKS_MAX_WIDTH / broken.length);
  const weight = (s: { from: number; to: number }) => Math.log1p(s.to - s.from);
  const weights = stretches.filter((s) => !broken.includes(s)).reduce((sum, s) => sum + weight(s), 0);
  const perWeight = weights > 0 ? (100 - breakWidth * broken.length) / weights : 0;

  // Each stretch's place on the chart, left to right.
  const segments: { from: number; to: number; left: number; width: number }[] = [];
  let left = 0;
  for (const s of stretches) {
    const width = broken.includes(s) ? breakWidth : weight(s) * perWeight;
    segments.push({ ...s, left, width });
    left += width;
  }
  const pos = (t: number): number => {
    if (total <= 0) return 0;
    const at = clamp(t);
    const segment = segments.find((s) => at <= s.to) ?? segments.at(-1);
    if (!segment || segment.to === segment.from) return segment ? segment.left : 0;
    return Math.min(100, segment.left + ((at - segment.from) / (segment.to - segment.from)) * segment.width);
  };
  return { start, end: last, breaks: segments.filter((s) => broken.some((b) => b.from === s.from)), pos };
}
