import type { Json, JsonObject } from '../../core/json.js';
import { isTerminal, type TaskStatus } from '../../core/status.js';
import type { InputRequest, TaskRecord } from '../../core/task.js';
import { completedWithToolError } from '../../store/backend.js';
import { timelineAxis } from './axis.js';
import { renderFields } from './form.js';
import { html, raw, type Html } from './html.js';
import { actorLabel, deadlineNote, overdueBadge, overdueSection } from './overdue.js';
import { preview, type TimelineItem } from './timeline.js';
import { deliveriesSection } from './deliveries.js';
import type { OutboxDelivery } from '../../store/outbox.js';

/**
 * The operator console's pages, rendered on the server as HTML (Pico CSS for the look, htmx and its
 * SSE extension for live updates: the server pushes "something changed" events and htmx swaps in
 * fresh fragments of these same views). Every value from a task is escaped (see `html`).
 */

export const STATUSES: TaskStatus[] = ['working', 'input_required', 'completed', 'failed', 'cancelled'];

/** Filters of the task list (query parameters of `<basePath>/`). */
export interface ListFilters {
  status?: TaskStatus;
  tool?: string;
  /** A principal name; `-` for the anonymous principal. */
  principal?: string;
  /** ISO 8601 lower bound of `createdAt` (inclusive). */
  from?: string;
  /** ISO 8601 upper bound of `createdAt` (exclusive). */
  to?: string;
  /** `1`: only tasks flagged stalled (`TaskRecord.stalled`). */
  stalled?: string;
  cursor?: string;
}

/** What the task list shows. */
export interface ListView {
  tasks: TaskRecord[];
  nextCursor?: string;
  /** Tasks per shown status (see `shownStatus`: tool errors under `failed`). */
  counts: Record<TaskStatus, number>;
  /** ISO 8601: since when the longest-waiting question waits (its first ask, see `StatusCounts`). */
  oldestInputRequiredAt?: string;
  filters: ListFilters;
  tools: string[];
  now: number;
  operator: string;
  /** The console's `basePath` (`/console`, or `''` at the root): every link starts with it. */
  base: string;
  /** A message over the list (a refused filter). */
  notice?: string;
  /** Tasks with an overdue question, listed first (see `listOverdue`); first page only. */
  overdue?: TaskRecord[];
}

/** What a task's page shows. */
export interface TaskView {
  task: TaskRecord;
  /** Arguments with `sensitive` fields replaced by `[redacted]`. */
  args: JsonObject;
  timeline: TimelineItem[];
  now: number;
  operator: string;
  /** The console's `basePath` (`/console`, or `''` at the root): every link starts with it. */
  base: string;
  /** A refused answer or cancel: message, and per-field problems of an answer. */
  refusal?: { key?: string; message: string; problems?: string[] };
  /** Values of a refused form, kept for the operator to correct. */
  previous?: Record<string, string[]>;
  /** ISO 8601: when each pending question was first asked (journal `asked:<key>`). */
  askedAt?: Record<string, string>;
  /**
   * When an operator may have the task run again (`TaskRuntime.retry`: a failed task not yet run
   * again, or a working one, on an executor that supports it): its recorded steps, in the order
   * they began, to choose where the new run starts.
   */
  retrySteps?: string[];
  /** The task's webhook deliveries (see `deliveriesSection`). */
  deliveries?: OutboxDelivery[];
}

