import type { JsonObject } from '../core/json.js';
import type { InputRequest, TaskRecord } from '../core/task.js';
import type { ProtocolVersion } from './protocol-version.js';

/**
 * How each kind of task question (`InputRequest`) travels on the wire, and which clients may be sent
 * it. One table for both protocol versions: 2025-11-25 sends it as a server request (`elicitation/create`,
 * `sampling/createMessage`, `roots/list`), 2026-07-28 as an `inputRequests` entry of the same
 * `{ method, params }` (2026-07-28 "Multi Round-Trip Requests": `InputRequests` values are
 * `ElicitRequest`, `CreateMessageRequest` or `ListRootsRequest`).
 */

/** A server-to-client request as `inputRequests` carries it (and 2025-11-25 sends it). */
export interface WireInputRequest {
  method: 'elicitation/create' | 'sampling/createMessage' | 'roots/list';
  params: JsonObject;
}

/**
 * The request that asks `question` in protocol version `version` (default 2025-11-25): form elicitation (`mode:
 * "form"`, `message`, `requestedSchema`), URL elicitation (`mode: "url"`, `message`, `url`, plus
 * `elicitationId` in 2025-11-25 only — 2026-07-28 removed it, the client learns the outcome by
 * retrying or polling), sampling (`params` as the handler gave them) or roots (`{}`).
 */
export function wireRequestOf(question: InputRequest, version: ProtocolVersion = '2025-11-25'): WireInputRequest {
  switch (question.kind) {
    case 'elicitation':
      return { method: 'elicitation/create', params: { mode: 'form', message: question.message, requestedSchema: question.requestedSchema } };
    case 'url':
      return {
        method: 'elicitation/create',
        params: { mode: 'url', message: question.message, url: question.url, ...(version === '2025-11-25' && { elicitationId: question.elicitationId }) },
      };
    case 'sampling':
      return { method: 'sampling/createMessage', params: question.params };
    case 'roots':
      return { method: 'roots/list', params: {} };
  }
}

/**
 * Whether a client that declared `capabilities` (its `ClientCapabilities`: 2025-11-25 from
 * `initialize`, 2026-07-28 from the request's `io.modelcontextprotocol/clientCapabilities`) may be
 * sent `question` — servers MUST NOT send requests for capabilities the client did not declare
 * (MRTR "Server Requirements" 7; 2025-11-25 "Elicitation", "Sampling", "Roots"):
 * form elicitation needs `elicitation` (an empty object means form; else `elicitation.form`), URL
 * elicitation `elicitation.url`, sampling `sampling`, roots `roots`.
 */
export function clientCanAnswer(question: InputRequest, capabilities: unknown): boolean {
  const caps = (typeof capabilities === 'object' && capabilities !== null ? capabilities : {}) as {
    elicitation?: { form?: unknown; url?: unknown };
    sampling?: unknown;
    roots?: unknown;
  };
  const declared = (value: unknown) => value !== undefined && value !== null;
  switch (question.kind) {
    case 'elicitation':
      return declared(caps.elicitation) && (declared(caps.elicitation!.form) || !declared(caps.elicitation!.url));
    case 'url':
      return declared(caps.elicitation) && declared(caps.elicitation!.url);
    case 'sampling':
      return declared(caps.sampling);
    case 'roots':
      return declared(caps.roots);
  }
}

/** The client capability a question needs, as a person reads it (`elicitation`, `elicitation (url mode)`, `sampling`, `roots`). */
export function capabilityNeeded(question: InputRequest): string {
  return { elicitation: 'elicitation', url: 'elicitation (url mode)', sampling: 'sampling', roots: 'roots' }[question.kind];
}

/**
 * The outstanding questions of `task` split by whether a client with `capabilities` may be asked
 * them (see `clientCanAnswer`).
 */
export function answerableQuestions(task: TaskRecord, capabilities: unknown): { answerable: [string, InputRequest][]; unanswerable: [string, InputRequest][] } {
  const answerable: [string, InputRequest][] = [];
  const unanswerable: [string, InputRequest][] = [];
  for (const entry of Object.entries(task.inputRequests)) (clientCanAnswer(entry[1], capabilities) ? answerable : unanswerable).push(entry);
  return { answerable, unanswerable };
}

/**
 * The `statusMessage` shown to a client that cannot answer some of the task's questions: what the
 * task waits for, and what kind of client (or the fallback tool `answer_task_input`, when
 * registered) can answer it. E.g. `Waiting for input this client cannot give: "Approve invoice
 * INV-7?" needs a client that declares elicitation (or the answer_task_input tool).`
 */
export function unanswerableMessage(unanswerable: [string, InputRequest][], fallbackTools: boolean): string {
  const needs = [...new Set(unanswerable.map(([, q]) => capabilityNeeded(q)))].join(', ');
  const first = unanswerable[0]![1].message;
  return `Waiting for input this client cannot give: "${first}" needs a client that declares ${needs}${fallbackTools ? ' (or the answer_task_input tool)' : ''}.`;
}
