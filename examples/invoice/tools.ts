import type { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import {
  ENGINE_ACCESS,
  isTerminal,
  isTransientError,
  silentLogger,
  StepFailedError,
  TaskCancelledSignal,
  TaskNotFoundError,
  type Logger,
  type McpTasks,
  type TaskContext,
  type TaskRuntime,
} from '../../src/index.js';
import type { Erp } from './erp.js';
import { InvoiceSchema, validateInvoice, type Invoice } from './invoice.js';
import { StaleFencingTokenError, type Ledger, type Payment } from './ledger.js';
import { formatMoney, toCents } from './money.js';

/** The approval question: `decision` approve | reject, optional `comment` (an MCP form-elicitation schema). */
export const APPROVAL_SCHEMA = {
  type: 'object',
  properties: {
    decision: { type: 'string', title: 'Decision', enum: ['approve', 'reject'], description: 'approve to pay the invoice, reject to refuse it' },
    comment: { type: 'string', title: 'Comment', description: 'optional note for the audit trail' },
  },
  required: ['decision'],
};

/** Longest `retryInMinutes` a person may give: 7 days. */
export const MAX_RETRY_IN_MINUTES = 10_080;
/** `retryInMinutes` when `retry_later` is chosen without it. */
export const DEFAULT_RETRY_IN_MINUTES = 60;

/**
 * The question asked when a payment still fails after its automatic retries (an MCP
 * form-elicitation schema): `choice` retry_now | retry_later | abort, `retryInMinutes` (integer,
 * 1–10080, default 60; used with retry_later) and an optional `comment`. Declining the question
 * means abort (no further payment is attempted); cancelling it too — see `registerInvoiceTasks`.
 */
export const PAYMENT_FAILURE_SCHEMA = {
  type: 'object',
  properties: {
    choice: {
      type: 'string',
      title: 'What to do',
      enum: ['retry_now', 'retry_later', 'abort'],
      description:
        'retry_now: try this payment again now; retry_later: try again after retryInMinutes; abort: stop paying this invoice ' +
        '(paid lines stay paid; resubmit the invoice to pay the rest)',
    },
    retryInMinutes: {
      type: 'integer',
      title: 'Retry in (minutes)',
      minimum: 1,
      maximum: MAX_RETRY_IN_MINUTES,
      default: DEFAULT_RETRY_IN_MINUTES,
      description: `with retry_later: minutes to wait before trying again (1 to ${MAX_RETRY_IN_MINUTES}; default ${DEFAULT_RETRY_IN_MINUTES})`,
    },
    comment: { type: 'string', title: 'Comment', description: 'optional note for the audit trail' },
  },
  required: ['choice'],
};

/** The key of the question asked after attempt `attempt` (1, 2, …) to pay `lineId` failed. */
export const paymentQuestionKey = (lineId: string, attempt: number) => `payment-failed:${lineId}#${attempt}`;

/** The journaled step name of attempt `attempt` (1, 2, …) to pay `lineId`: `pay:<lineId>`, then `pay:<lineId>#2`, … */
export const paymentStepName = (lineId: string, attempt: number) => (attempt === 1 ? `pay:${lineId}` : `pay:${lineId}#${attempt}`);

const PaymentShape = z.object({ invoiceId: z.string(), lineId: z.string(), amount: z.number(), currency: z.string(), paidAt: z.string() });

/** What the invoice tools need. */
export interface InvoiceDeps {
  erp: Erp;
  ledger: Ledger;
  runtime: TaskRuntime;
  /**
   * Transient-error retries of each payment attempt (`StepOptions.transientRetries`; default: the
   * engine's, 6 — waits of 0.5 s doubling, about 31 s in all). After them the task asks a person.
   */
  paymentRetries?: number;
  /**
   * How long the approval question waits before it is escalated to operators, in ms from its first
   * ask (`AskOptions.timeoutMs` with `onTimeout: 'escalate'`: nothing is answered for the approver,
   * the question is flagged overdue in the console and the task keeps waiting). Default
   * `DEFAULT_APPROVAL_DEADLINE_MS` (48 h); 0 asks without a deadline.
   */
  approvalDeadlineMs?: number;
  /** Where failed payment attempts are logged (warn; default: nowhere). */
  logger?: Logger;
}

/** Default `InvoiceDeps.approvalDeadlineMs`: 48 hours. */
export const DEFAULT_APPROVAL_DEADLINE_MS = 48 * 3600_000;

const publicPayment = ({ invoiceId, lineId, amount, currency, paidAt }: Payment) => ({ invoiceId, lineId, amount, currency, paidAt });

type Line = Invoice['lines'][number];

/** `line 2 (EUR 200.00, payOn 2027-01-01)` … for the first `max` lines, then `and N more`. */
function describeLines(lines: { lineId: string; cents: number; payOn?: string }[], currency: string, max = 10): string {
  const shown = lines.slice(0, max).map((l) => `line ${l.lineId} (${formatMoney(l.cents, currency)}${l.payOn ? `, payOn ${l.payOn}` : ''})`);
  return lines.length > max ? `${shown.join(', ')} and ${lines.length - max} more` : shown.join(', ');
}

/**
 * Registers the durable task tools of the invoice workflow:
 * - `process_invoice {invoice}` (taskSupport optional): ERP validation, approval by elicitation
 *   (escalated to operators once `approvalDeadlineMs` passes unanswered), then
 *   one payment per line, each waiting durably until its `payOn`. Each payment attempt is a step
 *   (`pay:<lineId>`, retried on transient errors) carrying the run's fencing token to the ledger. A
 *   payment that still fails asks a person (`PAYMENT_FAILURE_SCHEMA`, key
 *   `payment-failed:<lineId>#<attempt>`): retry_now tries again at once (step `pay:<lineId>#2`, …),
 *   retry_later after a durable wait of `retryInMinutes`, and abort — or a declined or cancelled
 *   question: nothing more is paid without a person's explicit retry — ends the task with a
 *   `partially_paid` result listing the paid and unpaid lines; the claim becomes `partially_paid`
 *   so the invoice can be resubmitted, which pays only the unpaid lines.
 * - `export_payments_report {format: csv | json}` (taskSupport required).
 */
export function registerInvoiceTasks(
  tasks: McpTasks,
  { erp, ledger, runtime, paymentRetries, approvalDeadlineMs = DEFAULT_APPROVAL_DEADLINE_MS, logger = silentLogger }: InvoiceDeps,
): void {
  const isDead = async (taskId: string) => {
    try {
      const task = await runtime.get(taskId, ENGINE_ACCESS);
      return isTerminal(task.status) && task.status !== 'completed';
    } catch (error) {
      if (error instanceof TaskNotFoundError) return true;
      throw error;
    }
  };

  /** One journaled payment attempt of `line` (with the step's own transient retries); failures are logged and rethrown unchanged. */
  const payStep = (ctx: TaskContext, invoice: Invoice, line: Line, attempt: number): Promise<Payment> => {
    const step = paymentStepName(line.lineId, attempt);
    return ctx.step(
      step,
      () => {
        try {
          return ledger.pay({
            invoiceId: invoice.invoiceId,
            lineId: line.lineId,
            amountCents: toCents(line.amount),
            currency: invoice.currency,
            taskId: ctx.taskId,
            fencingToken: ctx.fencingToken,
          });
        } catch (error) {
          const e = error as { code?: string; message?: string } | undefined;
          logger.warn(
            {
              taskId: ctx.taskId,
              invoiceId: invoice.invoiceId,
              lineId: line.lineId,
              step,
              error: e?.message,
              code: e?.code,
              transient: isTransientError(error),
            },
            'payment attempt failed',
          );
          throw error;
        }
      },
      paymentRetries === undefined ? {} : { transientRetries: paymentRetries },
    );
  };

  tasks.registerTool(
    'process_invoice',
    {
      title: 'Process invoice',
      description:
        'Validates a supplier invoice against the ERP (vendor, purchase order, currency, lines, remaining PO amount), ' +
        "asks a human to approve or reject it, then pays each line exactly once, waiting until each line's payOn date. " +
        'If a payment still fails after automatic retries (payment system busy or unreachable), it asks a human whether to ' +
        'retry now, retry later or abort; abort (or declining or cancelling that question) ends with status partially_paid, listing the ' +
        'paid and unpaid lines, and the invoice may then be resubmitted to pay only the unpaid lines. ' +
        'Runs as a durable task: it survives restarts and may take days.',
      inputSchema: z.object({ invoice: InvoiceSchema }),
      taskSupport: 'optional',
    },
    async ({ invoice }, ctx) => {
      const id = invoice.invoiceId;
      await ctx.setStatusMessage(`Validating invoice ${id} against the ERP`);
      const check = await ctx.step('validate', async () => {
        const committed = await ledger.committedCents(invoice.poNumber, id, isDead);
        const paid = ledger.payments(id).map((p) => ({ lineId: p.lineId, amountCents: toCents(p.amount), currency: p.currency }));
        const result = validateInvoice(invoice, erp, committed, paid);
        if (!result.ok) return result;
        const claim = await ledger.claim(id, ctx.taskId, invoice.poNumber, result.totalCents, isDead, ctx.fencingToken);
        return claim.ok ? result : claim;
      });
      if (!check.ok) throw new Error(`Invoice ${id} failed validation: ${check.reason}`);
      const total = formatMoney(check.totalCents, invoice.currency);
      const cents = (line: Line) => ({ lineId: line.lineId, cents: toCents(line.amount), ...(line.payOn && { payOn: line.payOn }) });
      const alreadyPaid = invoice.lines.filter((l) => check.alreadyPaid?.includes(l.lineId));
      const paidEarlier =
        alreadyPaid.length > 0
          ? `; ${alreadyPaid.length} of them (${formatMoney(
              alreadyPaid.reduce((sum, l) => sum + toCents(l.amount), 0),
              invoice.currency,
            )}) already paid by an earlier submission and not paid again`
          : '';

      try {
        const answer = await ctx.elicit(
          `Approve invoice ${id} from ${check.vendorName} (PO ${invoice.poNumber}): ${invoice.lines.length} line(s), total ${total}${paidEarlier}?`,
          APPROVAL_SCHEMA,
          approvalDeadlineMs > 0 ? { timeoutMs: approvalDeadlineMs, onTimeout: 'escalate' } : {},
        );
        const comment = typeof answer.content?.comment === 'string' && answer.content.comment.length > 0 ? answer.content.comment : undefined;
        if (answer.action !== 'accept' || answer.content?.decision !== 'approve') {
          await ctx.step('reject', () => ledger.setStatus(id, ctx.taskId, 'rejected', ctx.fencingToken));
          const why = answer.action === 'accept' ? 'rejected by the approver' : `approval ${answer.action === 'decline' ? 'declined' : 'cancelled'}`;
          return {
            content: [{ type: 'text', text: `Invoice ${id} (${total}) was not paid: ${why}${comment ? ` (${comment})` : ''}.` }],
            structuredContent: {
              invoiceId: id,
              status: 'rejected',
              total: check.totalCents / 100,
              currency: invoice.currency,
              ...(comment && { comment }),
              payments: [],
            },
          };
        }
        await ctx.step('approve', () => ledger.setStatus(id, ctx.taskId, 'approved', ctx.fencingToken));

        const lines = [...invoice.lines].sort((a, b) => (a.payOn ? Date.parse(a.payOn) : 0) - (b.payOn ? Date.parse(b.payOn) : 0));
        const payments: Payment[] = [];
        for (const [index, line] of lines.entries()) {
          if (line.payOn) await ctx.sleepUntil(line.payOn, `Approved; waiting until ${line.payOn} to pay line ${line.lineId} of invoice ${id}`);
          const amount = formatMoney(toCents(line.amount), invoice.currency);
          let payment: Payment | undefined;
          for (let attempt = 1; payment === undefined; attempt++) {
            let failure: StepFailedError;
            try {
              payment = await payStep(ctx, invoice, line, attempt);
              break;
            } catch (error) {
              // Only a recorded failure of the step (replayed the same on every run) asks a person; a
              // stop of the run (cancel, shutdown, lost lease, store outage) or a stale token ends this run.
              if (!(error instanceof StepFailedError) || error.name === StaleFencingTokenError.name) throw error;
              failure = error;
            }
            const paidSoFar = describeLines(
              payments.map((p) => ({ lineId: p.lineId, cents: toCents(p.amount) })),
              invoice.currency,
            );
            const question = await ctx.elicit(
              `Payment of line ${line.lineId} (${amount}) of invoice ${id} failed${attempt > 1 ? ` again (attempt ${attempt})` : ''} after automatic retries: ` +
                `${failure.message}. Already paid: ${paidSoFar || 'nothing'}. Not yet paid: ${describeLines(lines.slice(index).map(cents), invoice.currency)}. ` +
                `Choose retry_now to try again now, retry_later to try again in retryInMinutes (default ${DEFAULT_RETRY_IN_MINUTES}), or abort to stop paying ` +
                '(paid lines stay paid; resubmit the invoice to pay the rest). No line is ever paid twice.',
              PAYMENT_FAILURE_SCHEMA,
              { key: paymentQuestionKey(line.lineId, attempt) },
            );
            const choice = question.action === 'accept' ? question.content?.choice : undefined;
            const next = paymentStepName(line.lineId, attempt + 1);
            if (choice === 'retry_now') {
              await ctx.setStatusMessage(`Retrying the payment of line ${line.lineId} (${amount}) of invoice ${id} now, as asked (attempt ${attempt + 1})`);
              continue;
            }
            if (choice === 'retry_later') {
              const minutes = typeof question.content?.retryInMinutes === 'number' ? question.content.retryInMinutes : DEFAULT_RETRY_IN_MINUTES;
              const at = await ctx.step(`${next}:at`, () => new Date(Date.now() + minutes * 60_000).toISOString());
              await ctx.sleepUntil(
                at,
                `Payment of line ${line.lineId} (${amount}) of invoice ${id} failed; retrying at ${at} as asked (attempt ${attempt + 1})`,
              );
              continue;
            }
            // abort, or the question declined or cancelled: pay nothing more (never retry without a person's word).
            const decision = choice === 'abort' ? 'aborted' : question.action === 'decline' ? 'declined' : 'cancelled';
            const note = typeof question.content?.comment === 'string' && question.content.comment.length > 0 ? question.content.comment : undefined;
            const settled = await ctx.step('partially-paid', () => {
              const paid = ledger.payments(id);
              const done = lines.every((l) => paid.some((p) => p.lineId === l.lineId));
              ledger.setStatus(id, ctx.taskId, done ? 'paid' : 'partially_paid', ctx.fencingToken);
              return paid;
            });
            const paidLines = lines.filter((l) => settled.some((p) => p.lineId === l.lineId));
            const unpaid = lines.filter((l) => !settled.some((p) => p.lineId === l.lineId));
            const paidCents = paidLines.reduce((sum, l) => sum + toCents(l.amount), 0);
            const how = decision === 'aborted' ? 'the payment was aborted' : `the question what to do was ${decision}, so nothing more was paid`;
            return {
              content: [
                {
                  type: 'text',
                  text:
                    `Invoice ${id} approved${comment ? ` (${comment})` : ''} but ${unpaid.length === 0 ? 'fully' : 'only partly'} paid: ` +
                    `${paidLines.length} of ${lines.length} line(s), ${formatMoney(paidCents, invoice.currency)} of ${total}. ` +
                    `Payment of line ${line.lineId} failed (${failure.message}) and ${how}${note ? ` (${note})` : ''}.` +
                    (unpaid.length > 0
                      ? ` Not paid: ${describeLines(unpaid.map(cents), invoice.currency)}. Resubmit the invoice to pay them; paid lines are not paid again.`
                      : ''),
                },
              ],
              structuredContent: {
                invoiceId: id,
                status: unpaid.length === 0 ? 'paid' : 'partially_paid',
                total: check.totalCents / 100,
                currency: invoice.currency,
                ...(comment && { comment }),
                payments: settled.map(publicPayment),
                unpaid: unpaid.map((l) => ({ lineId: l.lineId, amount: l.amount, ...(l.payOn && { payOn: l.payOn }) })),
                paymentFailure: { lineId: line.lineId, error: failure.message, decision, ...(note && { comment: note }) },
              },
            };
          }
          payments.push(payment);
          await ctx.progress(index + 1, lines.length, `Paid line ${line.lineId} (${amount}) of invoice ${id}`);
        }
        // Every line is paid: a ledger still too busy to record the claim's final status after the
        // step's retries does not make that a failure. The claim stays `approved`, which counts and
        // refuses a resubmission exactly as `paid` does.
        await ctx
          .step('paid', () => ledger.setStatus(id, ctx.taskId, 'paid', ctx.fencingToken))
          .catch((error: unknown) => {
            if (!(error instanceof StepFailedError)) throw error;
            logger.warn({ taskId: ctx.taskId, invoiceId: id, error: error.message }, 'every line is paid, but the claim could not be marked paid');
          });
        return {
          content: [{ type: 'text', text: `Invoice ${id} approved${comment ? ` (${comment})` : ''} and paid: ${payments.length} payment(s), total ${total}.` }],
          structuredContent: {
            invoiceId: id,
            status: 'paid',
            total: check.totalCents / 100,
            currency: invoice.currency,
            ...(comment && { comment }),
            payments: payments.map(publicPayment),
            unpaid: [],
          },
        };
      } catch (error) {
        // Cancelled: release the claim when nothing was paid; with some lines paid it becomes
        // partially_paid (a resubmission pays the rest), with all of them paid.
        if (ctx.signal.reason instanceof TaskCancelledSignal) {
          try {
            const paid = ledger.payments(id);
            const status = paid.length === 0 ? 'released' : invoice.lines.every((l) => paid.some((p) => p.lineId === l.lineId)) ? 'paid' : 'partially_paid';
            ledger.setStatus(id, ctx.taskId, status, ctx.fencingToken);
          } catch (release) {
            logger.warn({ taskId: ctx.taskId, invoiceId: id, error: (release as Error)?.message }, 'could not update the claim of a cancelled invoice');
          }
        }
        throw error;
      }
    },
  );

  tasks.registerTool(
    'export_payments_report',
    {
      title: 'Export payments report',
      description: 'Exports every payment in the ledger as CSV or JSON. Must be called as a task.',
      inputSchema: z.object({ format: z.enum(['csv', 'json']) }),
      taskSupport: 'required',
    },
    async ({ format }, ctx) => {
      const payments = await ctx.step('snapshot', () => ledger.payments().map(publicPayment));
      await ctx.progress(1, 1, `Exported ${payments.length} payment(s)`);
      const text =
        format === 'json'
          ? JSON.stringify(payments, null, 2)
          : [
              'invoiceId,lineId,amount,currency,paidAt',
              ...payments.map((p) => [p.invoiceId, p.lineId, p.amount.toFixed(2), p.currency, p.paidAt].map(csvCell).join(',')),
            ].join('\n');
      return { content: [{ type: 'text', text }], structuredContent: { format, count: payments.length } };
    },
  );
}

/** Registers the ordinary (non-task) `list_payments {invoiceId?}` tool, reading the durable ledger. */
export function registerLedgerTools(mcp: McpServer, ledger: Ledger): void {
  mcp.registerTool(
    'list_payments',
    {
      title: 'List payments',
      description: 'Lists payments from the durable ledger, optionally for one invoice.',
      inputSchema: z.object({ invoiceId: z.string().min(1).optional() }),
      outputSchema: z.object({ payments: z.array(PaymentShape) }),
    },
    async ({ invoiceId }) => {
      const payments = ledger.payments(invoiceId).map(publicPayment);
      const summary =
        payments.length === 0
          ? 'No payments.'
          : payments.map((p) => `${p.invoiceId}/${p.lineId}: ${p.currency} ${p.amount.toFixed(2)} at ${p.paidAt}`).join('\n');
      return { content: [{ type: 'text', text: summary }], structuredContent: { payments } };
    },
  );
}

function csvCell(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
