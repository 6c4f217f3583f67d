import { readRequestBody } from '@modelcontextprotocol/server';
import { reportingTarget, type Exchange, type McpFetchOptions, type Outcome } from './exchange.js';

/** A web-standard `Exchange`, which also turns its outcome's `Response` into the one that reports the end of the exchange. */
export interface WebExchange extends Exchange {
  /**
   * `response`, with the exchange's close listeners called when it is over: at once for a response
   * that is complete as it stands (no body, JSON), or when an SSE body has been read to the end or
   * cancelled (a host that never reads a JSON body does not keep the request counted).
   */
  finish(response: Response): Response;
}

/**
 * The `Exchange` of a web-standard `Request`. The body is `options.parsedBody` when given, else
 * read from the request, refused past the limit by `Content-Length` or while reading. The client
 * has gone when `request.signal` aborts (hosts abort it when the connection closes).
 */
export function webExchange(request: Request, options: McpFetchOptions = {}): WebExchange {
  const listeners: (() => void)[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    request.signal.removeEventListener('abort', close);
    for (const listener of listeners.splice(0)) listener();
  };
  request.signal.addEventListener('abort', close, { once: true });
  return {
    method: request.method.toUpperCase(),
    header: (name) => request.headers.get(name) ?? undefined,
    authInfo: options.authInfo,
    async readBody(limit) {
      if (options.parsedBody !== undefined) return { parsed: options.parsedBody };
      const read = await readRequestBody(request, limit); // the SDK's: Content-Length first, then while reading
      return read.tooLarge ? 'too-large' : { text: read.text };
    },
    signal: request.signal,
    gone: () => request.signal.aborted,
    onClose: (listener) => (closed ? listener() : void listeners.push(listener)),
    finish(response) {
      if (!response.body || !(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
        close();
        return response;
      }
      const reader = response.body.getReader();
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              controller.close();
              close();
            } else controller.enqueue(value);
          } catch (error) {
            controller.error(error);
            close();
          }
        },
        async cancel(reason) {
          close();
          await reader.cancel(reason);
        },
      });
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    },
  };
}

/** Answers `outcome` as a web `Response` for `request`; the SDK's turn gets `x.authInfo` and the parsed body. */
export async function sendWeb(outcome: Outcome, request: Request, x: WebExchange, onError: (error: unknown) => void): Promise<Response> {
  switch (outcome.kind) {
    case 'json':
      return x.finish(
        new Response(JSON.stringify(outcome.body), { status: outcome.status, headers: { 'content-type': 'application/json', ...outcome.headers } }),
      );
    case 'response':
      return x.finish(outcome.response);
    case 'sdk':
      try {
        const options = { ...(x.authInfo && { authInfo: x.authInfo }), ...(outcome.parsedBody !== undefined && { parsedBody: outcome.parsedBody }) };
        return x.finish(await reportingTarget(outcome).fetch(request, options));
      } catch (error) {
        onError(error);
        return x.finish(Response.json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal error' }, id: null }, { status: 500 }));
      }
  }
}
