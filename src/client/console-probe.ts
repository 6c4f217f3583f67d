/** The `<title>` every page of the mcp-tasks operator console ends with (`… · mcp-tasks console`). */
const CONSOLE_TITLE = /<title>[^<]*·\s*mcp-tasks console\s*<\/title>/i;
/** Redirects followed (same origin only) looking for the page behind a URL. */
const MAX_HOPS = 4;
/** How long each probe request may take, in ms. */
const PROBE_TIMEOUT_MS = 5000;

/**
 * When `url` is an mcp-tasks server's operator console (its root `/` redirects there) rather than
 * its MCP endpoint, a sentence saying so and naming the endpoint, e.g. `http://127.0.0.1:3000/ is the
 * operator console (web pages for people), not an MCP endpoint; the MCP endpoint is
 * http://127.0.0.1:3000/mcp`; otherwise undefined.
 *
 * Decided from what the server answers, not from the path: `GET url` (redirects followed within the
 * same origin, at most 4) must end on an HTML page whose title is the console's (`… · mcp-tasks
 * console`: its pages, its sign-in page and its refusals alike). The endpoint named is `/mcp` on the
 * same origin, the servers' default, when a request there is not answered 404; else the sentence
 * says the endpoint is at the path the server was started with. No credential is sent. Never
 * throws: a probe that fails (unreachable, timeout, not HTML) is undefined.
 */
export async function operatorConsoleAdvice(url: string): Promise<string | undefined> {
  try {
    let at = new URL(url);
    for (let hop = 0; hop <= MAX_HOPS; hop++) {
      const response = await fetch(at, { redirect: 'manual', headers: { accept: 'text/html' }, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        const location = response.headers.get('location');
        const next = location ? new URL(location, at) : undefined;
        if (!next || next.origin !== at.origin) return undefined;
        at = next;
        continue;
      }
      if (!(response.headers.get('content-type') ?? '').includes('text/html')) {
        await response.body?.cancel();
        return undefined;
      }
      if (!CONSOLE_TITLE.test((await response.text()).slice(0, 8192))) return undefined;
      const endpoint = new URL('/mcp', at).href;
      const there = await fetch(endpoint, { headers: { accept: 'application/json, text/event-stream' }, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await there.body?.cancel();
      return there.status === 404
        ? `${url} is the operator console (web pages for people), not an MCP endpoint; the MCP endpoint is on the same server, at the path it was started with (by default /mcp)`
        : `${url} is the operator console (web pages for people), not an MCP endpoint; the MCP endpoint is ${endpoint}`;
    }
    return undefined;
  } catch {
    return undefined;
  }
}
