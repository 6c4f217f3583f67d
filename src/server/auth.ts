import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OAuthError, OAuthErrorCode, type AuthInfo, type OAuthTokenVerifier } from '@modelcontextprotocol/server';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * A bearer-token verifier for a fixed set of tokens, each bound to a principal (for the demo and
 * small deployments; plug any `OAuthTokenVerifier`, e.g. an OAuth introspection client, into
 * `startHttpServer({ auth })` instead). Tokens are kept only as SHA-256 digests. A valid token yields
 * `AuthInfo` with `clientId` and `extra.principal` set to its principal and an expiry one hour ahead
 * (the SDK refuses tokens without one). Unknown tokens throw `OAuthError(invalid_token)` → HTTP 401.
 */
export function staticTokenVerifier(tokens: Record<string, string>): OAuthTokenVerifier {
  const principals = new Map(Object.entries(tokens).map(([token, principal]) => [sha256(token), principal]));
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const principal = principals.get(sha256(token));
      if (!principal) throw new OAuthError(OAuthErrorCode.InvalidToken, 'Unknown bearer token');
      return { token, clientId: principal, scopes: [], expiresAt: Math.floor(Date.now() / 1000) + 3600, extra: { principal } };
    },
  };
}

/**
 * Reads a token file: a JSON object mapping each bearer token to the principal it authenticates,
 * e.g. `{"s3cr3t-alice": "alice", "s3cr3t-bob": "bob"}`. Throws with the file name when it cannot be read, is not
 * JSON, or has another shape.
 */
export function loadTokenFile(path: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`Token file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string' && v.length > 0)) {
    throw new Error(`Token file ${path} must be a JSON object mapping tokens to principal names`);
  }
  return value as Record<string, string>;
}
