import { EventBatch } from '../core/batch.js';
import { CreatorFeed } from '../core/creator-feed.js';
import { StreamhubError } from '../core/errors.js';
import { isLogEnded, isLogRestarted, rethrowUnlessEnded } from '../core/event-log.js';
import { readAll, resumeFinite } from '../core/finite-log.js';
import type { LiveLog, StartFrom } from '../core/hub.js';
import { FiniteLogWriter } from '../core/log-writer.js';
import { isName } from '../core/names.js';
import type { SessionState, SessionStore, StoredMessage } from '../core/session-store.js';
import { describeActiveSpan } from '../core/tracing.js';
import type { EventInput, StoredEvent } from '../core/types.js';
import { chunkTextJson, literalText } from '../llm/chunks.js';
import { continuationBody, NO_REPLY, type PartialReply, Seam } from '../llm/continuation.js';
import {
  Failover,
  type FailoverOptions,
  type LostGeneration,
  withLostRequests,
} from '../llm/failover.js';
import type { GenerationOutcome, GenerationSink } from '../llm/generation.js';
import type { BackgroundGeneration, GenerationRunner } from '../llm/generation-runner.js';
import type { ChatMessage, CompletionBody } from '../llm/provider.js';
import { abortedByShutdown } from '../llm/running.js';
import { endsReply, type ReplyEventType, type ReplyViewer } from './reply-stream.js';
import { ViewerRegistry } from './viewers.js';

export interface ChatRequest {
  readonly sessionId: string;
  readonly content: string;
  readonly model?: string;
  readonly system?: string;
  readonly temperature?: number;
  readonly maxTokens?: number;
}

/** A session as clients see it (docs/api.md §4). */
export interface SessionView {
  readonly session_id: string;
  readonly status: 'idle' | 'generating';
  readonly turn: number;
  readonly system: string | null;
  readonly messages: readonly StoredMessage[];
  readonly created_at: string;
  readonly updated_at: string;
}

export interface SessionServiceOptions {
  readonly takeover: boolean;
  readonly onGeneration?: (outcome: GenerationOutcome) => void;
  readonly onDelta?: () => void;
  /** A failure of streamhub itself (e.g. the backend) while recording a reply. */
  readonly onInternalError?: (error: unknown) => void;
  /** How often sessions watched here are checked for a generator that was lost elsewhere. */
  readonly lostCheckMs?: number;
  /** How long a cancel waits for another process's generator to record its end. */
  readonly cancelWaitMs?: number;
  /** How long a reply's append keeps trying while the backend is unreachable (default 0). */
  readonly appendRetryMs?: number;
  /** Continue a reply whose generator was lost (docs/api.md §13); without it, end it. */
  readonly failover?: FailoverOptions;
}

/** A turn begun: its reply log, and the feed of the client that began it (see `watch`). */
export interface StartedTurn {
  readonly topic: string;
  readonly creator: CreatorFeed | undefined;
}

/** The model options of a turn, stored with it so that a continuation asks the same way. */
interface TurnParams {
  readonly model: string;
  readonly temperature?: number;
  readonly max_tokens?: number;
}

/** One request to the model writing into a turn's reply log. */
interface ReplyRun {
  /** The turn, with the attempt this request is. */
  readonly session: SessionState;
  readonly writer: FiniteLogWriter;
  readonly body: CompletionBody;
  /** What the reply log holds already: nothing, or the partial reply a continuation goes on with. */
  readonly partial: PartialReply;
  /** Trims a repetition of the partial reply (the `instruction` strategy). */
  readonly seam?: Seam;
  /** The client that began the turn, fed each event this run stores. */
  readonly creator?: CreatorFeed;
}

/** Each turn's reply has a log of its own; the name cannot clash with a topic (no `/`). */
export function replyTopic(sessionId: string, turn: number): string {
  return `session/${sessionId}/${turn}`;
}

