import type { AuthInfo } from '@modelcontextprotocol/server';
import type { Principal } from '../core/access.js';

/**
 * The principal a request acts for, from the SDK's validated `AuthInfo` (set by bearer-token
 * middleware on the HTTP transport): `authInfo.extra.principal` when the verifier sets one, else
 * `authInfo.clientId`. Without authentication it is `null`, and every unauthenticated requestor
 * shares the `null` principal — task ids (128 random bits) are then the only protection, as the
 * spec allows (2025-11-25 "Security Considerations"). Tasks are never bound to transport sessions,
 * so a new connection after a restart reads its tasks by id.
 */
export function principalOf(authInfo: AuthInfo | undefined): Principal {
  if (!authInfo) return null;
  const explicit = authInfo.extra?.principal;
  return typeof explicit === 'string' && explicit.length > 0 ? explicit : authInfo.clientId;
}
