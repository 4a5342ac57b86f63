import type { SessionStore } from '../core/session-store.js';
import type { ReplyViewer } from './reply-stream.js';

/** How viewers are numbered: by the store, so that the numbers agree across processes. */
export type ViewerClaims = Pick<SessionStore, 'claimViewer' | 'onViewerClaimed'>;

interface SessionViewers {
  /** Each local viewer with its claim number. */
  readonly viewers: Map<ReplyViewer, number>;
  /** Claims being taken on this process, during which newer claims must be remembered. */
  pending: number;
  newest: number;
}

/**
 * The open reply streams of each session on this process. With takeover on, every new viewer
 * claims a number from the store, which tells every process; viewers with a lower number,
 * here or elsewhere, are superseded, so a second tab or a refreshed page wins over a stale one
 * whichever process each is connected to.
 */
export class ViewerRegistry {
  readonly #sessions = new Map<string, SessionViewers>();

  constructor(
    readonly takeover: boolean,
    readonly claims: ViewerClaims,
  ) {
    if (takeover) claims.onViewerClaimed((id, claim) => this.#claimed(id, claim));
  }

  /** A number for a viewer about to open; 0 when viewers do not take over. */
  async claim(sessionId: string): Promise<number> {
    if (!this.takeover) return 0;
    const session = this.#session(sessionId);
    session.pending++;
    try {
      const claim = await this.claims.claimViewer(sessionId);
      session.newest = Math.max(session.newest, claim);
      session.pending--;
      return claim;
    } catch (error) {
      session.pending--;
      this.#forgetIfUnused(sessionId, session);
      throw error;
    }
  }

  /** Adds a viewer with its claim; one already outnumbered is superseded at once. */
  add(sessionId: string, claim: number, viewer: ReplyViewer): void {
    const session = this.#session(sessionId);
    if (claim < session.newest) {
      this.#forgetIfUnused(sessionId, session);
      viewer.supersede();
      return;
    }
    session.viewers.set(viewer, claim);
    viewer.onClose(() => {
      session.viewers.delete(viewer);
      this.#forgetIfUnused(sessionId, session);
    });
  }

  count(sessionId: string): number {
    return this.#sessions.get(sessionId)?.viewers.size ?? 0;
  }

  /** Sessions with a viewer on this process. */
  watched(): string[] {
    return [...this.#sessions].filter(([, s]) => s.viewers.size > 0).map(([id]) => id);
  }

  #claimed(sessionId: string, claim: number): void {
    const session = this.#sessions.get(sessionId);
    if (session === undefined) return;
    session.newest = Math.max(session.newest, claim);
    for (const [viewer, number] of session.viewers) {
      if (number < claim) viewer.supersede();
    }
  }

  #session(sessionId: string): SessionViewers {
    let session = this.#sessions.get(sessionId);
    if (session === undefined) {
      session = { viewers: new Map(), pending: 0, newest: 0 };
      this.#sessions.set(sessionId, session);
    }
    return session;
  }

  #forgetIfUnused(sessionId: string, session: SessionViewers): void {
    if (session.viewers.size === 0 && session.pending === 0) this.#sessions.delete(sessionId);
  }
}