/**
 * Resumable chat sessions: a reply is generated on the server into the turn's reply log,
 * independently of any connection, and any number of streams (one at a time with takeover)
 * read that log from wherever their client left off.
 */
export class SessionService {
  readonly #viewers: ViewerRegistry;
  readonly #lostCheck: NodeJS.Timeout;
  readonly #failover: Failover;

  constructor(
    readonly store: SessionStore,
    readonly replies: LiveLog,
    /** Shared with the other features that generate, so they share one limit and one drain. */
    readonly runner: GenerationRunner,
    readonly options: SessionServiceOptions,
  ) {
    this.#viewers = new ViewerRegistry(options.takeover, store);
    const retryMs = options.appendRetryMs ?? 0;
    this.#failover = new Failover(runner, replies.log, options.failover, retryMs);
    this.#lostCheck = setInterval(
      () => void this.#recoverLostTurns().catch((error) => options.onInternalError?.(error)),
      options.lostCheckMs ?? 1_000,
    ).unref();
  }

  close(): void {
    clearInterval(this.#lostCheck);
  }

  /** Appends the user message and starts the reply; resolves to the reply log's topic. */
  async chat(request: ChatRequest, owner: string | null): Promise<StartedTurn> {
    checkSessionId(request.sessionId);
    const span = { name: 'chat turn', attributes: { 'streamhub.session.id': request.sessionId } };
    return this.runner.start(() => this.#beginTurn(request, owner), undefined, span);
  }

  /** The latest reply's log topic and where a stream resumes in it. */
  async resumePoint(
    sessionId: string,
    lastEventId: string | undefined,
    owner: string | null,
  ): Promise<{ topic: string; from: StartFrom }> {
    const session = await this.#find(sessionId, owner);
    const topic = replyTopic(session.id, session.turn);
    const from = await resumeFinite(this.replies.log, topic, lastEventId, endsReply);
    if (from === undefined) {
      throw new StreamhubError(
        'not_found',
        'reply_expired',
        'the latest reply is no longer retained',
      );
    }
    return { topic, from };
  }

  /**
   * A number for a stream about to open: with takeover on, it supersedes every older stream
   * of the session on any process. Taken before the stream opens, so a failure is an error.
   */
  claimViewer(sessionId: string): Promise<number> {
    return this.#viewers.claim(sessionId);
  }

  /**
   * Streams a reply log to a viewer until the reply ends: from its writer when `creator` is
   * the feed of the turn the viewer's client began (through the hub from where the feed left
   * off, if the writer stops before the end: another process ends or continues the reply),
   * else through the hub. Fed, the creator's stream costs no subscription: on Redis no
   * `SUBSCRIBE` per reply and no Pub/Sub message per token back to this process.
   */
  watch(
    sessionId: string,
    claim: number,
    topic: string,
    from: StartFrom,
    viewer: ReplyViewer,
    creator?: CreatorFeed,
  ): void {
    this.#viewers.add(sessionId, claim, viewer);
    if (creator === undefined) {
      this.#subscribe(topic, from, viewer);
      return;
    }
    creator.follow(feedOf(topic, viewer), (lastId) => {
      const after: StartFrom = lastId === undefined ? from : { kind: 'after', id: lastId };
      this.#subscribe(topic, after, viewer);
    });
  }

  #subscribe(topic: string, from: StartFrom, viewer: ReplyViewer): void {
    const subscription = this.replies.hub.subscribe(topic, from, viewer.subscriber);
    viewer.onClose(() => subscription.close());
  }

  async cancel(sessionId: string, owner: string | null): Promise<void> {
    const session = await this.#find(sessionId, owner);
    if (!session.generating) {
      throw new StreamhubError('conflict', 'not_generating', 'no reply is being generated');
    }
    await this.#stop(session);
  }

  async view(sessionId: string, owner: string | null): Promise<SessionView> {
    const session = await this.#find(sessionId, owner);
    const partial = session.generating ? (await this.#partialReply(session)).text : '';
    const messages: StoredMessage[] =
      partial === ''
        ? [...session.messages]
        : [...session.messages, { role: 'assistant', content: partial }];
    return {
      session_id: session.id,
      status: session.generating ? 'generating' : 'idle',
      turn: session.turn,
      system: session.system,
      messages,
      created_at: new Date(session.createdAt).toISOString(),
      updated_at: new Date(session.updatedAt).toISOString(),
    };
  }

  /** Deletes the session, cancelling a running reply first. */
  async delete(sessionId: string, owner: string | null): Promise<void> {
    const session = await this.#find(sessionId, owner);
    if (session.generating) await this.#stop(session);
    await this.store.delete(sessionId);
    await this.replies.log.delete(replyTopic(sessionId, session.turn));
  }

  /** Records the user message and opens the turn's reply log with its `start` event. */
  async #beginTurn(
    request: ChatRequest,
    owner: string | null,
  ): Promise<BackgroundGeneration<StartedTurn>> {
    const existing = await this.store.get(request.sessionId);
    if (existing !== undefined) {
      this.#checkOwner(existing, owner);
      if (existing.generatorLost) await this.#recover(existing);
    }
    // Still generating here for a turn the store says is not: one that a failover of the
    // session's Redis master forgot. Its reply log is ended before a new turn may reuse it.
    const key = generationKey(request.sessionId);
    if (!existing?.generating && this.runner.isRunning(key)) await this.runner.cancel(key);
    const model = request.model ?? this.runner.provider.defaultModel;
    const params: TurnParams = {
      model,
      ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
      ...(request.maxTokens === undefined ? {} : { max_tokens: request.maxTokens }),
    };
    const session = await this.store.beginTurn(request.sessionId, {
      content: request.content,
      system: request.system,
      owner,
      request: JSON.stringify(params),
    });
    if (session === undefined) {
      throw new StreamhubError('conflict', 'session_busy', 'a reply is already being generated');
    }
    describeActiveSpan({ 'streamhub.session.turn': session.turn, 'gen_ai.request.model': model });
    const topic = replyTopic(session.id, session.turn);
    // A turn's number is used once, unless a failover forgot the turn that used it first: its
    // reply log, if any, is not continued but started again (its viewers are told to reset).
    await this.replies.log.delete(topic);
    // Fenced from the first attempt on: a continuation fences the log with a higher token.
    const writer = new FiniteLogWriter(this.replies.log, topic, this.options.appendRetryMs ?? 0, 0);
    // A log started again under the writer (a failover that lost events) is the log's to tell:
    // its readers reset.
    const creator = new CreatorFeed(true, true);
    const start = replyEvent('start', { session_id: session.id, turn: session.turn, model });
    storedIn(creator, await writer.append(start), start);
    // Only the latest reply is ever streamed; the earlier one lives on in the messages.
    if (session.turn > 1) await this.replies.log.delete(replyTopic(session.id, session.turn - 1));
    return {
      key: generationKey(session.id),
      value: { topic, creator },
      run: (signal) =>
        this.#generate(
          {
            session,
            writer,
            body: turnBody(params, conversation(session)),
            partial: NO_REPLY,
            creator,
          },
          signal,
        ).finally(() => creator.release(endsReply)),
    };
  }

  /**
   * Runs the provider into the reply log. The turn is ended in the store before the final
   * event is appended, so a client that sees `done` can send its next message at once.
   */
  async #generate(run: ReplyRun, signal: AbortSignal): Promise<void> {
    const { session, writer, seam, creator } = run;
    let reply = run.partial.text;
    // Losing the turn stops the generation too; its end is then recorded by whoever ended it.
    const stop = () => void this.runner.cancel(generationKey(session.id));
    const control = { cancel: stop, lost: stop };
    const release = this.store.holdTurn(session.id, session.turn, control, session.attempt);
    const end = async (type: ReplyEventType, data: unknown, outcome: GenerationOutcome) => {
      release();
      // A log that lost events holds no reply any more: none is kept either.
      const kept = writer.restarted ? '' : reply;
      if (!(await this.store.endTurn(session.id, session.turn, kept, session.attempt))) {
        return this.#endUnheld(session, writer, creator);
      }
      const last = replyEvent(type, data);
      storedIn(
        creator,
        await writer.append(last, { final: true }).catch(rethrowUnlessRestarted),
        last,
      );
      if (writer.restarted) storedIn(creator, await writer.endRestarted(REPLY_LOST), REPLY_LOST);
      this.options.onGeneration?.(writer.restarted ? 'error' : outcome);
    };
    // No async layer of its own per chunk: a log that appends synchronously holds nothing.
    // `json`: the text as a JSON string literal.
    const delta = (
      content: string,
      json = JSON.stringify(content),
    ): Promise<unknown> | undefined => {
      if (content === '') return undefined;
      reply += content;
      this.options.onDelta?.();
      const input = deltaEvent(json);
      const appended = writer.appendNow(input);
      if (typeof appended === 'string') return storedIn(creator, appended, input);
      return creator === undefined ? appended : appended.then((id) => storedIn(creator, id, input));
    };
    const sink: GenerationSink = {
      chunk: (chunk) => {
        // The usage that ends a streamed reply has no choice, so no text to look for.
        if (chunk.usageOnly) return undefined;
        const json = chunkTextJson(chunk.json);
        const content = literalText(json);
        return seam === undefined ? delta(content, json) : delta(seam.push(content));
      },
      finish: async (finishReason, usage) => {
        if (seam !== undefined) await delta(seam.flush());
        const total = withLostRequests(usage, session.attempt, run.partial.chunks);
        await end('done', { finish_reason: finishReason, usage: total }, 'done');
      },
      fail: (error) => end('error', { code: error.code, message: error.message }, 'error'),
      cancelled: async () => {
        if (!abortedByShutdown(signal)) return end('abort', { reason: 'cancelled' }, 'cancelled');
        // Another process continues the reply at once, as after a lost generator (§13).
        if (this.#failover.handsOver) {
          release();
          return this.store.releaseTurn(session.id, session.turn, session.attempt);
        }
        await end('error', { code: 'server_shutdown', message: 'the server shut down' }, 'error');
      },
    };
    try {
      await this.runner.generate({ body: run.body }, sink, signal);
    } finally {
      release();
    }
  }

  /** A turn's generator was lost: continue the reply, here if this process takes it over. */
  #recover(session: SessionState): Promise<void> {
    return this.#failover.recover(this.#lost(session));
  }

  #lost(lost: SessionState): LostGeneration {
    const { id, turn } = lost;
    return {
      turn: lost,
      key: generationKey(id),
      topic: replyTopic(id, turn),
      span: { name: 'chat continuation', attributes: { 'streamhub.session.id': id } },
      takeOver: (maxAttempts) => this.store.takeOverTurn(id, turn, lost.attempt, maxAttempts),
      endLost: () => this.#endLost(lost),
      continueWith: async (attempt, writer, strategy) => {
        describeActiveSpan({ 'streamhub.session.turn': turn });
        const session: SessionState = { ...lost, attempt, generatorLost: false };
        const partial = await this.#partialReply(session);
        if (partial.ended) {
          // The reply ended, but a failover forgot that the turn did: it ends as its log says.
          await this.store.endTurn(id, turn, partial.text, attempt);
          return undefined;
        }
        const params = turnParams(session.request, this.runner.provider.defaultModel);
        const body = continuationBody(turnBody(params, conversation(session)), partial, strategy);
        const seam = strategy === 'instruction' ? new Seam(partial.text) : undefined;
        return (signal) => this.#generate({ session, writer, body, partial, seam }, signal);
      },
    };
  }

  /**
   * Stops a running reply and waits until its end is recorded: here directly, on another
   * process through the store (bounded, as that process may die meanwhile).
   */
  async #stop(session: SessionState): Promise<void> {
    if (session.generatorLost) {
      await this.#endLost(session);
      return;
    }
    if (await this.runner.cancel(generationKey(session.id))) return;
    await this.store.requestCancel(session.id, session.turn);
    const deadline = Date.now() + (this.options.cancelWaitMs ?? 5_000);
    while (Date.now() < deadline) {
      const now = await this.store.get(session.id);
      if (now === undefined || !now.generating || now.turn !== session.turn) return;
      if (now.generatorLost) return void (await this.#endLost(now));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * Ends a reply whose generator was lost: the partial reply is kept, and the reply log ends
   * with `error` `generator_lost`, so no stream waits forever. Any process may find the loss;
   * the store lets exactly one of them record it.
   */
  async #endLost(session: SessionState): Promise<void> {
    const partial = await this.#partialReply(session);
    if (!(await this.store.endLostTurn(session.id, session.turn, partial.text))) return;
    const end = replyEvent('error', {
      code: 'generator_lost',
      message: 'the server generating this reply stopped; send the message again',
    });
    await this.replies.log
      .append(replyTopic(session.id, session.turn), end, { final: true })
      .catch(rethrowUnlessEnded);
    this.options.onGeneration?.('error');
  }

  /**
   * Ends the reply log of a generator whose turn the store no longer holds for it. Usually
   * whoever took the turn ends the log (a continuation, or `#endLost`, whose final event
   * refuses this one); but a failover of the session's Redis master may have forgotten the
   * turn, and then nobody else would, and its viewers would wait forever.
   */
  async #endUnheld(
    session: SessionState,
    writer: FiniteLogWriter,
    creator: CreatorFeed | undefined,
  ): Promise<void> {
    const now = await this.store.get(session.id);
    if (now?.turn === session.turn && now.generating && now.attempt !== session.attempt) return;
    const ending = writer.restarted ? REPLY_LOST : TURN_LOST;
    const appended = writer.restarted
      ? writer.endRestarted(ending)
      : writer.append(ending, { final: true });
    const id = await appended.catch((error: unknown) => {
      if (!isLogEnded(error) && !isLogRestarted(error)) throw error;
      return undefined;
    });
    storedIn(creator, id, ending);
  }

  /**
   * Checks the sessions watched here whose reply is generated elsewhere, and every turn whose
   * lease lapsed, so that a reply nobody watches is finished too.
   */
  async #recoverLostTurns(): Promise<void> {
    for (const sessionId of this.#viewers.watched()) {
      if (this.runner.isRunning(generationKey(sessionId))) continue;
      const session = await this.store.get(sessionId);
      if (session?.generatorLost) await this.#recover(session);
    }
    for (const session of await this.store.lostTurns()) await this.#recover(session);
  }

  /** The reply so far, and whether its log holds its end already. */
  async #partialReply(session: SessionState): Promise<PartialReply & { readonly ended: boolean }> {
    const events = await readAll(this.replies.log, replyTopic(session.id, session.turn));
    const deltas = events.filter((event) => event.event === 'delta');
    const text = deltas.map((event) => (JSON.parse(event.data) as { content: string }).content);
    const last = events[events.length - 1];
    return {
      text: text.join(''),
      chunks: deltas.length,
      ended: last !== undefined && endsReply(last),
    };
  }

  async #find(sessionId: string, owner: string | null): Promise<SessionState> {
    checkSessionId(sessionId);
    let session = await this.store.get(sessionId);
    if (session === undefined) {
      throw new StreamhubError('not_found', 'session_not_found', `no session ${sessionId}`);
    }
    this.#checkOwner(session, owner);
    if (session.generatorLost) {
      await this.#recover(session);
      session = (await this.store.get(sessionId)) ?? session;
    }
    return session;
  }

  /** Another subject's session is reported as missing, not forbidden: its existence is private. */
  #checkOwner(session: SessionState, owner: string | null): void {
    if (session.owner !== null && session.owner !== owner) {
      throw new StreamhubError('not_found', 'session_not_found', `no session ${session.id}`);
    }
  }
}

