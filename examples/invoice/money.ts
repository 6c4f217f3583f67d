/**
 * Money as integer minor units (cents). Amounts arrive as JSON numbers with at most two decimals;
 * converting once avoids floating-point sums in totals and remaining-amount checks.
 */
export function toCents(amount: number): number {
  const cents = Math.round(amount * 100);
  if (!Number.isFinite(amount) || Math.abs(cents - amount * 100) > 1e-6) throw new Error(`amount ${amount} has more than two decimals`);
  return cents;
}

export function fromCents(cents: number): number {
  return cents / 100;
}

/** e.g. `EUR 8,202.50`. */
export function formatMoney(cents: number, currency: string): string {
  return `${currency} ${(cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}
