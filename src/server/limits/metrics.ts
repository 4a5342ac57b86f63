import { Counter, Gauge, type Registry } from 'prom-client';
import type { ConnectionSlots } from './connection-slots.js';

/** Every limit that can refuse something, as the `limit` label of the refusal counter. */
export type LimitName =
  | 'publish_rate'
  | 'chat_rate'
  | 'connect_rate'
  | 'connections_per_client'
  | 'connections_total'
  | 'subscriptions_per_socket'
  | 'header_size';

/** The limits' Prometheus metrics, in the server's registry. */
export class LimitMetrics {
  readonly refusals: Counter<'limit'>;

  constructor(registry: Registry, slots: ConnectionSlots, configured: Record<LimitName, number>) {
    this.refusals = new Counter({
      name: 'streamhub_limit_refusals_total',
      help: 'Requests, connections and frames refused by a limit (429, 503, 431 or error frame)',
      labelNames: ['limit'] as const,
      registers: [registry],
    });
    // Every label shows from the start, at 0, so a rate() over it needs no first refusal.
    for (const limit of Object.keys(configured)) this.refusals.inc({ limit }, 0);
    new Gauge({
      name: 'streamhub_limit_configured',
      help: 'Configured value of each limit (0 = off); rates are per RATE_LIMIT_WINDOW_MS',
      labelNames: ['limit'] as const,
      registers: [registry],
      collect() {
        for (const [limit, value] of Object.entries(configured)) this.set({ limit }, value);
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    gauge(
      'streamhub_limit_connections',
      'Streaming connections counted against MAX_CONNECTIONS',
      () => slots.total,
    );
    gauge(
      'streamhub_limit_connected_clients',
      'Clients (JWT subject or IP) with at least one streaming connection',
      () => slots.clients,
    );
    gauge(
      'streamhub_limit_busiest_client_connections',
      'Streaming connections of the client holding the most, against MAX_CONNECTIONS_PER_CLIENT',
      () => slots.busiestClient(),
    );
  }

  refused(limit: LimitName): void {
    this.refusals.inc({ limit });
  }
}
