/** A webhook receiver for tests: a loopback HTTP server that verifies every delivery with `standardwebhooks` and answers as told. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request the receiver got. */
export interface Received {
  /** `webhook-id`. */
  id: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The verified, parsed payload, or undefined when `Webhook.verify` refused it. */
  payload?: { type: string; timestamp: string; data: Record<string, unknown> };
  /** The status it was answered with. */
  status: number;
}

/** A fresh Standard Webhooks secret (`whsec_` + base64 of 24 random bytes). */
export function newSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64')}`;
}

/**
 * Starts the receiver on 127.0.0.1 (`port`, default any). `answer(path, attemptOfThisId)` decides
 * each status (default 200) and headers. `secrets` maps a path to the secret its deliveries are
 * verified with.
 */
export async function startReceiver(
  secrets: Record<string, string>,
  answer: (path: string, attempt: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 }),
  port = 0,
) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += String(chunk)));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      const path = req.url ?? '/';
      let payload: Received['payload'];
      try {
        payload = new Webhook(secrets[path]!).verify(body, req.headers as Record<string, string>) as Received['payload'];
      } catch {
        payload = undefined;
      }
      const attempt = received.filter((r) => r.id === id).length + 1;
      const { status, headers } = payload ? answer(path, attempt) : { status: 400, headers: {} };
      received.push({ id, path, headers: req.headers, body, payload, status });
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    /** Requests answered 2xx. */
    delivered: () => received.filter((r) => r.status >= 200 && r.status < 300),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
