import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { Json } from './json.js';

/** Marker of a sealed value in stored JSON: `{ "$sealed": "v1.<iv>.<tag>.<ciphertext>" }` (base64url parts). */
const MARK = '$sealed';

/**
 * Encrypts values at rest with AES-256-GCM (authenticated; a tampered value fails to open). The key
 * is 32 bytes, or any passphrase/string, which is stretched with SHA-256. Used for elicitation
 * answers and argument fields a tool marks `sensitive`; ids, statuses and timestamps stay readable.
 */
export class SecretBox {
  private readonly key: Buffer;
  /** `macKey()`, derived once. */
  private mac?: Buffer;

  constructor(key: Buffer | string) {
    this.key = typeof key === 'string' || key.length !== 32 ? createHash('sha256').update(key).digest() : key;
  }

  /**
   * A key derived from this box's for MACs (HMAC-SHA256 of a fixed label), never the sealing key
   * itself: what `requestFingerprint` keys its hash with when arguments are sealed at rest.
   */
  macKey(): Buffer {
    this.mac ??= createHmac('sha256', this.key).update('mcp-tasks fingerprint v1').digest();
    return this.mac;
  }

  /** Seals any JSON value into `{ $sealed: … }`. */
  seal(value: Json): Json {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return { [MARK]: ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.') };
  }

  /** Opens a sealed value; returns other values unchanged. Throws if the value was tampered with or sealed with another key. */
  open<T = Json>(value: Json | undefined): T {
    if (!isSealed(value)) return value as T;
    const [version, iv, tag, data] = String(value[MARK]).split('.');
    if (version !== 'v1' || !iv || !tag || !data) throw new Error('Unknown sealed value format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8')) as T;
  }
}

/** True for a value produced by `SecretBox.seal`. */
export function isSealed(value: unknown): value is { [MARK]: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as Record<string, unknown>)[MARK] === 'string';
}
