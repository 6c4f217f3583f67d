import type { OutboxDelivery } from '../../store/outbox.js';
import { html, type Html } from './html.js';

/** `ms` as a `<time>` (the console's script keeps `data-relative` times current), "due now" when past `now`. */
const at = (ms: number, now: number) => {
  const iso = new Date(ms).toISOString();
  return ms <= now ? 'due now' : html`<time datetime="${iso}" title="${iso}" data-relative>${iso.slice(0, 19).replace('T', ' ')} UTC</time>`;
};

/**
 * A task's webhook deliveries as a table (event, endpoint id, attempts, state, last error, next
 * attempt), or nothing when it has none. `now` in ms since the epoch.
 */
export function deliveriesSection(deliveries: readonly OutboxDelivery[] | undefined, now: number): Html | string {
  if (!deliveries || deliveries.length === 0) return '';
  return html`<h2>Webhooks</h2>
    <table class="deliveries" data-deliveries>
      <thead>
        <tr>
          <th>Event</th>
          <th>Endpoint</th>
          <th>Attempts</th>
          <th>State</th>
          <th>Last error</th>
          <th>Next attempt</th>
        </tr>
      </thead>
      <tbody>
        ${deliveries.map(
          (d) =>
            html`<tr data-delivery="${d.deliveryId}" data-state="${d.state}">
              <td><code>${d.type}</code></td>
              <td>${d.endpointId}</td>
              <td>${d.attempts}</td>
              <td>${d.state === 'pending' && d.claim ? 'sending' : d.state}</td>
              <td>${d.lastError ?? '—'}</td>
              <td>${d.state === 'pending' ? at(d.nextAttemptAt, now) : '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>`;
}
