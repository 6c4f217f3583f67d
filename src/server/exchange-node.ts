import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { AuthInfo } from '@modelcontextprotocol/server';
import { reportingTarget, type Exchange, type Outcome } from './exchange.js';

/** A Node request as hosts hand it over: Express and the SDK's auth middleware set `auth`, body parsers `body`. */
type HostRequest = IncomingMessage & { auth?: AuthInfo; body?: unknown };

/**
 * The `Exchange` of a Node request (`node:http`, Express, Fastify's `request.raw`/`reply.raw`).
 * The body is `parsedBody` when given (a function, Express's `next`, is not a body), else
 * `req.body` when a body parser consumed the stream (`express.json()`), else read from `req`.
 * A class, not an object of closures: one is made per request on the hot path.
 */
export function nodeExchange(req: HostRequest, res: ServerResponse, parsedBody?: unknown): Exchange {
  return new NodeExchange(req, res, typeof parsedBody === 'function' ? undefined : parsedBody);
}

class NodeExchange implements Exchange {
  readonly method: string;
  authInfo: AuthInfo | undefined;
  private controller?: AbortController;

  constructor(
    private readonly req: HostRequest,
    private readonly res: ServerResponse,
    private readonly given: unknown,
  ) {
    this.method = (req.method ?? 'GET').toUpperCase();
    this.authInfo = req.auth;
  }

  header(name: string): string | undefined {
    const value = this.req.headers[name];
    return Array.isArray(value) ? value.join(', ') : value;
  }

  async readBody(limit: number): Promise<{ parsed: unknown } | { text: string } | 'too-large'> {
    const { req } = this;
    if (this.given !== undefined) return { parsed: this.given };
    if (req.body !== undefined && req.readableEnded) return { parsed: req.body };
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) return 'too-large';
      chunks.push(chunk as Buffer);
    }
    return { text: Buffer.concat(chunks).toString('utf8') };
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      const { res } = this;
      if (res.closed || res.destroyed) controller.abort();
      else
        res.once('close', () => {
          if (!res.writableFinished) controller.abort();
        });
    }
    return this.controller.signal;
  }

  gone(): boolean {
    return this.res.closed || this.res.destroyed;
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }
}

/**
 * Sends `outcome` on `res`: JSON written directly; the SDK's turn through the SDK's own Node
 * adapter (`toNodeHandler`: web `Request` in, `Response` out, SSE with backpressure), with
 * `x.authInfo` as `req.auth`; a built `Response` piped out (cancelled when the client goes).
 */
export async function sendNode(outcome: Outcome, req: HostRequest, res: ServerResponse, x: Exchange, onError: (error: Error) => void): Promise<void> {
  switch (outcome.kind) {
    case 'json':
      res.writeHead(outcome.status, { 'content-type': 'application/json', ...outcome.headers }).end(JSON.stringify(outcome.body));
      return;
    case 'sdk':
      if (x.authInfo) req.auth = x.authInfo;
      return toNodeHandler(reportingTarget(outcome), { onerror: onError })(req, res, outcome.parsedBody);
    case 'response': {
      const { response } = outcome;
      const headers: Record<string, string | string[]> = Object.fromEntries(response.headers);
      const cookies = response.headers.getSetCookie();
      if (cookies.length) headers['set-cookie'] = cookies;
      res.writeHead(response.status, headers);
      if (!response.body) return void res.end();
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>), res).catch(() => undefined); // the client left: the stream is cancelled
    }
  }
}
