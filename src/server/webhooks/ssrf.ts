import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { InvalidArgumentError } from '../../core/errors.js';

/**
 * The ranges `allowPrivateAddresses` opens (besides public unicast, always allowed): private
 * networks (RFC 1918, IPv6 unique local), loopback and carrier-grade NAT. Link-local (the cloud
 * metadata endpoint 169.254.169.254, fe80::/10), multicast, broadcast, unspecified and reserved
 * ranges are refused even then.
 */
const PRIVATE_RANGES = new Set(['private', 'loopback', 'uniqueLocal', 'carrierGradeNat']);

/** Why an address is refused, or undefined when a webhook may be sent to it (ipaddr.js ranges; IPv4-mapped IPv6 is read as IPv4). */
export function refusedAddress(address: string, allowPrivate: boolean, loopbackOnly = false): string | undefined {
  let range: string;
  try {
    range = ipaddr.process(address).range();
  } catch {
    return `${address} is not an IP address`;
  }
  if (loopbackOnly) return range === 'loopback' ? undefined : `http: webhooks may only go to loopback addresses, and ${address} is ${range}`;
  if (range === 'unicast') return undefined;
  if (allowPrivate && PRIVATE_RANGES.has(range)) return undefined;
  return `${address} is a ${range} address${PRIVATE_RANGES.has(range) ? ' (allowPrivateAddresses is off)' : ''}`;
}

/** Thrown when a webhook URL or the address it resolves to is refused (SSRF guard). Code `WEBHOOK_URL_REFUSED`. */
export class WebhookUrlRefusedError extends InvalidArgumentError {
  readonly code = 'WEBHOOK_URL_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'WebhookUrlRefusedError';
  }
}

/**
 * Checks a webhook URL's form: `https:`, or `http:` only when `allowPrivate` (and then only to
 * loopback addresses, checked on resolution); no credentials in it; a host literal that is an IP
 * must pass `refusedAddress`. Returns the parsed URL; throws `WebhookUrlRefusedError`.
 */
export function checkWebhookUrl(url: string, allowPrivate: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookUrlRefusedError(`webhook URL ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && allowPrivate)) {
    throw new WebhookUrlRefusedError(`webhook URL ${parsed.origin}: only https: URLs are allowed (http: only to loopback, with allowPrivateAddresses)`);
  }
  if (parsed.username || parsed.password) throw new WebhookUrlRefusedError(`webhook URL ${parsed.origin}: credentials in the URL are not allowed`);
  const host = hostOf(parsed);
  if (isIP(host)) {
    const refused = refusedAddress(host, allowPrivate, parsed.protocol === 'http:');
    if (refused) throw new WebhookUrlRefusedError(`webhook URL ${parsed.origin} refused: ${refused}`);
  }
  return parsed;
}

/** The URL's host without IPv6 brackets. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Every address `hostname` resolves to (the system resolver, as connections use it). */
export function resolveAll(hostname: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));
}

/**
 * Resolves the URL's host and checks every address it resolves to (all must pass, so a name with
 * one private address among public ones is refused). Throws `WebhookUrlRefusedError`, or the DNS
 * error (`ENOTFOUND`, …).
 */
export async function checkResolved(url: URL, allowPrivate: boolean): Promise<void> {
  const host = hostOf(url);
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveAll(host);
  for (const { address } of addresses) {
    const refused = refusedAddress(address, allowPrivate, url.protocol === 'http:');
    if (refused) throw new WebhookUrlRefusedError(`webhook URL ${url.origin} refused: ${host} resolves to ${refused}`);
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `http.request` / `net.connect` that resolves the name and refuses (with
 * `WebhookUrlRefusedError`) unless every address passes `refusedAddress`: the connection is made to
 * an address checked at that moment, so a DNS answer that changes between a check and the connect
 * (rebinding) cannot slip through. IP literals bypass `lookup`: `checkWebhookUrl` checks them.
 */
export function guardedLookup(allowPrivate: boolean, loopbackOnly: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    resolveAll(hostname).then(
      (addresses) => {
        for (const { address } of addresses) {
          const refused = refusedAddress(address, allowPrivate, loopbackOnly);
          if (refused) return callback(new WebhookUrlRefusedError(`${hostname} resolves to ${refused}`), '');
        }
        if (options.all) return callback(null, addresses);
        callback(null, addresses[0]!.address, addresses[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };
}
