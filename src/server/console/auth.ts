import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { localhostAllowedHostnames, validateHostHeader } from '@modelcontextprotocol/server';

/**
 * Who may use the operator console, which sees and acts on every principal's tasks.
 *
 * - With operator tokens (`tokens`: token → operator name): a request is an operator's when it
 *   carries `Authorization: Bearer <token>` or the console's session cookie, which `POST
 *   <basePath>/login` sets after checking a token (its `Path` is the console's `basePath`). The
 *   cookie names the operator and expires after `sessionMs`; it is signed with a key derived from
 *   that operator's token (HMAC-SHA-256), so every instance configured with the same tokens
 *   accepts it and changing a token signs its holder out.
 * - Without tokens: only loopback peers (127.0.0.0/8, ::1), as the operator `local`; a peer whose
 *   address the host did not give is not loopback (refused). The request must also name a
 *   loopback host (`Host` `localhost`, `127.0.0.1` or `[::1]`, any port), so that a web page whose
 *   DNS name is rebound to 127.0.0.1 cannot use the console through the operator's browser,
 *   whichever server hosts it. A server that authenticates its MCP clients must be given operator
 *   tokens (`TaskServer` refuses otherwise).
 *
 * Tokens are kept as SHA-256 digests only.
 */
export class ConsoleAuth {
  private readonly operators: { digest: Buffer; name: string; key: Buffer }[];

  /**
   * `tokens`: operator token → operator name (none or empty: loopback only); `sessionMs`: how long a
   * sign-in lasts, in ms; `cookiePath`: the session cookie's `Path` (the console's `basePath`, `/`
   * for a console at the root); `now`: the clock, ms since the epoch.
   */
  constructor(
    tokens: Record<string, string> | undefined,
    private readonly sessionMs = 12 * 3600_000,
    private readonly cookiePath = '/console',
    private readonly now: () => number = Date.now,
  ) {
    this.operators = Object.entries(tokens ?? {}).map(([token, name]) => ({
      digest: sha256(token),
      name,
      key: createHmac('sha256', 'mcp-tasks operator console session').update(token).digest(),
    }));
  }

  /** Whether operators sign in with a token (else: loopback only, no sign-in). */
  get usesTokens(): boolean {
    return this.operators.length > 0;
  }

  /** The operator a token belongs to, or undefined. */
  operatorOfToken(token: string): string | undefined {
    const digest = sha256(token);
    return this.operators.find((o) => timingSafeEqual(o.digest, digest))?.name;
  }

  /**
   * The operator making a request (its `headers`; `peer`: its peer's IP address, if the host knows
   * it; `host`: the host it was sent to, its `Host` header), or undefined when it is not an
   * operator's: a bearer operator token, a valid session cookie, or (without tokens) a loopback
   * `peer` that names a loopback `host` (`local`; an unknown peer is not loopback).
   */
  operatorOf(headers: Headers, peer: string | undefined, host: string): string | undefined {
    if (!this.usesTokens) return isLoopback(peer) && validateHostHeader(host, localhostAllowedHostnames()).ok ? 'local' : undefined;
    const bearer = /^Bearer\s+(.+)$/i.exec(headers.get('authorization') ?? '')?.[1];
    if (bearer) return this.operatorOfToken(bearer.trim());
    const cookie = cookies(headers.get('cookie') ?? undefined)[COOKIE];
    return cookie ? this.verifySession(cookie) : undefined;
  }

  /** A `Set-Cookie` value signing `operator` in (HttpOnly, SameSite=Strict, `Path` the cookie path; `Secure` when `secure`). */
  sessionCookie(operator: string, secure = false): string {
    const entry = this.operators.find((o) => o.name === operator)!;
    const payload = Buffer.from(JSON.stringify({ op: operator, exp: this.now() + this.sessionMs })).toString('base64url');
    const tag = createHmac('sha256', entry.key).update(payload).digest('base64url');
    return `${COOKIE}=${payload}.${tag}; Path=${this.cookiePath}; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(this.sessionMs / 1000)}${secure ? '; Secure' : ''}`;
  }

  /** A `Set-Cookie` value that signs out (the session cookie's name and `Path`, `Max-Age=0`). */
  clearCookie(): string {
    return `${COOKIE}=; Path=${this.cookiePath}; HttpOnly; SameSite=Strict; Max-Age=0`;
  }

  private verifySession(value: string): string | undefined {
    const [payload, tag] = value.split('.');
    if (!payload || !tag) return undefined;
    let claims: { op?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const entry = this.operators.find((o) => o.name === claims.op);
    if (!entry || typeof claims.exp !== 'number' || claims.exp <= this.now()) return undefined;
    const expected = createHmac('sha256', entry.key).update(payload).digest();
    const given = Buffer.from(tag, 'base64url');
    return given.length === expected.length && timingSafeEqual(given, expected) ? entry.name : undefined;
  }
}

const COOKIE = 'mcp_tasks_console';

const sha256 = (value: string) => createHash('sha256').update(value).digest();

/** Whether a socket's remote address is a loopback address (IPv4 127/8, IPv6 ::1, IPv4-mapped 127/8). */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return out;
}

/**
 * Whether a state-changing request (its `headers`; `host`: the host it was sent to, its `Host`
 * header) comes from the console's own pages (CSRF): its `Origin` (or, without one, its `Referer`)
 * has that host, or it carries neither but authenticates with a bearer token (a script, not a
 * browser). `Sec-Fetch-Site: cross-site` is refused outright.
 */
export function sameOrigin(headers: Headers, host: string): boolean {
  if (headers.get('sec-fetch-site') === 'cross-site') return false;
  const origin = headers.get('origin') ?? headers.get('referer');
  if (!origin) return /^Bearer\s/i.test(headers.get('authorization') ?? '');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
