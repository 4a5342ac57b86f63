/** The Redis keys and channel of one topic. */
export interface TopicKeys {
  /** Stream of the retained events; entry id `<seq>-0`. */
  readonly log: string;
  /** Hash `{epoch, seq}`: the current epoch and its last sequence number (and `ended`, `kept`). */
  readonly meta: string;
  /** Prefix of the idempotency keys: `<idem><key>`. */
  readonly idem: string;
  /** Pub/Sub channel carrying the topic's live events. */
  readonly channel: string;
}

/**
 * The topic is wrapped in a hash tag so that all keys of a topic share one cluster slot, which
 * a Lua script touching them together requires. Braces inside the name would move the tag, so
 * such names are refused rather than silently spread over slots.
 */
export function topicKeys(prefix: string, topic: string): TopicKeys {
  if (topic.length === 0 || topic.includes('{') || topic.includes('}')) {
    throw new TypeError(`topic name not usable as a Redis hash tag: ${JSON.stringify(topic)}`);
  }
  const base = `${prefix}:{${topic}}`;
  return {
    log: `${base}:log`,
    meta: `${base}:meta`,
    idem: `${base}:idem:`,
    channel: `${prefix}:live:{${topic}}`,
  };
}
