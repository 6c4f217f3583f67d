/**
 * The JSON-RPC messages of a Server-Sent Events body (Streamable HTTP), in order: each event's
 * `data:` lines joined and parsed as JSON. Events without data (comments, keep-alives) are skipped.
 * Stop early by breaking out of the loop; the stream is then cancelled.
 */
export async function* sseMessages<T = Record<string, unknown>>(response: Response): AsyncGenerator<T> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer
          .slice(0, cut)
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        buffer = buffer.slice(cut + 2);
        if (data) yield JSON.parse(data) as T;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
