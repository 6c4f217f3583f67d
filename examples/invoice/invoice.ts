import * as z from 'zod';
import type { Erp } from './erp.js';
import { formatMoney, toCents } from './money.js';

const isoDate = z.string().refine((s) => /^\d{4}-\d{2}-\d{2}(T.+)?$/.test(s) && !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date or date-time');

/**
 * An invoice as submitted to `process_invoice`. `payOn` (ISO 8601 date or date-time) schedules a
 * line; absent or past means pay now. Shape checks live here; business checks in `validateInvoice`.
 */
export const InvoiceSchema = z.object({
  invoiceId: z.string().min(1).max(64),
  vendorId: z.string().min(1).max(64),
  poNumber: z.string().min(1).max(64),
  currency: z.string().length(3),
  issuedOn: isoDate,
  lines: z
    .array(
      z.object({
        lineId: z.string().min(1).max(64),
        description: z.string().max(500),
        amount: z.number().finite(),
        payOn: isoDate.optional(),
      }),
    )
    .max(1000),
});
export type Invoice = z.infer<typeof InvoiceSchema>;

/**
 * What `validateInvoice` found: `ok` with the total (cents), the vendor's name and the lines already
 * paid by an earlier submission (`alreadyPaid`, lineIds; absent in journals of older versions), or
 * the reason for refusing the invoice.
 */
export type ValidationResult = { ok: true; totalCents: number; vendorName: string; alreadyPaid?: string[] } | { ok: false; reason: string };

/** A payment the ledger already holds for the invoice (an earlier, aborted or cancelled submission). `amountCents` in minor units. */
export interface PaidLine {
  lineId: string;
  amountCents: number;
  currency: string;
}

/**
 * The ERP checks of the invoice workflow, in order: vendor exists and is active; PO exists and
 * belongs to the vendor; currencies agree (invoice, vendor, PO); at least one line; unique lineIds;
 * every amount > 0 with at most two decimals; total within the PO's remaining amount (PO amount
 * minus `committedCents`, what other live invoices already committed against it); and every line the
 * ledger already paid for this invoice (`paid`: an earlier submission that was aborted or
 * cancelled part-way) is in the resubmission with the same amount and currency, since it will not be
 * paid again. The already-processed check needs the ledger and is done by `Ledger.claim`.
 */
export function validateInvoice(invoice: Invoice, erp: Erp, committedCents: number, paid: PaidLine[] = []): ValidationResult {
  const vendor = erp.vendor(invoice.vendorId);
  if (!vendor) return { ok: false, reason: `unknown vendor ${invoice.vendorId}` };
  if (!vendor.active) return { ok: false, reason: `vendor ${invoice.vendorId} (${vendor.name}) is not active` };
  const po = erp.purchaseOrder(invoice.poNumber);
  if (!po) return { ok: false, reason: `unknown purchase order ${invoice.poNumber}` };
  if (po.vendorId !== invoice.vendorId) return { ok: false, reason: `purchase order ${po.poNumber} belongs to vendor ${po.vendorId}, not ${invoice.vendorId}` };
  if (invoice.currency !== vendor.currency || invoice.currency !== po.currency) {
    return { ok: false, reason: `currency ${invoice.currency} does not match vendor (${vendor.currency}) and purchase order (${po.currency})` };
  }
  if (invoice.lines.length === 0) return { ok: false, reason: 'the invoice has no lines' };
  const seen = new Set<string>();
  let total = 0;
  for (const line of invoice.lines) {
    if (seen.has(line.lineId)) return { ok: false, reason: `duplicate lineId ${line.lineId}` };
    seen.add(line.lineId);
    if (!(line.amount > 0)) return { ok: false, reason: `line ${line.lineId} has a non-positive amount` };
    try {
      total += toCents(line.amount);
    } catch (error) {
      return { ok: false, reason: `line ${line.lineId}: ${(error as Error).message}` };
    }
  }
  const remaining = toCents(po.amount) - committedCents;
  if (total > remaining) {
    return {
      ok: false,
      reason: `total ${formatMoney(total, invoice.currency)} exceeds the remaining amount ${formatMoney(remaining, po.currency)} of purchase order ${po.poNumber}`,
    };
  }
  for (const payment of paid) {
    const line = invoice.lines.find((l) => l.lineId === payment.lineId);
    const was = formatMoney(payment.amountCents, payment.currency);
    if (!line) return { ok: false, reason: `line ${payment.lineId} was already paid (${was}) by an earlier submission and is missing from this one` };
    if (toCents(line.amount) !== payment.amountCents || payment.currency !== invoice.currency) {
      return {
        ok: false,
        reason: `line ${payment.lineId} was already paid (${was}) by an earlier submission; this one says ${formatMoney(toCents(line.amount), invoice.currency)}`,
      };
    }
  }
  return { ok: true, totalCents: total, vendorName: vendor.name, ...(paid.length > 0 && { alreadyPaid: paid.map((p) => p.lineId) }) };
}
