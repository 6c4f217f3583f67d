/**
 * One invocation of a serverless function, as a host runs it: a fresh process imports the module
 * (argv[2], default export `{ fetch }`), reads one request from stdin as JSON
 * (`{ method, url, headers, body? }`), calls `fetch` once, and writes the response to stdout as JSON
 * (`{ status, headers, body }`, the body read whole: a buffered response, as AWS Lambda gives by
 * default), then exits without any clean-up — the process is gone, as a frozen or recycled
 * function instance is.
 */
import { text } from 'node:stream/consumers';

const [modulePath] = process.argv.slice(2);
const handler = ((await import(modulePath!)) as { default: { fetch(request: Request): Promise<Response> } }).default;
const input = JSON.parse(await text(process.stdin)) as { method: string; url: string; headers: Record<string, string>; body?: string };
const response = await handler.fetch(
  new Request(input.url, { method: input.method, headers: input.headers, ...(input.body !== undefined && { body: input.body }) }),
);
const output = JSON.stringify({ status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() });
process.stdout.write(output, () => process.exit(0));
