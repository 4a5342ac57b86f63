/** Why a connection was refused; `undefined` from `acquire` means it was admitted. */
export type SlotRefusal = 'per_client' | 'total';

/**
 * Open streaming connections (SSE, WebSocket, chat streams) per client and in total, against
 * their caps (0 = no cap). A slot is taken before a stream opens and given back when it closes,
 * so concurrent opens cannot overshoot a cap, as counting opened streams afterwards would.
 */
export class ConnectionSlots {
  readonly #perClient = new Map<string, number>();
  #total = 0;

  constructor(
    readonly maxTotal: number,
    readonly maxPerClient: number,
  ) {}

  /** Takes a slot for `key`, or says which cap refuses it. */
  acquire(key: string): SlotRefusal | undefined {
    if (this.maxTotal > 0 && this.#total >= this.maxTotal) return 'total';
    const held = this.#perClient.get(key) ?? 0;
    if (this.maxPerClient > 0 && held >= this.maxPerClient) return 'per_client';
    this.#perClient.set(key, held + 1);
    this.#total++;
    return undefined;
  }

  release(key: string): void {
    const held = this.#perClient.get(key);
    if (held === undefined) return;
    if (held > 1) this.#perClient.set(key, held - 1);
    else this.#perClient.delete(key);
    this.#total--;
  }

  get total(): number {
    return this.#total;
  }

  /** Clients holding at least one slot. */
  get clients(): number {
    return this.#perClient.size;
  }

  /** Slots of the client holding the most (a scan: meant for scrapes, not for every request). */
  busiestClient(): number {
    let most = 0;
    for (const held of this.#perClient.values()) most = Math.max(most, held);
    return most;
  }
}
