import type { ReplyViewer } from './reply-stream.js';

/**
 * The open reply streams of each session on this process. With takeover on, a new viewer
 * supersedes the older ones, so a second tab or a refreshed page wins over a stale one.
 */
export class ViewerRegistry {
  readonly #viewers = new Map<string, Set<ReplyViewer>>();

  constructor(readonly takeover: boolean) {}

  add(sessionId: string, viewer: ReplyViewer): void {
    let viewers = this.#viewers.get(sessionId);
    if (viewers === undefined) {
      viewers = new Set();
      this.#viewers.set(sessionId, viewers);
    }
    if (this.takeover) {
      for (const older of viewers) older.supersede();
      viewers.clear();
    }
    viewers.add(viewer);
    viewer.onClose(() => this.#remove(sessionId, viewer));
  }

  count(sessionId: string): number {
    return this.#viewers.get(sessionId)?.size ?? 0;
  }

  #remove(sessionId: string, viewer: ReplyViewer): void {
    const viewers = this.#viewers.get(sessionId);
    if (viewers?.delete(viewer) && viewers.size === 0) this.#viewers.delete(sessionId);
  }
}
