import type { LlmProvider, ModelEntry } from '../llm/provider.js';

/** How long the upstream's list is reused; models come and go on a scale of days. */
const LIST_TTL_MS = 60_000;
/** How long the fallback is reused after the upstream failed to list: not every request
 *  should wait for an upstream that is down. */
const FALLBACK_TTL_MS = 5_000;
/** The longest wait for the upstream's list before answering with the fallback. */
const LIST_TIMEOUT_MS = 5_000;

export interface ModelList {
  readonly object: 'list';
  readonly data: readonly ModelEntry[];
}

/**
 * `GET /v1/models` (docs/api.md §5.1): the provider's models as it lists them, kept for a short
 * while, with one request to the upstream at a time however many clients ask; the default
 * model alone when the provider has no list or fails to give it.
 */
export class ModelCatalog {
  #cached: { readonly list: Promise<ModelList>; readonly expires: number } | undefined;

  constructor(
    readonly provider: LlmProvider,
    readonly now: () => number = () => performance.now(),
  ) {}

  list(): Promise<ModelList> {
    const cached = this.#cached;
    if (cached !== undefined && this.now() < cached.expires) return cached.list;
    // Until the upstream answers, every caller shares this one request.
    const list = this.#fetch();
    this.#cached = { list, expires: Number.POSITIVE_INFINITY };
    return list;
  }

  async #fetch(): Promise<ModelList> {
    let data: readonly ModelEntry[] = [];
    try {
      data = await this.provider.listModels(AbortSignal.timeout(LIST_TIMEOUT_MS));
    } catch {
      // The fallback below; the model list is a convenience, never worth an error.
    }
    const listed = data.length > 0;
    const list = { object: 'list' as const, data: listed ? data : [this.#fallback()] };
    this.#cached = {
      list: Promise.resolve(list),
      expires: this.now() + (listed ? LIST_TTL_MS : FALLBACK_TTL_MS),
    };
    return list;
  }

  #fallback(): ModelEntry {
    const created = Math.floor(Date.now() / 1000);
    return { id: this.provider.defaultModel, object: 'model', created, owned_by: 'streamhub' };
  }
}