/** The end of a reply whose log lost events in a failover of its Redis master. */
const REPLY_LOST = replyEvent('error', {
  code: 'reply_lost',
  message: 'the reply was lost in a failover of the backend; send the message again',
});

/** The end of a reply whose turn a failover of the session's Redis master forgot. */
const TURN_LOST = replyEvent('error', {
  code: 'turn_lost',
  message: 'the session lost this turn in a failover of the backend; send the message again',
});

/** A turn's request to the model: the messages, streamed, with the turn's options. */
function turnBody(params: TurnParams, messages: readonly unknown[]): CompletionBody {
  return { ...params, messages, stream: true };
}

/** The options stored with a turn; a turn begun before they were stored has the default model. */
function turnParams(stored: string | null, defaultModel: string): TurnParams {
  return stored === null ? { model: defaultModel } : (JSON.parse(stored) as TurnParams);
}

function conversation(session: SessionState): ChatMessage[] {
  const history = session.messages.map(({ role, content }) => ({ role, content }));
  return session.system === null
    ? history
    : [{ role: 'system', content: session.system }, ...history];
}

function replyEvent(type: ReplyEventType, data: unknown): EventInput {
  return { event: type, data: JSON.stringify(data) };
}

/**
 * A `delta` event, its data built around the text's JSON literal (as the model's chunk had it)
 * rather than serialized. Counted with callgrind (warm server, `node --single-threaded`, 20
 * concurrent chats of 200 tokens at 20 tokens/s): JSON.stringify of `{ content }` took about
 * 2,250 instructions per token, 4 % of the server's; this join about 1,000. Joined into one
 * flat string, not spliced into a template, whose string is a chain of joins that the reply
 * log keeps for the garbage collector to copy (three objects per token instead of one, see
 * `formatId`).
 */
