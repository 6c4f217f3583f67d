/**
 * A TCP proxy on 127.0.0.1 that a test puts in front of PostgreSQL or Redis to make the store fail
 * the ways networks fail, switchable at any time:
 *
 * - `forward`: bytes flow both ways (new connections are connected to the target).
 * - `refuse`: the target is down. Existing connections are reset (RST to the client, the upstream
 *   socket destroyed); the proxy stops listening, so new connections are refused (`ECONNREFUSED`).
 * - `blackhole`: the target (or the route to it) is silent. New connections are accepted but
 *   nothing is forwarded or answered; existing connections stay open but stop forwarding in both
 *   directions (reads paused on both sides; a close on one side is held back from the other).
 *
 * Back to `forward`, paused connections resume (what was held back is delivered, in order),
 * connections accepted during the black hole are connected to the target, and a close held back
 * is passed on. `close()` destroys everything and stops listening.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'refuse' | 'blackhole';

export interface TcpProxy {
  /** The port the proxy listens on (kept across `refuse`: it listens again on the same port). */
  readonly port: number;
  /** The current mode. */
  readonly mode: ProxyMode;
  /** Connections accepted so far (all modes). */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Switches mode; resolves once the proxy acts in it (listening again after `refuse`, or stopped listening). */
  setMode(mode: ProxyMode): Promise<void>;
  /** `url` (postgres://…, redis://…) with its host and port replaced by the proxy's. */
  url(url: string): string;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream?: Socket;
  /** A side that closed while the proxy black-holed: its peer is closed once forwarding resumes. */
  heldClose?: 'client' | 'upstream';
  done: boolean;
}

/** Starts a proxy to `target` (host and port) in `mode` (default `forward`). */
export async function startTcpProxy(target: { host: string; port: number }, mode: ProxyMode = 'forward'): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let current: ProxyMode = mode;
  let server: Server | undefined;
  let port = 0;
  let accepted = 0;
  let closed = false;

  const finish = (pair: Pair) => {
    if (pair.done) return;
    pair.done = true;
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  /** Moves bytes from `from` to `to` while forwarding; pauses `from` under back-pressure or a black hole. */
  const pump = (pair: Pair, from: Socket, to: () => Socket | undefined, side: 'client' | 'upstream') => {
    from.on('data', (chunk: Buffer) => {
      const peer = to();
      if (!peer) return; // cannot happen: a socket without peer is never resumed
      if (!peer.write(chunk)) from.pause();
    });
    from.on('end', () => {
      if (current === 'forward') to()?.end();
      else pair.heldClose ??= side;
    });
    from.on('close', () => {
      if (pair.done) return;
      if (current === 'blackhole') {
        pair.heldClose ??= side;
        return;
      }
      // Forwarding: the peer gets what is still queued for it, then the close (or is destroyed after 1 s).
      pair.done = true;
      pairs.delete(pair);
      const peer = to();
      if (peer && !peer.destroyed) {
        peer.end();
        setTimeout(() => peer.destroy(), 1000).unref();
      }
    });
    from.on('error', () => undefined); // resets are part of the game; 'close' follows
  };

  const connectUpstream = (pair: Pair) => {
    const upstream = connect({ host: target.host, port: target.port });
    upstream.setNoDelay(true);
    pair.upstream = upstream;
    upstream.on('drain', () => current === 'forward' && pair.client.resume());
    pair.client.on('drain', () => current === 'forward' && upstream.resume());
    pump(pair, pair.client, () => pair.upstream, 'client');
    pump(pair, upstream, () => pair.client, 'upstream');
    pair.client.resume();
  };

  const onConnection = (client: Socket) => {
    accepted++;
    client.setNoDelay(true);
    const pair: Pair = { client, done: false };
    if (current === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    pairs.add(pair);
    if (current === 'forward') connectUpstream(pair);
    else {
      // Black hole: accepted, never read; a client giving up is passed on to nobody.
      client.pause();
      client.on('error', () => undefined);
      client.on('close', () => {
        if (!pair.upstream) {
          pair.done = true;
          pairs.delete(pair);
        }
      });
    }
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer({ pauseOnConnect: true }, onConnection);
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        s.off('error', reject);
        port = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });

  const stopListening = () => {
    const s = server;
    server = undefined;
    if (!s) return Promise.resolve();
    return new Promise<void>((resolve) => {
      s.close(() => resolve());
      // close() waits for the server's connections; they belong to the pairs, not to the listener.
      setImmediate(resolve);
    });
  };

  await listen();
  if (mode === 'refuse') await stopListening();

  const proxy: TcpProxy = {
    get port() {
      return port;
    },
    get mode() {
      return current;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    async setMode(next) {
      if (closed) throw new Error('the proxy is closed');
      const previous = current;
      current = next;
      if (next === 'refuse') {
        await stopListening();
        for (const pair of [...pairs]) {
          pair.done = true;
          pairs.delete(pair);
          if (!pair.client.destroyed) pair.client.resetAndDestroy();
          pair.upstream?.destroy();
        }
        return;
      }
      if (!server) await listen();
      if (next === 'blackhole') {
        for (const pair of pairs) {
          pair.client.pause();
          pair.upstream?.pause();
        }
        return;
      }
      if (previous === 'forward') return;
      for (const pair of [...pairs]) {
        if (pair.heldClose) {
          // What one side sent before it closed is delivered, then the other side learns of the close.
          const from = pair.heldClose === 'client' ? pair.client : pair.upstream;
          const to = pair.heldClose === 'client' ? pair.upstream : pair.client;
          from?.resume();
          if (to && !to.destroyed) to.end(() => finish(pair));
          else finish(pair);
          continue;
        }
        if (!pair.upstream) connectUpstream(pair);
        else {
          pair.client.resume();
          pair.upstream.resume();
        }
      }
    },
    url(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    async close() {
      closed = true;
      await stopListening();
      for (const pair of [...pairs]) finish(pair);
    },
  };
  return proxy;
}
