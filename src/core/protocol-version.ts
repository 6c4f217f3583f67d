/**
 * The two MCP protocol versions whose Tasks this library serves and follows, by the spec's own
 * names:
 * - `2025-11-25`: tasks in core (`params.task`, `tasks/get|result|list|cancel`, questions as
 *   server-to-client requests), served per session (`initialize`, `Mcp-Session-Id`);
 * - `2026-07-28`: the `io.modelcontextprotocol/tasks` extension (server-directed tasks, `tasks/get`
 *   with `inputRequests` and the result inline, `tasks/update`, questions as multi round-trip
 *   requests), served per request.
 *
 * Code specific to one version lives in the folder of that name (`src/wire/2025-11-25/`,
 * `src/wire/2026-07-28/`); its identifiers end with the version's year (`Session2025`,
 * `getTask2026`). Neither folder imports the other; shared code imports neither.
 */
export type ProtocolVersion = '2025-11-25' | '2026-07-28';

/** Both versions, oldest first. */
export const PROTOCOL_VERSIONS: readonly ProtocolVersion[] = ['2025-11-25', '2026-07-28'];

/** `isProtocolVersion(value)`: whether `value` names one of `PROTOCOL_VERSIONS`. */
export function isProtocolVersion(value: unknown): value is ProtocolVersion {
  return value === '2025-11-25' || value === '2026-07-28';
}
