import { connectTaskClient, type ConnectOptions, type TaskClient } from './connect.js';
import type { ProtocolVersion } from '../core/protocol-version.js';

/**
 * One MCP endpoint the client talks to, connected lazily and reconnected after transport failures.
 * Several followers share it. The first successful connection fixes the protocol version: later reconnects pin
 * it (a task created over 2025-11-25 is never followed over 2026-07-28 or the other way round).
 */
export class Endpoint {
  private current: Promise<TaskClient> | undefined;
  private protocolVersion: 'auto' | ProtocolVersion;
  private closed = false;

  constructor(
    /** The MCP endpoint URL. */
    readonly url: string,
    private readonly options: ConnectOptions,
  ) {
    this.protocolVersion = options.protocolVersion ?? 'auto';
  }

  /** The connected client; connects on first use or after `reset`. Rejects like `connectTaskClient`. */
  connection(): Promise<TaskClient> {
    if (this.closed) return Promise.reject(new Error(`the connection to ${this.url} is closed`));
    if (!this.current) {
      const attempt = connectTaskClient(this.url, { ...this.options, protocolVersion: this.protocolVersion }).then((tc) => {
        this.protocolVersion = tc.protocolVersion;
        return tc;
      });
      this.current = attempt;
      attempt.catch(() => {
        if (this.current === attempt) this.current = undefined;
      });
    }
    return this.current;
  }

  /** Drops the connection `tc` (after a transport failure) so the next `connection()` reconnects. */
  reset(tc: TaskClient): void {
    const current = this.current;
    if (!current) return;
    void current.then(
      (live) => {
        if (live !== tc || this.current !== current) return;
        this.current = undefined;
        void live.close();
      },
      () => undefined,
    );
  }

  /** Closes the live connection, if any; `connection()` rejects from now on. */
  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    if (current)
      await current.then(
        (tc) => tc.close(),
        () => undefined,
      );
  }
}
