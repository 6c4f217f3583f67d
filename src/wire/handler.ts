import type { Result, Server, ServerContext, StandardSchemaV1 } from '@modelcontextprotocol/server';
import * as z from 'zod';
import { toProtocolError } from './errors.js';

/** The params of `tasks/get`, `tasks/result` and `tasks/cancel` (both protocol versions): `{ taskId }`, 1–256 characters. */
export const taskIdParams = z.looseObject({ taskId: z.string().min(1).max(256) });

/**
 * Registers `fn` as the handler of the request `method` on `server` (the task methods
 * `tasks/get|result|cancel|list|update`, which SDK v2 types as custom methods: they are not in its
 * spec registry). Replaces any previous handler of that method.
 *
 * - `params` is the schema of the request's params (a zod schema: zod implements Standard Schema). The SDK parses them with it before `fn`
 *   runs; a mismatch is answered -32602 (Invalid params) with the message `Invalid params for
 *   <method>: <zod issues>`, and `fn` is not called.
 * - `fn(params, ctx)` gets the parsed params and the SDK's per-request context (`ctx.http?.authInfo`
 *   for the principal, `ctx.mcpReq.signal` for the requestor's cancellation) and returns the
 *   JSON-RPC result object.
 * - Anything `fn` throws is mapped with `toProtocolError`: a `ProtocolError` keeps its code, engine
 *   errors become -32602 / -32000 / their own code, anything unexpected -32603 without internals.
 */
export function handler<Schema extends StandardSchemaV1>(
  server: Server,
  method: string,
  params: Schema,
  fn: (params: StandardSchemaV1.InferOutput<Schema>, ctx: ServerContext) => Promise<Result>,
): void {
  server.setRequestHandler(method, { params }, async (parsed, ctx) => {
    try {
      return await fn(parsed, ctx);
    } catch (error) {
      throw toProtocolError(error);
    }
  });
}
