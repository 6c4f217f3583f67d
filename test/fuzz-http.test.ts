/**
 * Seeded fuzzing of the HTTP entry with bodies that are hostile in shape rather than in meaning, on
 * three routes: a 2025-11-25 session (`Mcp-Session-Id`), 2025-11-25 without a session (the
 * initialize / `isLegacyRequest` path) and 2026-07-28 (`_meta` envelope, `Mcp-Method`/`Mcp-Name`).
 * Shapes: nesting far deeper than `checkBody`'s 64 levels (whole body, params, `tools/call`
 * arguments, `tasks/update` answers, `_meta` of `tasks/get` and `server/discover`, `id`), the depth
 * boundary itself, many keys, huge strings, invalid UTF-8, batches (empty, over 100, mixed), wrong
 * types, truncated JSON, non-JSON content types and top-level scalars.
 *
 * Every answer must be < 500 and, when it has a body, JSON-RPC: an error with an integer code other
 * than -32603 (Internal error), or a result. Shapes with a documented answer (see
 * `src/server/body-guard.ts`) must get exactly it. Afterwards the server still serves both eras and
 * the stored tasks are unchanged. Every shape runs once on every route, then `FUZZ_ROUNDS` (default
 * 150) random picks; the PRNG is seeded from `FUZZ_SEED` or the clock and the seed is in every
 * failure message.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sseMessages } from '../src/client/sse.js';
import { ModernRawClient } from './helpers/modern-client.js';
import { RawMcpClient, type RpcMessage } from './helpers/raw-client.js';
import { prng } from './helpers/prng.js';
import { startTestServer } from './helpers/test-server.js';
import { until } from './helpers/until.js';

type RouteName = '2025 session' | '2025 no session' | '2026';
interface Answer {
  status: number;
  contentType: string;
  /** JSON-RPC messages of the body (a JSON array is flattened; SSE events in order). */
  messages: unknown[];
  /** Why the body is not what a client can rely on, if it is not. */
  malformed?: string;
}
/** A JSON text member list, so bodies far deeper than `JSON.stringify` copes with can be built as strings. */
type Members = [key: string, json: string][];

/** The documented limits of `checkBody` (DEFAULT_BODY_LIMITS), asserted from the outside. */
const MAX_DEPTH = 64;
const MAX_BATCH = 100;
const MAX_KEYS = 100_000;

