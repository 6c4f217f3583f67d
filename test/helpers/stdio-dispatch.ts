/**
 * 2026-07-28 task traffic beside an SDK v2 `Client` on its own stdio connection.
 *
 * The SDK `Client` refuses results with `resultType: "task"` (`UNSUPPORTED_RESULT_TYPE`), so the
 * Tasks extension's wire shapes need a raw request path; ext-tasks asks for one as `rawDispatch`.
 * Over HTTP that is a plain POST (see `createHttpRawDispatch`); over stdio there is one pipe, owned
 * by the connected `Client`, so this sends framed requests on the Client's transport under ids of
 * its own (`raw-<n>`, never the Client's numbers) and takes their responses off the transport
 * before the Client sees them. Everything else still flows to the Client.
 */
import { isJSONRPCErrorResponse, isJSONRPCResultResponse, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/client';
import type { RawClientDispatch } from '@modelcontextprotocol/ext-tasks/client';

/** A raw request path on a connected Client's transport (see the module doc). */
export interface StdioRawDispatch {
  /** The ext-tasks `rawDispatch`: sends `request` (an id is assigned) and resolves with its result or error. */
  dispatch: RawClientDispatch;
  /** Sends `method` with `params` (its `_meta` as given) and resolves with the JSON-RPC `result`; rejects with the JSON-RPC `error` object. */
  request(method: string, params: Record<string, unknown>): Promise<any>;
  /** Notifications the server sent (in order), which the Client also received. */
  notifications: JSONRPCMessage[];
}

/** Interposes on `transport.onmessage` (as the `Client` installed it on `connect`): call after `client.connect(transport)`. */
export function createStdioRawDispatch(transport: Transport): StdioRawDispatch {
  const pending = new Map<string, (message: JSONRPCMessage) => void>();
  const notifications: JSONRPCMessage[] = [];
  let next = 1;
  const inner = transport.onmessage;
  transport.onmessage = (message, extra) => {
    const id = (message as { id?: unknown }).id;
    if ((isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && typeof id === 'string' && pending.has(id)) {
      pending.get(id)!(message);
      pending.delete(id);
      return;
    }
    if (!('id' in message)) notifications.push(message);
    inner?.(message, extra);
  };
  const send = (body: Record<string, unknown>, signal?: AbortSignal) => {
    const id = `raw-${next++}`;
    return new Promise<JSONRPCMessage>((resolve, reject) => {
      pending.set(id, resolve);
      signal?.addEventListener('abort', () => pending.delete(id) && reject(signal.reason), { once: true });
      transport.send({ ...body, jsonrpc: '2.0', id } as JSONRPCMessage).catch((error: unknown) => {
        pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      });
    });
  };
  return {
    notifications,
    dispatch: async (request, options) => {
      const reply = (await send(request as Record<string, unknown>, options?.signal)) as { result?: unknown; error?: unknown };
      return reply.error !== undefined ? { kind: 'error', error: reply.error as never } : { kind: 'result', result: reply.result as never };
    },
    request: async (method, params) => {
      const reply = (await send({ method, params })) as { result?: unknown; error?: unknown };
      // The JSON-RPC error object as an Error carrying its code, message and data.
      if (reply.error !== undefined) throw Object.assign(new Error(String((reply.error as { message?: unknown }).message)), reply.error);
      return reply.result;
    },
  };
}