const STATUS_LABEL: Record<TaskStatus, string> = {
  working: 'working',
  input_required: 'waiting for input',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** "3 min ago", "in 41 days": `at` (ms) relative to `now` (ms). */
export function relative(at: number, now: number): string {
  const delta = at - now;
  const abs = Math.abs(delta);
  const unit =
    abs < 45_000
      ? [Math.round(abs / 1000), 's']
      : abs < 45 * 60_000
        ? [Math.round(abs / 60_000), 'min']
        : abs < 36 * 3600_000
          ? [Math.round(abs / 3600_000), 'h']
          : [Math.round(abs / 86_400_000), 'days'];
  const text = `${unit[0]} ${unit[0] === 1 && unit[1] === 'days' ? 'day' : unit[1]}`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

/** A duration in ms as "850 ms", "12 s", "3 min", "41 days". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  return relative(ms, 0).replace(/^in /, '');
}

/** A relative time ("3 min ago"), kept current in the browser (`data-relative`, see script.ts); the exact UTC time as its tooltip. */
const time = (iso: string, now: number) => html`<time datetime="${iso}" title="${iso}" data-relative>${relative(Date.parse(iso), now)}</time>`;

/** How long since `iso` ("12 min"), kept current in the browser (`data-since`). */
const since = (iso: string, now: number) => html`<time datetime="${iso}" title="${iso}" data-since>${duration(now - Date.parse(iso))}</time>`;

/**
 * A task's status as the console shows, counts and filters it: its status, except that a task that
 * completed with a tool error (`isError: true`; 2026-07-28 ends such tasks `completed`, 2025-11-25
 * `failed`) is `failed` — every task that ended on an error is where an operator looks for failures.
 */
export function shownStatus(task: TaskRecord): TaskStatus {
  return completedWithToolError(task) ? 'failed' : task.status;
}

/** Whether `task` ended with a tool result that is an error (`isError: true`), whatever its status. */
const hasToolError = (task: TaskRecord) => task.outcome?.type === 'result' && task.outcome.result.isError === true;

/**
 * The status badge (`data-status`: the shown status, see `shownStatus`). A tool error says so; one
 * that clients see as `completed` (2026-07-28) says that too, in its tooltip.
 */
const badge = (task: TaskRecord) => {
  const shown = shownStatus(task);
  const toolError = hasToolError(task);
  const note = shown !== task.status ? `The tool returned an error; clients see this task as ${task.status} with an error result.` : undefined;
  return html`<span class="badge s-${shown}" data-status="${shown}" ${toolError ? html`data-tool-error` : ''} ${note ? html`title="${note}"` : ''}
      >${STATUS_LABEL[shown]}${toolError ? ' · tool error' : ''}</span
    >${task.stalled ? html` <span class="badge s-stalled" data-stalled title="no activity since ${task.stalled.since}">stalled</span>` : ''}`;
};

/** `ms` since the epoch as "2026-12-11 14:03 UTC". */
export function utcMinute(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** One line saying how a task stands: its status message, else how it ended (the result's first text, or the error). */
function summary(task: TaskRecord): string {
  if (task.statusMessage) return task.statusMessage;
  const outcome = task.outcome;
  if (outcome?.type === 'error') return outcome.error.message;
  const text = (outcome?.result as { content?: { type?: string; text?: unknown }[] } | undefined)?.content?.find((c) => c.type === 'text')?.text;
  return typeof text === 'string' ? text : '';
}

/** A whole page around `body`, of the console under `base` (its `basePath`); `operator` signed in, if any. */
export function layout(base: string, title: string, body: Html, operator?: string): Html {
  return html`<!doctype html>
    <html lang="en" data-theme="light">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · mcp-tasks console</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="${base}/assets/pico.min.css" />
        <link rel="stylesheet" href="${base}/assets/console.css" />
        <script src="${base}/assets/htmx.min.js"></script>
        <script src="${base}/assets/sse.js"></script>
        <script src="${base}/assets/console.js" defer></script>
      </head>
      <body hx-ext="sse" sse-connect="${base}/events">
        <header class="container bar">
          <a href="${base}/" class="brand"><strong>mcp-tasks</strong> operator console</a>
          ${operator ? html`<span class="who">signed in as <strong>${operator}</strong>${operator === 'local' ? '' : html` <form method="post" action="${base}/logout" class="inline"><button class="secondary outline small">Sign out</button></form>`}</span>` : ''}
        </header>
        <p id="connection" class="connection" role="status" hidden>Lost the live connection to the server; retrying… (what you see may be out of date)</p>
        <main class="container">${body}</main>
      </body>
    </html>`;
}

/** The sign-in page (operator token) of the console under `base` (its `basePath`), with `error` over the form. */
export function loginPage(base: string, error?: string): Html {
  return html`<!doctype html>
    <html lang="en" data-theme="light">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Sign in · mcp-tasks console</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="${base}/assets/pico.min.css" />
        <link rel="stylesheet" href="${base}/assets/console.css" />
      </head>
      <body>
        <main class="container narrow">
          <h1>Operator console</h1>
          <p>This console shows every principal's tasks. Sign in with an operator token.</p>
          ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
          <form method="post" action="${base}/login">
            <label>Operator token<input type="password" name="token" autocomplete="current-password" required autofocus /></label>
            <button type="submit">Sign in</button>
          </form>
        </main>
      </body>
    </html>`;
}

/** Query string of `filters` (without the cursor unless `withCursor`). */
export function queryOf(filters: ListFilters, withCursor = false): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) if (value && (withCursor || key !== 'cursor')) params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** The task list page. */
export function listPage(view: ListView): Html {
  const { base, filters: f } = view;
  const local = (iso?: string) => (iso ? iso.slice(0, 16) : '');
  return layout(
    base,
    'Tasks',
    html`<h1>Tasks</h1>
      <form method="get" action="${base}/" class="filters" role="search">
        <label
          >Status<select name="status">
            <option value="">any</option>
            ${STATUSES.map((s) => html`<option value="${s}" ${f.status === s ? html`selected` : ''}>${STATUS_LABEL[s]}</option>`)}
          </select></label
        >
        <label
          >Tool<select name="tool">
            <option value="">any</option>
            ${view.tools.map((t) => html`<option ${f.tool === t ? html`selected` : ''}>${t}</option>`)}
          </select></label
        >
        <label
          >Principal<input name="principal" value="${f.principal ?? ''}" placeholder="any" title="a principal name; - for the anonymous principal"
        /></label>
        <label>Created from (UTC)<input type="datetime-local" name="from" value="${local(f.from)}" /></label>
        <label>to (UTC)<input type="datetime-local" name="to" value="${local(f.to)}" /></label>
        <label><input type="checkbox" name="stalled" value="1" ${f.stalled ? html`checked` : ''} /> Stalled only</label>
        <button type="submit">Filter</button>
      </form>
      <div id="task-list" data-live hx-get="${base}/list${queryOf(f, true)}" hx-trigger="sse:tasks" hx-swap="innerHTML">${listFragment(view)}</div>`,
    view.operator,
  );
}

/** The counts and the table: what live updates replace. */
export function listFragment(view: ListView): Html {
  const base = view.base;
  const waiting = view.counts.input_required;
  return html`<section class="counts" aria-label="Tasks per status in the whole store">
      <span class="count-label">In the store:</span>
      ${STATUSES.map((s) => html`<a href="${base}/${queryOf({ ...view.filters, status: s, cursor: undefined })}" class="count s-${s}" data-count="${s}"><strong>${view.counts[s]}</strong> ${STATUS_LABEL[s]}</a>`)}
      <span class="count oldest" data-oldest
        >${
          waiting > 0 && view.oldestInputRequiredAt
            ? html`oldest question waiting for <strong>${since(view.oldestInputRequiredAt, view.now)}</strong>`
            : 'nothing waits for input'
        }</span
      >
    </section>
    ${view.notice ? html`<p class="error" role="alert">${view.notice}</p>` : ''} ${overdueSection(view.overdue, view.now, base, (iso) => time(iso, view.now))}
    <div class="scroll">
      <table class="tasks striped">
        <thead>
          <tr>
            <th>Task</th>
            <th>Principal</th>
            <th>Status</th>
            <th>Created</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          ${
            view.tasks.length === 0
              ? html`<tr>
                  <td colspan="5" class="empty">No tasks match.</td>
                </tr>`
              : view.tasks.map(
                  (t) =>
                    html`<tr data-task-id="${t.taskId}">
                      <td>
                        <a href="${base}/tasks/${t.taskId}" class="row-link"
                          ><strong class="tool">${t.request.tool}</strong> <code>${t.taskId.slice(0, 12)}…</code></a
                        ><br /><small>${summary(t)}</small>
                      </td>
                      <td>${t.owner ?? html`<em>anonymous</em>`}</td>
                      <td>${badge(t)}${overdueBadge(t, view.now)}</td>
                      <td>${time(t.createdAt, view.now)}</td>
                      <td>${time(t.lastUpdatedAt, view.now)}</td>
                    </tr>`,
                )
          }
        </tbody>
      </table>
    </div>
    <nav class="pages">
      ${view.filters.cursor ? html`<a href="${base}/${queryOf(view.filters)}">← Newest</a>` : ''}${
        view.nextCursor ? html`<a href="${base}/${queryOf({ ...view.filters, cursor: view.nextCursor }, true)}" rel="next">Older →</a>` : ''
      }
    </nav>`;
}

/** A task's page. */
export function taskPage(view: TaskView): Html {
  const base = view.base;
  return layout(
    base,
    `Task ${view.task.taskId.slice(0, 8)}`,
    html`<p><a href="${base}/">← All tasks</a></p>
      <div id="task-panel" data-live hx-get="${base}/tasks/${view.task.taskId}/panel" hx-trigger="sse:task-${view.task.taskId}" hx-swap="innerHTML">
        ${taskPanel(view)}
      </div>`,
    view.operator,
  );
}

/** The live part of a task's page. */
export function taskPanel(view: TaskView): Html {
  const { task, now, base } = view;
  const live = !isTerminal(task.status);
  const expiry = task.ttl === null ? undefined : Date.parse(task.createdAt) + task.ttl;
  return html`<hgroup>
      <h1>${task.request.tool} ${badge(task)}${overdueBadge(task, now)}</h1>
      <p><code>${task.taskId}</code></p>
    </hgroup>
    <dl class="facts">
      <dt>Principal</dt>
      <dd>${task.owner ?? html`<em>anonymous</em>`}</dd>
      ${
        shownStatus(task) !== task.status
          ? html`<dt>Outcome</dt>
              <dd data-outcome>the tool returned an error <small>(clients see the task as ${task.status}, with an error result)</small></dd>`
          : ''
      }
      <dt>Created</dt>
      <dd>${time(task.createdAt, now)} <small>(${utcMinute(Date.parse(task.createdAt))})</small></dd>
      <dt>${live ? 'Last update' : 'Ended'}</dt>
      <dd>${time(task.lastUpdatedAt, now)}${live ? '' : html` <small>(${utcMinute(Date.parse(task.lastUpdatedAt))})</small>`}</dd>
      <dt>Status message</dt>
      <dd>${task.statusMessage ?? '—'}</dd>
      ${
        task.stalled
          ? html`<dt>Stalled</dt>
              <dd data-stalled-since>no activity since ${time(task.stalled.since, now)} <small>(flagged ${utcMinute(Date.parse(task.stalled.at))})</small></dd>`
          : ''
      }
      ${
        task.deadline
          ? html`<dt>Deadline</dt>
              <dd data-deadline>${utcMinute(Date.parse(task.deadline))} (${time(task.deadline, now)})</dd>`
          : ''
      }
      ${
        task.progress
          ? html`<dt>Progress</dt>
              <dd>
                <progress value="${task.progress.progress}" ${task.progress.total !== undefined ? html`max="${task.progress.total}"` : ''}></progress>
                ${task.progress.progress}${task.progress.total !== undefined ? ` / ${task.progress.total}` : ''}
              </dd>`
          : ''
      }
      <dt>Kept</dt>
      <dd data-kept>
        ${
          live
            ? 'while it runs; its result is kept after it ends'
            : expiry === undefined
              ? 'forever'
              : html`until ${utcMinute(expiry)} (${time(new Date(expiry).toISOString(), now)})`
        }
      </dd>
      ${
        task.lease
          ? html`<dt>Runs on</dt>
              <dd>${task.lease.holder}</dd>`
          : ''
      }
      ${
        task.retryOf !== undefined
          ? html`<dt>Runs again</dt>
              <dd data-retry-of><a href="${base}/tasks/${task.retryOf}">task ${task.retryOf.slice(0, 8)}</a></dd>`
          : ''
      }
      ${
        task.retriedAs !== undefined
          ? html`<dt>Run again as</dt>
              <dd data-retried-as><a href="${base}/tasks/${task.retriedAs}">task ${task.retriedAs.slice(0, 8)}</a></dd>`
          : ''
      }
    </dl>
    ${
      view.refusal
        ? html`<article class="refusal" role="alert">
            <strong>Not done:</strong> ${view.refusal.message}${
              view.refusal.problems?.length
                ? html`<ul>
                    ${view.refusal.problems.map((p) => html`<li>${p}</li>`)}
                  </ul>`
                : ''
            }
          </article>`
        : ''
    }
    ${Object.entries(task.inputRequests).map(([key, q]) => questionCard(task.taskId, key, q, view))}
    <h2>Timeline</h2>
    ${timelineChart(view.timeline, Date.parse(task.createdAt), live ? now : Date.parse(task.lastUpdatedAt), now)}
    <h2>Arguments</h2>
    <pre class="json">${JSON.stringify(view.args, null, 2)}</pre>
    ${outcomeSection(task)} ${deliveriesSection(view.deliveries, now)}
    ${
      live
        ? html`<details class="danger">
            <summary role="button" class="secondary outline">Cancel task…</summary>
            <form method="post" action="${base}/tasks/${task.taskId}/cancel">
              <p>Cancel this task? Its work stops and it cannot be resumed.</p>
              <input type="hidden" name="confirm" value="yes" /><button type="submit" class="contrast" data-action="confirm-cancel">
                Yes, cancel this task
              </button>
            </form>
          </details>`
        : ''
    }
    ${view.retrySteps ? retryForm(view, view.retrySteps) : ''}`;
}

/**
 * "Run again…": the operator chooses the step the new run starts from (the steps before it are
 * kept; `TaskRuntime.retry`) and whether answers given after it are cleared. A failed task is run
 * again as a new task (its own status stays final); a working one in place.
 */
function retryForm(view: TaskView, steps: string[]): Html {
  const { task, base } = view;
  const live = !isTerminal(task.status);
  return html`<details class="retry">
    <summary role="button" class="secondary outline">Run again…</summary>
    <form method="post" action="${base}/tasks/${task.taskId}/retry">
      <p>
        ${
          live
            ? 'Stop the run holding this task and run it again, same task, from the point you choose: the steps before it are kept, it and every later one run again.'
            : 'Run this failed task again as a new task, from the point you choose: the steps before it and the answers given are kept, it and every later one run again. This task stays failed and links to the new one.'
        }
      </p>
      <label
        >From
        <select name="from">
          <option value="stopped" selected>where it stopped (${live ? 'the step it is stuck in' : 'its failed steps'})</option>
          ${steps.map((name) => html`<option value="step/${name}">step ${name}</option>`)}
          <option value="start">the start</option>
        </select></label
      >
      <label><input type="checkbox" name="clearAnswers" value="yes" /> Ask again the questions answered after that step</label>
      <input type="hidden" name="confirm" value="yes" /><button type="submit" data-action="confirm-retry">Run again</button>
    </form>
  </details>`;
}

function outcomeSection(task: TaskRecord): Html | string {
  const outcome = task.outcome;
  if (!outcome) return '';
  if (outcome.type === 'error')
    return html`<h2>Error</h2>
      <p class="error"><code>${outcome.error.code}</code> ${outcome.error.message}</p>
      ${outcome.error.data !== undefined ? html`<pre class="json">${JSON.stringify(outcome.error.data, null, 2)}</pre>` : ''}`;
  const result = outcome.result as { content?: { type?: string; text?: string }[]; structuredContent?: Json; isError?: boolean };
  const texts = (result.content ?? []).filter((c) => c.type === 'text' && typeof c.text === 'string').map((c) => c.text!);
  return html`<h2>${result.isError ? 'Result (tool error)' : 'Result'}</h2>
    ${texts.map((t) => html`<p class="result-text">${t}</p>`)}${
      result.structuredContent !== undefined ? html`<pre class="json">${JSON.stringify(result.structuredContent, null, 2)}</pre>` : ''
    }`;
}

/** What a question the console cannot answer waits for, by its kind. */
const CLIENT_ASKS: Record<Exclude<InputRequest['kind'], 'elicitation'>, string> = {
  url: 'the user to open a link and finish there',
  sampling: "a reply from the client's AI model",
  roots: 'the client to share its folders',
};

/**
 * A pending question: a form for form elicitation (kept as the operator left it when the panel is
 * refreshed live: `hx-preserve`); other kinds are shown (a client must answer them).
 */
function questionCard(taskId: string, key: string, q: InputRequest, view: TaskView): Html {
  const waiting = view.askedAt?.[key] ? html` · waiting for ${since(view.askedAt[key]!, view.now)}` : '';
  if (q.kind !== 'elicitation')
    return html`<article class="question" data-waiting-for="${q.kind}">
      <header>
        Waiting for ${CLIENT_ASKS[q.kind]}${waiting} <small><code>${key}</code></small>
      </header>
      <p>${q.message}</p>
      ${deadlineNote(view.task, key, view.now, (iso) => time(iso, view.now))} ${q.kind === 'url' ? html`<p><small>Link: ${q.url}</small></p>` : ''}
      <p><small>Only the client that started the task can answer this; the console cannot.</small></p>
    </article>`;
  const previous = view.refusal?.key === key ? view.previous : undefined;
  const base = view.base;
  return html`<article class="question" data-question="${key}">
    <header>
      Question${waiting} <small><code>${key}</code></small>
    </header>
    <p class="message">${q.message}</p>
    ${deadlineNote(view.task, key, view.now, (iso) => time(iso, view.now))}
    <form method="post" action="${base}/tasks/${taskId}/answer" class="answer" id="answer-${key}" hx-preserve>
      <input type="hidden" name="key" value="${key}" />
      ${renderFields(q.requestedSchema, previous)}
      <div class="actions">
        <button type="submit" name="action" value="accept">Review answer…</button>
        <button type="submit" name="action" value="decline" class="secondary outline" formnovalidate>Decline…</button>
      </div>
    </form>
  </article>`;
}

/**
 * The confirmation page of an answer, in the console under `base` (its `basePath`): shows exactly
 * what will be sent, nothing is sent until confirmed.
 */
export function confirmAnswerPage(
  base: string,
  task: TaskRecord,
  key: string,
  action: string,
  content: Record<string, unknown> | undefined,
  form: Record<string, string[]>,
  operator: string,
): Html {
  const hidden = Object.entries(form).flatMap(([name, values]) =>
    name === 'confirm' ? [] : values.map((v) => html`<input type="hidden" name="${name}" value="${v}" />`),
  );
  const q = task.inputRequests[key];
  return layout(
    base,
    'Confirm answer',
    html`<p><a href="${base}/tasks/${task.taskId}">← Back to the task</a></p>
      <article class="confirm">
        <header>Confirm your answer to <strong>${task.request.tool}</strong> <code>${task.taskId.slice(0, 12)}…</code></header>
        <p class="message">${q?.message ?? key}</p>
        <p>
          Answer: <strong data-confirm-action="${action}">${action === 'decline' ? 'decline to answer' : 'submit these values'}</strong>
          ${action === 'decline' ? html`<br /><small>A decline sends no fields: anything typed in the form is not recorded.</small>` : ''}
        </p>
        ${
          content
            ? html`<dl class="facts">
                ${Object.entries(content).map(
                  ([k, v]) =>
                    html`<dt>${k}</dt>
                      <dd>${Array.isArray(v) ? v.join(', ') : String(v)}</dd>`,
                )}
              </dl>`
            : ''
        }
        <p>
          <small>Recorded as answered by operator <strong>${operator}</strong>.</small>
        </p>
        <form method="post" action="${base}/tasks/${task.taskId}/answer">
          ${hidden}<input type="hidden" name="confirm" value="yes" />
          <div class="actions">
            <button type="submit" data-action="confirm-answer">Confirm and send</button>
            <a href="${base}/tasks/${task.taskId}" role="button" class="secondary outline" data-back>Back</a>
          </div>
        </form>
      </article>`,
    operator,
  );
}

/**
 * The timeline as a chart: one row per item, a bar from its start to its end (or, while it goes on,
 * to the axis's end) on the task's time axis (see `TimelineAxis`: creation to the end or now, long
 * quiet stretches drawn as narrow labelled gaps). A wait due beyond the axis's end runs to its edge
 * with a marker saying how far off it is, instead of stretching the scale.
 */
function timelineChart(items: TimelineItem[], created: number, end: number, now: number): Html {
  const axis = timelineAxis(items, created, end);
  const pct = (n: number) => `${n.toFixed(2)}%`;
  const gaps = axis.breaks.map((b) => html`<span class="gap" style="${raw(`left:${pct(b.left)};width:${pct(b.width)}`)}"></span>`);
  const stamp = (t: number) => new Date(t).toISOString();
  return html`<ol class="timeline" aria-label="Timeline">
    <li class="axis" aria-hidden="true">
      <span class="when"></span>
      <span class="what"></span>
      <span class="track"
        >${gaps}${axis.breaks.map(
          (b) =>
            html`<span
              class="gap-label"
              style="${raw(`left:${pct(b.left)};width:${pct(b.width)}`)}"
              title="nothing started or ended from ${stamp(b.from)} to ${stamp(b.to)}"
              >${duration(b.to - b.from)}</span
            >`,
        )}<span class="tick end" data-axis-end>${end >= now ? 'now' : 'ended'}</span></span
      >
    </li>
    ${items.map((item) => {
      const waitingOn = item.end === undefined && item.state === 'waiting';
      const from = axis.pos(item.start);
      const to = axis.pos(item.end ?? (waitingOn ? axis.end : item.start));
      const beyond = waitingOn && item.due !== undefined && item.due > axis.end ? item.due : undefined;
      const took = item.end !== undefined && item.end > item.start ? duration(item.end - item.start) : undefined;
      return html`<li class="t-${item.kind} st-${item.state}" data-kind="${item.kind}" data-state="${item.state}">
        <span class="when"
          ><time datetime="${stamp(item.start)}" title="${stamp(item.start)}">${stamp(item.start).replace('T', ' ').slice(0, 19)} UTC</time></span
        >
        <span class="what"
          ><strong>${item.label}</strong>${took ? html` <small>${took}</small>` : ''}${
            item.due !== undefined && item.state === 'waiting' ? html` <small class="due">due ${relative(item.due, now)}</small>` : ''
          }${item.by ? html` <small class="by">by ${actorLabel(item.by)}</small>` : ''}<br /><small class="detail"
            >${item.detail ? (item.kind === 'question' ? item.detail : preview(item.detail)) : ''}</small
          ></span
        >
        <span class="track"
          >${gaps}<span
            class="bar${beyond !== undefined ? ' beyond' : ''}"
            style="${raw(`left:min(${pct(from)},calc(100% - 6px));width:max(${pct(Math.max(0, to - from))},6px)`)}"
          ></span
          >${beyond !== undefined ? html`<span class="beyond-label" title="due ${stamp(beyond)}" data-beyond>→ ${duration(beyond - now)}</span>` : ''}</span
        >
      </li>`;
    })}
  </ol>`;
}