it('hostile HTTP bodies get a 4xx or a JSON-RPC answer, never a 5xx, in both eras, and change nothing', { timeout: 120_000 }, async (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const server = await startTestServer('memory:');
  try {
    const legacy = new RawMcpClient(server.url);
    await legacy.initialize();
    const modern = new ModernRawClient(server.url);
    // Tasks in three states, to aim tasks/get and tasks/update at and to snapshot.
    const done = (await legacy.request('tools/call', { name: 'echo', arguments: { text: 'x' }, task: {} })).result.task.taskId as string;
    await legacy.request('tasks/result', { taskId: done });
    const cancelled = (await legacy.request('tools/call', { name: 'slow', arguments: { ms: 60_000 }, task: {} })).result.task.taskId as string;
    await legacy.request('tasks/cancel', { taskId: cancelled });
    const waiting = (await modern.request('tools/call', { name: 'ask', arguments: { question: 'q' } })).result.taskId as string;
    const asking = await until(
      async () => {
        const got = (await modern.request('tasks/get', { taskId: waiting })).result;
        return got?.status === 'input_required' && got;
      },
      { intervalMs: 10, what: 'the ask task to be input_required' },
    );
    const inputKey = Object.keys(asking.inputRequests)[0]!;
    // What requestors can see, one line per task (so a difference names the task).
    const snapshot = async () =>
      (await server.store.list(null, undefined, 1000)).tasks.map((task) =>
        JSON.stringify([task.taskId, task.status, task.statusMessage, task.lastUpdatedAt, task.inputRequests, task.outcome]),
      );
    const before = await snapshot();
    assert.equal(before.length, 3);
    assert.match(before.join('\n'), /input_required/, 'the waiting task is asking');

    const envelope = JSON.stringify(modern.envelope());
    let nextId = 1000;

    // ---- body builders (strings: JSON.stringify itself overflows at a few thousand levels) ----
    const obj = (members: Members) => `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
    /** Exactly `depth` nested containers (arrays, objects or both), innermost empty. */
    const deep = (depth: number, style = pick(['array', 'object', 'mixed'] as const)) => {
      const open: string[] = [];
      const close: string[] = [];
      for (let i = 0; i < depth - 1; i++) {
        const array = style === 'array' || (style === 'mixed' && random() < 0.5);
        open.push(array ? '[' : '{"a":');
        close.push(array ? ']' : '}');
      }
      return open.join('') + (style === 'object' ? '{}' : '[]') + close.reverse().join('');
    };
    const manyKeys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')}}`;
    /** A request on `route`: the 2026 route gets the `_meta` envelope unless `params` brings its own `_meta`. */
    const message = (route: RouteName, method: string, params: Members = [], id: string = String(nextId++)) => {
      const withMeta = route === '2026' && !params.some(([k]) => k === '_meta') ? [...params, ['_meta', envelope] as [string, string]] : params;
      return obj([
        ['jsonrpc', '"2.0"'],
        ['id', id],
        ['method', JSON.stringify(method)],
        ['params', obj(withMeta)],
      ]);
    };
    /** The 2026 envelope plus one more member. */
    const envelopeWith = (key: string, json: string) => `${envelope.slice(0, -1)},${JSON.stringify(key)}:${json}}`;

    // ---- transport ----
    const headersFor = (route: RouteName, method?: string, name?: string): Record<string, string> => {
      const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      if (route === '2025 session') return { ...base, 'mcp-protocol-version': '2025-11-25', 'mcp-session-id': legacy.sessionId! };
      if (route === '2025 no session') return { ...base, 'mcp-protocol-version': '2025-11-25' };
      return { ...base, 'mcp-protocol-version': '2026-07-28', ...(method && { 'mcp-method': method }), ...(name && { 'mcp-name': name }) };
    };
    const send = async (body: string | Buffer, headers: Record<string, string>): Promise<Answer> => {
      const response = await fetch(server.url, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : new Uint8Array(body),
        signal: AbortSignal.timeout(20_000),
      });
      const contentType = response.headers.get('content-type') ?? '';
      const answer: Answer = { status: response.status, contentType, messages: [] };
      try {
        if (contentType.includes('text/event-stream')) {
          for await (const m of sseMessages(response)) answer.messages.push(m);
        } else {
          const text = await response.text();
          if (text !== '') {
            if (!contentType.includes('application/json')) answer.malformed = `a ${contentType || 'untyped'} body: ${text.slice(0, 120)}`;
            else {
              const parsed: unknown = JSON.parse(text);
              answer.messages = Array.isArray(parsed) ? parsed : [parsed];
            }
          }
        }
      } catch (error) {
        answer.malformed = `unreadable body: ${String(error)}`;
      }
      return answer;
    };

    // ---- checks: collected, so one run reports every failing shape ----
    const problems: string[] = [];
    let requests = 0;
    const show = (a: Answer) => `${a.status} ${JSON.stringify(a.messages).slice(0, 200)}${a.malformed ? ` (${a.malformed})` : ''}`;
    /** What every answer must be: < 500, and JSON-RPC responses without -32603 when there is a body. */
    const wellFormed = (label: string, a: Answer): boolean => {
      requests++;
      const fail = (why: string) => (problems.push(`${label}: ${why} — got ${show(a)}`), false);
      if (a.status >= 500) return fail('HTTP 5xx');
      if (a.malformed) return fail('body is not JSON-RPC');
      for (const m of a.messages as RpcMessage[]) {
        if (typeof m !== 'object' || m === null || m.jsonrpc !== '2.0') return fail('not a JSON-RPC 2.0 message');
        if (m.method !== undefined) continue; // a server request or notification on an SSE stream
        if ((m.error === undefined) === (m.result === undefined)) return fail('neither a result nor an error');
        if (m.error) {
          if (!Number.isInteger(m.error.code) || typeof m.error.message !== 'string') return fail('malformed error object');
          if (m.error.code === -32603) return fail('-32603 Internal error');
        }
      }
      return true;
    };
    /** A shape `checkBody` documents: HTTP 400, one error with `code` for `id`. */
    const refused = (label: string, a: Answer, code: number, id: number | string | null) => {
      if (!wellFormed(label, a)) return;
      const m = a.messages[0] as RpcMessage | undefined;
      if (a.status !== 400 || a.messages.length !== 1 || m?.error?.code !== code || m.id !== id)
        problems.push(`${label}: expected HTTP 400 with error ${code} for id ${JSON.stringify(id)} — got ${show(a)}`);
    };
    const accepted = (label: string, a: Answer, text: string) => {
      if (!wellFormed(label, a)) return;
      const m = a.messages.at(-1) as RpcMessage | undefined;
      if (a.status !== 200 || m?.result?.content?.[0]?.text !== text) problems.push(`${label}: expected a result with text ${text} — got ${show(a)}`);
    };

    const routes: RouteName[] = ['2025 session', '2025 no session', '2026'];
    const hugeDepth = () => pick([MAX_DEPTH + 1, 200, 3000, 10_000, 100_000]);
    const VALID_METHODS = ['ping', 'tools/list', 'server/discover'] as const;

    /** One request per call; `sweep` = the fixed, worst-case variant (10,000 levels) used once per route. */
    const shapes: Record<string, (route: RouteName, sweep: boolean) => Promise<void>> = {
      'deep whole body': async (route, sweep) => {
        const depth = sweep ? 10_000 : hugeDepth();
        refused(`${route} whole body ${depth} deep`, await send(deep(depth), headersFor(route, 'tools/call', 'echo')), -32600, null);
      },
      'deep params': async (route, sweep) => {
        const depth = sweep ? 10_000 : hugeDepth();
        const id = nextId++;
        const body = message(route, 'tools/list', [['cursor', deep(depth)]], String(id));
        refused(`${route} tools/list params ${depth} deep`, await send(body, headersFor(route, 'tools/list')), -32602, id);
      },
      'deep tools/call arguments': async (route, sweep) => {
        const depth = sweep ? 10_000 : hugeDepth();
        const id = nextId++;
        const args = obj([
          ['text', '"x"'],
          ['extra', deep(depth)],
        ]);
        const params: Members = [['name', '"echo"'], ['arguments', args], ...(route !== '2026' && random() < 0.5 ? ([['task', '{}']] as Members) : [])];
        refused(
          `${route} tools/call arguments ${depth} deep`,
          await send(message(route, 'tools/call', params, String(id)), headersFor(route, 'tools/call', 'echo')),
          -32602,
          id,
        );
      },
      'deep tasks/update content': async (route, sweep) => {
        const depth = sweep ? 10_000 : hugeDepth();
        const id = nextId++;
        const answer = obj([
          ['action', '"accept"'],
          ['content', obj([['reply', deep(depth)]])],
        ]);
        const params: Members = [
          ['taskId', JSON.stringify(waiting)],
          ['inputResponses', obj([[inputKey, answer]])],
        ];
        refused(
          `${route} tasks/update inputResponses ${depth} deep`,
          await send(message(route, 'tasks/update', params, String(id)), headersFor(route, 'tasks/update', waiting)),
          -32602,
          id,
        );
      },
      'deep _meta': async (route, sweep) => {
        for (const method of sweep ? (['tasks/get', 'server/discover'] as const) : [pick(['tasks/get', 'server/discover'] as const)]) {
          const depth = sweep ? 10_000 : hugeDepth();
          const id = nextId++;
          const meta = route === '2026' ? envelopeWith('x', deep(depth)) : obj([['x', deep(depth)]]);
          const params: Members = [...(method === 'tasks/get' ? ([['taskId', JSON.stringify(waiting)]] as Members) : []), ['_meta', meta]];
          const name = method === 'tasks/get' ? waiting : undefined;
          refused(
            `${route} ${method} _meta ${depth} deep`,
            await send(message(route, method, params, String(id)), headersFor(route, method, name)),
            -32602,
            id,
          );
        }
      },
      'deep id': async (route, sweep) => {
        const depth = sweep ? 10_000 : hugeDepth();
        refused(`${route} id ${depth} deep`, await send(message(route, 'ping', [], deep(depth)), headersFor(route, 'ping')), -32600, null);
      },
      'depth boundary': async (route) => {
        // message (1) > params (2) > arguments (3) > extra: 61 more levels reach the limit exactly.
        const at = (extra: number) =>
          message(route, 'tools/call', [
            ['name', '"plain"'],
            ['arguments', obj([['extra', deep(extra)]])],
          ]);
        const over = nextId;
        refused(`${route} tools/call ${MAX_DEPTH + 1} deep`, await send(at(MAX_DEPTH - 2), headersFor(route, 'tools/call', 'plain')), -32602, over);
        if (route === '2025 no session') return; // only initialize is served there
        accepted(`${route} tools/call exactly ${MAX_DEPTH} deep`, await send(at(MAX_DEPTH - 3), headersFor(route, 'tools/call', 'plain')), 'plain');
      },
      'many keys': async (route) => {
        const where = pick(['arguments', '_meta', 'top'] as const);
        const keys = manyKeys(MAX_KEYS + between(1, 5000));
        const id = nextId++;
        let body: string;
        if (where === 'top') body = `${keys.slice(0, -1)},${message(route, 'ping', [], String(id)).slice(1)}`;
        else if (where === 'arguments')
          body = message(
            route,
            'tools/call',
            [
              ['name', '"plain"'],
              ['arguments', keys],
            ],
            String(id),
          );
        else body = message(route, 'ping', [['_meta', route === '2026' ? `${envelope.slice(0, -1)},${keys.slice(1)}` : keys]], String(id));
        const method = where === 'arguments' ? 'tools/call' : 'ping';
        refused(
          `${route} ${where} with > ${MAX_KEYS} keys`,
          await send(body, headersFor(route, method, where === 'arguments' ? 'plain' : undefined)),
          where === 'top' ? -32600 : -32602,
          id,
        );
      },
      'huge strings': async (route) => {
        const huge = 'x'.repeat(between(100_000, 3_000_000));
        const variant = pick(['text', 'method', 'id', 'key', 'over-limit'] as const);
        const name = variant === 'text' ? pick(['echo', 'plain']) : 'plain';
        let body: string;
        // A task tool (echo) is called as a task or as an ordinary call: `maxArgumentBytes` applies on
        // both paths, so neither stores a task.
        if (variant === 'text')
          body = message(route, 'tools/call', [
            ['name', JSON.stringify(name)],
            ['arguments', obj([['text', JSON.stringify(huge)]])],
            ...(name === 'echo' && route !== '2026' && random() < 0.5 ? ([['task', '{}']] as Members) : []),
          ]);
        else if (variant === 'method') body = message(route, huge, []);
        else if (variant === 'id') body = message(route, 'ping', [], JSON.stringify(huge));
        else if (variant === 'key')
          body = message(route, 'tools/call', [
            ['name', '"plain"'],
            ['arguments', obj([[huge, '1']])],
          ]);
        else
          body = message(route, 'tools/call', [
            ['name', '"plain"'],
            ['arguments', obj([['text', JSON.stringify('x'.repeat(4 * 1024 * 1024))]])],
          ]);
        const answer = await send(body, headersFor(route, variant === 'method' ? 'ping' : 'tools/call', name));
        if (wellFormed(`${route} huge ${variant} (${body.length} bytes)`, answer) && variant === 'over-limit' && answer.status !== 413)
          problems.push(`${route} body over 4 MiB: expected 413 — got ${show(answer)}`);
      },
      'invalid UTF-8': async (route) => {
        const bad = Buffer.from(pick([[0xff], [0xfe, 0xff], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80, 0x80, 0x00]]));
        const template = message(route, 'tools/call', [
          ['name', '"plain"'],
          ['arguments', obj([['text', '"@@"']])],
        ]);
        const at = pick([template.indexOf('@@'), template.indexOf('plain'), template.indexOf('"jsonrpc"'), between(0, template.length)]);
        const body = Buffer.concat([Buffer.from(template.slice(0, at)), bad, Buffer.from(template.slice(at))]);
        wellFormed(`${route} invalid UTF-8 ${bad.toString('hex')} at ${at}`, await send(body, headersFor(route, 'tools/call', 'plain')));
      },
      batches: async (route) => {
        const entry = () =>
          pick([
            () => message(route, pick(VALID_METHODS), []),
            () => `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
            () => `{"jsonrpc":"2.0","id":"srv-${between(0, 9)}","result":{}}`,
            () => pick(['1', 'null', '"s"', '[]', '{}', '{"jsonrpc":"2.0","id":1,"method":5}']),
          ])();
        const kind = pick(['empty', 'large', 'mixed', 'deep entry'] as const);
        const label = `${route} batch ${kind}`;
        if (kind === 'empty') return refused(label, await send('[]', headersFor(route)), -32600, null);
        if (kind === 'large') {
          const n = between(MAX_BATCH + 1, 400);
          return refused(
            `${label} of ${n}`,
            await send(`[${Array.from({ length: n }, () => message(route, 'ping', [])).join(',')}]`, headersFor(route)),
            -32600,
            null,
          );
        }
        if (kind === 'deep entry')
          return refused(
            label,
            await send(`[${message(route, 'ping', [])},${message(route, 'ping', [['x', deep(hugeDepth())]])}]`, headersFor(route)),
            -32600,
            null,
          );
        const entries = Array.from({ length: between(1, MAX_BATCH) }, entry);
        wellFormed(`${label} of ${entries.length}`, await send(`[${entries.join(',')}]`, headersFor(route)));
      },
      'wrong types': async (route) => {
        const bad = ['42', 'null', 'true', '{}', '[]', '[1,2]', '"str"', '1.5', '-1', '{"nested":{"deep":[1,2,3]}}'];
        const field = pick(['jsonrpc', 'id', 'method', 'params', 'name', 'arguments', 'taskId'] as const);
        const members: Record<string, string> = { jsonrpc: '"2.0"', id: String(nextId++), method: '"tools/call"' };
        const params: Record<string, string> = { name: '"plain"', arguments: '{}' };
        if (field in members) members[field] = pick(bad);
        if (field === 'taskId') {
          members.method = '"tasks/get"';
          delete params.name;
          delete params.arguments;
          params.taskId = pick(bad);
        } else if (field in params) params[field] = pick(bad);
        const paramsJson = field === 'params' ? pick(bad) : obj([...Object.entries(params), ...(route === '2026' ? ([['_meta', envelope]] as Members) : [])]);
        const body = obj([...Object.entries(members), ['params', paramsJson]]);
        wellFormed(
          `${route} wrong ${field}: ${body.slice(0, 120)}`,
          await send(body, headersFor(route, field === 'taskId' ? 'tasks/get' : 'tools/call', 'plain')),
        );
      },
      'truncated JSON': async (route) => {
        const full = message(route, pick(['tools/call', 'tasks/get']), [
          ['name', '"plain"'],
          ['arguments', obj([['text', '"x"']])],
          ['taskId', JSON.stringify(waiting)],
        ]);
        const cut = full.slice(0, between(1, full.length - 1));
        const answer = await send(cut, headersFor(route, 'tools/call', 'plain'));
        if (wellFormed(`${route} truncated ${cut.slice(-30)}`, answer) && ((answer.messages[0] as RpcMessage)?.error?.code !== -32700 || answer.status !== 400))
          problems.push(`${route} truncated JSON: expected HTTP 400 -32700 — got ${show(answer)}`);
      },
      'non-JSON content type': async (route) => {
        const type = pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json', undefined]);
        const body = pick([message(route, pick(VALID_METHODS), []), 'a=1&b=2', '<xml/>']);
        const headers = headersFor(route, 'ping');
        if (type === undefined) delete headers['content-type'];
        else headers['content-type'] = type;
        const answer = await send(Buffer.from(body), headers); // a Buffer, so fetch adds no content type of its own
        if (wellFormed(`${route} content-type ${type}: ${body.slice(0, 40)}`, answer) && answer.status < 400)
          problems.push(`${route} content-type ${type}: expected a 4xx — got ${show(answer)}`);
      },
      'top-level scalar': async (route) => {
        const body = pick(['1', '-0.5', '"a string"', 'null', 'true', 'false', JSON.stringify('x'.repeat(10_000))]);
        refused(`${route} top-level ${body.slice(0, 20)}`, await send(body, headersFor(route, 'ping')), -32600, null);
      },
    };

    for (const shape of Object.values(shapes)) for (const route of routes) await shape(route, true);
    const rounds = Number(process.env.FUZZ_ROUNDS ?? 150);
    const all = Object.values(shapes);
    for (let i = 0; i < rounds; i++) await pick(all)(pick(routes), false);

    t.diagnostic(`seed ${seed}: ${requests} requests, ${problems.length} problems`);
    assert.deepEqual(problems, [], `${problems.length} of ${requests} answers broke the contract (seed ${seed}):\n${problems.join('\n')}`);
    assert.ok(requests >= rounds, `every round sent a request (seed ${seed})`);

    // The server is still up in both eras, and nothing stored changed.
    assert.equal(
      (await legacy.request('tools/call', { name: 'plain', arguments: {} })).result?.content[0].text,
      'plain',
      `2025 session still served (seed ${seed})`,
    );
    assert.equal((await modern.request('tasks/get', { taskId: waiting })).result?.status, 'input_required', `2026 still served (seed ${seed})`);
    const fresh = new RawMcpClient(server.url);
    await fresh.initialize();
    assert.equal(
      (await fresh.request('tools/call', { name: 'plain', arguments: {} })).result?.content[0].text,
      'plain',
      `new sessions still open (seed ${seed})`,
    );
    assert.deepEqual(await snapshot(), before, `stored tasks are unchanged (seed ${seed})`);
  } finally {
    await server.close();
  }
});
