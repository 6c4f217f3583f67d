/**
 * The invoice quick start's argument files (`examples/invoice/args/*.json`, used by the README's
 * `mcp-tasks call … --args-file`) are exactly `{ "invoice": <the shipped invoice> }` for every
 * invoice in `examples/invoice/data/invoices/`, and each is accepted by the tool's input schema.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { it } from 'node:test';
import { InvoiceSchema } from '../examples/invoice/invoice.js';

const data = new URL('../examples/invoice/data/invoices/', import.meta.url);
const args = new URL('../examples/invoice/args/', import.meta.url);

it('every shipped invoice has its argument file, and nothing else is there', () => {
  assert.deepEqual(readdirSync(args).sort(), readdirSync(data).sort());
});

for (const file of readdirSync(data).sort())
  it(`${file}: the argument file wraps the invoice and fits the tool's schema`, () => {
    const invoice = JSON.parse(readFileSync(new URL(file, data), 'utf8')) as unknown;
    const wrapped = JSON.parse(readFileSync(new URL(file, args), 'utf8')) as { invoice: unknown };
    assert.deepEqual(wrapped, { invoice });
    assert.equal(InvoiceSchema.safeParse(wrapped.invoice).success, true);
  });
