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

  /**
   * The body as `Exchange.readBody` says. Read with 'data'/'end' listeners rather than an async
   * iterator (the iterator's machinery costs more than reading a small body). Past `limit` the rest
   * of the body is read and dropped, so the answer (413) still reaches the client; a request that
   * closes before its end rejects (`ERR_STREAM_PREMATURE_CLOSE`).
   */
  readBody(limit: number): Promise<{ parsed: unknown } | { text: string } | 'too-large'> {
    const { req } = this;
    if (this.given !== undefined) return Promise.resolve({ parsed: this.given });
    if (req.body !== undefined && req.readableEnded) return Promise.resolve({ parsed: req.body });
    if (req.readableEnded) return Promise.resolve({ text: '' });
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stop = () => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size <= limit) return void chunks.push(chunk);
        stop();
        req.resume(); // the rest is read and dropped; the connection stays usable for the answer (413)
        resolve('too-large');
      };
      const onEnd = () => {
        stop();
        resolve({ text: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') });
      };
      const onError = (error: Error) => {
        stop();
        reject(error);
      };
      const onClose = () => {
        stop();
        reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('close', onClose);
    });
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