function deltaEvent(json: string): EventInput {
  return { event: 'delta', data: ['{"content":', json, '}'].join('') };
}

/** Hands an event the turn's writer stored (if it did) to the client that began the turn. */
function storedIn(
  creator: CreatorFeed | undefined,
  id: string | undefined,
  input: EventInput,
): undefined {
  if (id !== undefined) creator?.stored(id, input.event, input.data);
  return undefined;
}

/**
 * The client that began a turn, fed by its writer: the events of one upstream read are
 * gathered until the next tick and go out in one write, as the hub's batches do. Counted with
 * callgrind (warm server, `node --single-threaded`, 10 concurrent chats of 100 tokens at 20
 * tokens/s, 3 pairs, same run): 92.6k/90.2k/130.3k instructions per token through the hub,
 * 83.9k/87.9k/105.1k fed. Gateway CPU per token at 500 chats was too noisy to tell apart
 * (2 CPUs shared, load 3-5).
 */
function feedOf(topic: string, viewer: ReplyViewer): (events: readonly StoredEvent[]) => boolean {
  let closed = false;
  viewer.onClose(() => {
    closed = true;
  });
  let pending: StoredEvent[] = [];
  const flush = () => {
    const events = pending;
    pending = [];
    // The epoch is only the hub's business; the viewer writes each event's own id.
    if (!closed) viewer.subscriber.send(new EventBatch(topic, '', events));
  };
  return (events) => {
    if (closed) return false;
    if (pending.length === 0) process.nextTick(flush);
    for (const event of events) pending.push(event);
    return true;
  };
}

function rethrowUnlessRestarted(error: unknown): undefined {
  if (!isLogRestarted(error)) throw error;
  return undefined;
}

function generationKey(sessionId: string): string {
  return `session/${sessionId}`;
}

function checkSessionId(sessionId: string): void {
  if (!isName(sessionId)) {
    throw new StreamhubError(
      'invalid',
      'invalid_session_id',
      'session_id must be 1-128 chars of [A-Za-z0-9._:@-]',
    );
  }
}
