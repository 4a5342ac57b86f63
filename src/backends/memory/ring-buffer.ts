/**
 * A FIFO that grows by doubling up to what it holds, so a topic with three events costs
 * three slots, not `HISTORY_MAX_EVENTS`.
 */
export class RingBuffer<T> {
  #items: (T | undefined)[] = new Array(4);
  #head = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) % this.#items.length] = item;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
    return item;
  }

  at(index: number): T | undefined {
    if (index < 0 || index >= this.#size) return undefined;
    return this.#items[(this.#head + index) % this.#items.length];
  }

  /** Up to `count` items starting at `index`. */
  slice(index: number, count: number): T[] {
    const end = Math.min(this.#size, index + count);
    const out: T[] = [];
    for (let i = Math.max(0, index); i < end; i++) out.push(this.at(i) as T);
    return out;
  }

  clear(): void {
    this.#items = new Array(4);
    this.#head = 0;
    this.#size = 0;
  }

  #grow(): void {
    const grown: (T | undefined)[] = new Array(this.#items.length * 2);
    for (let i = 0; i < this.#size; i++) grown[i] = this.at(i);
    this.#items = grown;
    this.#head = 0;
  }
}
