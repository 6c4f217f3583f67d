import type { McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { ENGINE_ACCESS, isTerminal, TaskCancelledSignal, TaskNotFoundError, type McpTasks, type TaskRuntime } from '../../src/index.js';
import type { Erp } from './erp.js';
import { InvoiceSchema, validateInvoice } from './invoice.js';
import type { Ledger, Payment } from './ledger.js';
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

const PaymentShape = z.object({ invoiceId: z.string(), lineId: z.string(), amount: z.number(), currency: z.string(), paidAt: z.string() });

export interface InvoiceDeps {
  erp: Erp;
  ledger: Ledger;
  runtime: TaskRuntime;
}

const publicPayment = ({ invoiceId, lineId, amount, currency, paidAt }: Payment) => ({ invoiceId, lineId, amount, currency, paidAt });

/**
 * Registers the durable task tools of the invoice workflow:
 * - `process_invoice {invoice}` (taskSupport optional): ERP validation, approval by elicitation, then
 *   one payment per line, each waiting durably until its `payOn`;
 * - `export_payments_report {format: csv | json}` (taskSupport required).
 */
export function registerInvoiceTasks(tasks: McpTasks, { erp, ledger, runtime }: InvoiceDeps): void {
  const isDead = async (taskId: string) => {
    try {
      const task = await runtime.get(taskId, ENGINE_ACCESS);
      return isTerminal(task.status) && task.status !== 'completed';
    } catch (error) {
      if (error instanceof TaskNotFoundError) return true;
      throw error;
    }
  };

  tasks.registerTool(
    'process_invoice',
    {
      title: 'Process invoice',
      description:
        'Validates a supplier invoice against the ERP (vendor, purchase order, currency, lines, remaining PO amount), ' +
        "asks a human to approve or reject it, then pays each line exactly once, waiting until each line's payOn date. " +
        'Runs as a durable task: it survives restarts and may take days.',
      inputSchema: z.object({ invoice: InvoiceSchema }),
      taskSupport: 'optional',
    },
    async ({ invoice }, ctx) => {
      const id = invoice.invoiceId;
      await ctx.setStatusMessage(`Validating invoice ${id} against the ERP`);
      const check = await ctx.step('validate', async () => {
        const committed = await ledger.committedCents(invoice.poNumber, id, isDead);
        const result = validateInvoice(invoice, erp, committed);
        if (!result.ok) return result;
        const claim = await ledger.claim(id, ctx.taskId, invoice.poNumber, result.totalCents, isDead);
        return claim.ok ? result : claim;
      });
      if (!check.ok) throw new Error(`Invoice ${id} failed validation: ${check.reason}`);
      const total = formatMoney(check.totalCents, invoice.currency);

      try {
        const answer = await ctx.elicit(
          `Approve invoice ${id} from ${check.vendorName} (PO ${invoice.poNumber}): ${invoice.lines.length} line(s), total ${total}?`,
          APPROVAL_SCHEMA,
        );
        const comment = typeof answer.content?.comment === 'string' && answer.content.comment.length > 0 ? answer.content.comment : undefined;
        if (answer.action !== 'accept' || answer.content?.decision !== 'approve') {
          await ctx.step('reject', () => ledger.setStatus(id, ctx.taskId, 'rejected'));
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
        await ctx.step('approve', () => ledger.setStatus(id, ctx.taskId, 'approved'));

        const lines = [...invoice.lines].sort((a, b) => (a.payOn ? Date.parse(a.payOn) : 0) - (b.payOn ? Date.parse(b.payOn) : 0));
        const payments: Payment[] = [];
        for (const [index, line] of lines.entries()) {
          if (line.payOn) await ctx.sleepUntil(line.payOn, `Approved; waiting until ${line.payOn} to pay line ${line.lineId} of invoice ${id}`);
          const payment = await ctx.step(`pay:${line.lineId}`, () =>
            ledger.pay({ invoiceId: id, lineId: line.lineId, amountCents: toCents(line.amount), currency: invoice.currency, taskId: ctx.taskId }),
          );
          payments.push(payment);
          await ctx.progress(index + 1, lines.length, `Paid line ${line.lineId} (${formatMoney(toCents(line.amount), invoice.currency)}) of invoice ${id}`);
        }
        await ctx.step('paid', () => ledger.setStatus(id, ctx.taskId, 'paid'));
        return {
          content: [{ type: 'text', text: `Invoice ${id} approved${comment ? ` (${comment})` : ''} and paid: ${payments.length} payment(s), total ${total}.` }],
          structuredContent: {
            invoiceId: id,
            status: 'paid',
            total: check.totalCents / 100,
            currency: invoice.currency,
            ...(comment && { comment }),
            payments: payments.map(publicPayment),
          },
        };
      } catch (error) {
        // Cancelled: release the claim unless money already moved (then the invoice stays committed).
        if (ctx.signal.reason instanceof TaskCancelledSignal && ledger.payments(id).length === 0) ledger.setStatus(id, ctx.taskId, 'released');
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
