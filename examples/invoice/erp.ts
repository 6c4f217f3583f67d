import { readFileSync } from 'node:fs';
import * as z from 'zod';

/** ERP master data file (`examples/invoice/data/erp.json`). Amounts are in major units (e.g. 12500.00). */
export const ErpSchema = z.object({
  vendors: z.array(z.object({ vendorId: z.string().min(1), name: z.string().min(1), currency: z.string().length(3), active: z.boolean() })),
  purchaseOrders: z.array(
    z.object({ poNumber: z.string().min(1), vendorId: z.string().min(1), currency: z.string().length(3), amount: z.number().positive() }),
  ),
});
export type ErpData = z.infer<typeof ErpSchema>;
export type Vendor = ErpData['vendors'][number];
export type PurchaseOrder = ErpData['purchaseOrders'][number];

/** Read-only view of the ERP the invoice workflow validates against. */
export class Erp {
  private readonly vendors: Map<string, Vendor>;
  private readonly orders: Map<string, PurchaseOrder>;

  constructor(data: ErpData) {
    this.vendors = new Map(data.vendors.map((v) => [v.vendorId, v]));
    this.orders = new Map(data.purchaseOrders.map((po) => [po.poNumber, po]));
  }

  /** Loads and validates an ERP JSON file. Throws with the file name and the first problems on bad input. */
  static load(path: string): Erp {
    const parsed = ErpSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) throw new Error(`Invalid ERP file ${path}: ${z.prettifyError(parsed.error)}`);
    return new Erp(parsed.data);
  }

  vendor(vendorId: string): Vendor | undefined {
    return this.vendors.get(vendorId);
  }

  purchaseOrder(poNumber: string): PurchaseOrder | undefined {
    return this.orders.get(poNumber);
  }
}
