/**
 * Helpers for driving the operator console (`/console/`) with plain fetch, no browser: a tiny
 * "browser" that keeps the session cookie and sends same-origin form posts, an invoice factory, and
 * an in-process invoice server that, unlike `startInvoiceServer`, also hands back its `TaskServer`
 * (store and runtime) so tests can read the journal.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/server';
import { DEFAULT_ERP_PATH } from '../../examples/invoice/server.js';
import { Erp } from '../../examples/invoice/erp.js';
import { Ledger } from '../../examples/invoice/ledger.js';
import { registerInvoiceTasks, registerLedgerTools } from '../../examples/invoice/tools.js';
import { createTaskServer, staticTokenVerifier, type TaskServer } from '../../src/index.js';
import { silentLogger } from '../../src/core/log.js';

/** A fetch response read once: status, headers, body text (markup normalized, see `normalizeHtml`). */
export interface Page {
  status: number;
  headers: Headers;
  text: string;
  location?: string;
  setCookie?: string;
}

/**
 * HTML with layout-only differences removed, so assertions are about content and attributes, not
 * about how the source was formatted: whitespace runs collapsed to one space; none between tags,
 * after an opening tag, before a closing tag or before a tag's `>`; `/>` written `>`.
 */
export function normalizeHtml(text: string): string {
  return text
    .replace(/\s+/g, ' ')
    .replace(/>\s+</g, '><')
    .replace(/\s*\/>/g, '>')
    .replace(/<(\/?[a-z][^>]*?)\s+>/g, '<$1>')
    .replace(/>\s+(?=[^<\s])/g, '>')
    .replace(/(?<=[^>\s])\s+<\//g, '</');
}

async function read(response: Response): Promise<Page> {
  const type = response.headers.get('content-type') ?? '';
  const body = await response.text();
  const text = type.startsWith('text/html') ? normalizeHtml(body) : body;
  return {
    status: response.status,
    headers: response.headers,
    text,
    ...(response.headers.get('location') && { location: response.headers.get('location')! }),
    ...(response.headers.get('set-cookie') && { setCookie: response.headers.get('set-cookie')! }),
  };
}

/**
 * A client of the console: `origin` is `http://127.0.0.1:<port>`. `cookie` (name=value) is sent
 * when set; POSTs are forms with `Origin: <origin>` unless the caller overrides headers. Redirects
 * are not followed (`location` is returned). `options.base` is the console's base path (default
 * `/console`, for `login`); `options.send` what sends a request (default the global `fetch`; e.g.
 * an `OperatorConsole`'s own `fetch`, no HTTP server in between).
 */
export class ConsoleHttp {
  cookie?: string;
  readonly base: string;
  private readonly send: (url: string, init: RequestInit) => Promise<Response>;

  constructor(
    readonly origin: string,
    options: { base?: string; send?: (url: string, init: RequestInit) => Promise<Response> } = {},
  ) {
    this.base = options.base ?? '/console';
    this.send = options.send ?? fetch;
  }

  /** The cookie (if any) and `extra`; an `extra` header given as `''` is left out (e.g. `origin: ''`: no Origin). */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return Object.fromEntries(Object.entries({ ...(this.cookie && { cookie: this.cookie }), ...extra }).filter(([, v]) => v !== ''));
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Page> {
    return read(await this.send(this.origin + path, { redirect: 'manual', headers: this.headers(headers) }));
  }

  /** POSTs `fields` as `application/x-www-form-urlencoded` (a field given an array repeats). `Origin` defaults to the console's own. */
  async post(path: string, fields: Record<string, string | string[]> = {}, headers: Record<string, string> = {}): Promise<Page> {
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(name, v);
    return read(
      await this.send(this.origin + path, {
        method: 'POST',
        redirect: 'manual',
        headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded', origin: this.origin, ...headers }),
        body: body.toString(),
      }),
    );
  }

  /** Signs in with `token`; keeps the session cookie (name=value) and returns the login response. */
  async login(token: string): Promise<Page> {
    const page = await this.post(`${this.base}/login`, { token });
    if (page.status === 303 && page.setCookie) this.cookie = page.setCookie.split(';')[0]!;
    return page;
  }
}

/**
 * One request with `node:http` on a connection of its own (no keep-alive pool; fetch would neither
 * let a test set `Host` nor keep a misbehaving connection out of its shared pool).
 */
export function rawHttp(
  origin: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The `name=value` part of a `Set-Cookie` header, and its attributes (lower-cased names). */
export function parseSetCookie(header: string): { name: string; value: string; attributes: Record<string, string> } {
  const [pair, ...rest] = header.split(';').map((s) => s.trim());
  const at = pair!.indexOf('=');
  const attributes: Record<string, string> = {};
  for (const part of rest) {
    const eq = part.indexOf('=');
    attributes[(eq < 0 ? part : part.slice(0, eq)).toLowerCase()] = eq < 0 ? '' : part.slice(eq + 1);
  }
  return { name: pair!.slice(0, at), value: pair!.slice(at + 1), attributes };
}

/** The task ids of the rows (`tr[data-task-id]`) of a list page. */
export function rowIds(html: string): string[] {
  return [...html.matchAll(/<tr data-task-id="([^"]+)"/g)].map((m) => m[1]!);
}

/** The numbers of the status counts (`data-count`) of a list page. */
export function countsOf(html: string): Record<string, number> {
  return Object.fromEntries([...html.matchAll(/data-count="([a-z_]+)"><strong>(\d+)<\/strong>/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** The keys of the questions (`data-question`) shown on a task page. */
export function questionKeys(html: string): string[] {
  return [...html.matchAll(/data-question="([^"]+)"/g)].map((m) => m[1]!);
}

/**
 * A fresh invoice of the shipped INV-2026-0002 (Globex, USD, PO-2026-0430 of 60 000) shape with its
 * own `invoiceId` and one small line, so many fit the PO at once; `patch` replaces fields.
 */
export function smallInvoice(invoiceId: string, patch: Record<string, unknown> = {}): Record<string, unknown> {
  const base = JSON.parse(readFileSync(join('examples/invoice/data/invoices', 'INV-2026-0002.json'), 'utf8'));
  return { ...base, invoiceId, lines: [{ lineId: '1', description: 'Console test line', amount: 12.5 }], ...patch };
}

export interface ConsoleInvoiceServer {
  server: TaskServer;
  /** MCP endpoint URL. */
  url: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  close(): Promise<void>;
}

/**
 * The invoice demo built as `startInvoiceServer` builds it (memory store, in-memory ledger, the
 * shipped ERP, the console on), keeping the `TaskServer` for the test.
 */
export async function startConsoleInvoiceServer(options: {
  tokens?: Record<string, string>;
  operatorTokens?: Record<string, string>;
  host?: string;
  /** The approval question's deadline (see `InvoiceDeps.approvalDeadlineMs`; default 48 h). */
  approvalDeadlineMs?: number;
}): Promise<ConsoleInvoiceServer> {
  const ledger = new Ledger(':memory:');
  const server = createTaskServer({
    store: 'memory:',
    storeOptions: { policy: { pollIntervalMs: 50 } },
    tasks: { list: options.tokens !== undefined },
    logger: silentLogger,
    console: { ...(options.operatorTokens && { operatorTokens: options.operatorTokens }) },
    createMcpServer: () => {
      const mcp = new McpServer({ name: 'mcp-tasks-invoice', version: '0.1.0' });
      registerLedgerTools(mcp, ledger);
      return mcp;
    },
  });
  registerInvoiceTasks(server.tasks, { erp: Erp.load(DEFAULT_ERP_PATH), ledger, runtime: server.runtime, approvalDeadlineMs: options.approvalDeadlineMs });
  try {
    const http = await server.listen({
      port: 0,
      ...(options.host && { host: options.host }),
      ...(options.tokens && { auth: { verifier: staticTokenVerifier(options.tokens) } }),
    });
    const url = new URL(http.url);
    return { server, url: http.url, origin: url.origin, close: () => server.close().finally(() => ledger.close()) };
  } catch (error) {
    await server.close().finally(() => ledger.close());
    throw error;
  }
}

/** One bar of a task page's timeline chart: its row's kind and label, where it starts and how wide it is (% of the chart). */
export interface TimelineBar {
  kind: string;
  state: string;
  label: string;
  /** The row's text (label, duration, detail), markup removed. */
  text: string;
  left: number;
  width: number;
  /** The marker of a wait due beyond the chart's end (`→ 41 days`), if any. */
  beyond?: string;
}

/** The rows of a task page's timeline chart (`.timeline li[data-kind]`), in order. */
export function timelineBars(html: string): TimelineBar[] {
  return [...html.matchAll(/<li class="t-[^"]*" data-kind="([^"]+)" data-state="([^"]+)">([\s\S]*?)<\/li>/g)].map((m) => {
    const row = m[3]!;
    const bar = /<span class="bar[^"]*" style="left:min\(([\d.]+)%,[^)]*\)\);width:max\(([\d.]+)%,6px\)">/.exec(row);
    assert(bar, `a bar in ${row}`);
    const beyond = /data-beyond>([^<]*)</.exec(row)?.[1];
    return {
      kind: m[1]!,
      state: m[2]!,
      label: /<strong>([^<]*)<\/strong>/.exec(row)?.[1] ?? '',
      text: row
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim(),
      left: Number(bar[1]),
      width: Number(bar[2]),
      ...(beyond !== undefined && { beyond }),
    };
  });
}

/** The breaks of a task page's timeline axis (long quiet stretches drawn narrow), as their labels say (`5 days`). */
export function axisBreaks(html: string): string[] {
  return [...html.matchAll(/<span class="gap-label"[^>]*>([^<]*)<\/span>/g)].map((m) => m[1]!);
}
