import type { ProtocolEra } from '@modelcontextprotocol/server';
import type { ProtocolVersion } from '../core/protocol-version.js';

export { PROTOCOL_VERSIONS, isProtocolVersion, type ProtocolVersion } from '../core/protocol-version.js';

/**
 * The version a server built by the SDK's entry points serves, from the SDK's own word for it
 * (`ProtocolEra` of `createMcpHandler` / `serveStdio` contexts: `legacy` is the 2025-11-25 family,
 * `modern` 2026-07-28). The SDK's words stop here: nothing past this function uses them.
 */
export function protocolVersionOf(era: ProtocolEra): ProtocolVersion {
  return era === 'modern' ? '2026-07-28' : '2025-11-25';
}
