import { SUPPORTED_PROTOCOL_VERSIONS, type McpServer } from '@modelcontextprotocol/server';

/**
 * Makes `server/discover` (2026-07-28 "Server Discovery": `supportedVersions` are the protocol
 * versions the server supports) list the 2025-era revisions the same endpoint serves through
 * `initialize` — by default every version the SDK negotiates there (`SUPPORTED_PROTOCOL_VERSIONS`,
 * 2025-11-25 first) — after the modern ones, which stay first so clients that take the first
 * overlap still pick 2026-07-28.
 *
 * SDK seam, in this one place: SDK v2 answers `server/discover` from `Server._ondiscover()` with
 * modern revisions only, and offers no option to name others. This wraps that method on the one
 * instance (the SDK's handler calls it at request time); if a later SDK drops the method, its own
 * answer is left unchanged.
 */
export function advertiseServedVersions(mcp: McpServer, legacyVersions: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS): void {
  const server = mcp.server as unknown as { _ondiscover?: () => { supportedVersions: string[] } & Record<string, unknown> };
  const discover = server._ondiscover?.bind(server);
  if (!discover) return;
  server._ondiscover = () => {
    const result = discover();
    return { ...result, supportedVersions: [...result.supportedVersions, ...legacyVersions.filter((v) => !result.supportedVersions.includes(v))] };
  };
}
