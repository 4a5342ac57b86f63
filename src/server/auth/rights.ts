/** What a token may do with a topic (docs/api.md §7). */
export type TopicAction = 'publish' | 'subscribe';

export interface TopicRights {
  allows(action: TopicAction, topic: string): boolean;
}

export const ALL_RIGHTS: TopicRights = { allows: () => true };
export const NO_RIGHTS: TopicRights = { allows: () => false };

/** `*` matches exactly one non-empty segment; `**`, only last, one or more segments. */
const ONE = Symbol('*');
const REST = Symbol('**');
type Segment = string | typeof ONE | typeof REST;

/** A literal segment: a topic name's characters but the separator. */
const LITERAL = /^[A-Za-z0-9_:@-]*$/;
/** A subject substituted for `{sub}` must be one plain segment, or it could widen a pattern. */
const SAFE_SUBJECT = /^[A-Za-z0-9_:@-]{1,128}$/;
/** Longest pattern considered: a topic name is at most 128 characters anyway. */
const MAX_PATTERN_CHARS = 512;

/**
 * A pattern's segments with `{sub}` replaced by the subject, or undefined when the pattern
 * is malformed or names a subject that is not a plain segment: such a pattern matches
 * nothing. Substitution happens per segment after splitting, and the result must be a literal,
 * so a subject like `a.b`, `*` or `**` can never add a segment or a wildcard.
 */
export function compilePattern(pattern: unknown, sub: string | null): Segment[] | undefined {
  if (typeof pattern !== 'string' || pattern === '' || pattern.length > MAX_PATTERN_CHARS) {
    return undefined;
  }
  const parts = pattern.split('.');
  const segments: Segment[] = [];
  for (const [index, part] of parts.entries()) {
    if (part === '**') {
      if (index !== parts.length - 1) return undefined;
      segments.push(REST);
    } else if (part === '*') {
      segments.push(ONE);
    } else {
      const literal = substituteSubject(part, sub);
      if (literal === undefined || !LITERAL.test(literal)) return undefined;
      segments.push(literal);
    }
  }
  return segments;
}

function substituteSubject(part: string, sub: string | null): string | undefined {
  if (!part.includes('{sub}')) return part;
  if (sub === null || !SAFE_SUBJECT.test(sub)) return undefined;
  return part.replaceAll('{sub}', sub);
}

export function matchesPattern(segments: readonly Segment[], topic: string): boolean {
  const parts = topic.split('.');
  for (const [index, segment] of segments.entries()) {
    if (segment === REST) return parts.length > index;
    const part = parts[index];
    if (part === undefined) return false;
    if (segment === ONE ? part === '' : segment !== part) return false;
  }
  return parts.length === segments.length;
}

/** Compiled `publish` and `subscribe` pattern lists of one token. */
class PatternRights implements TopicRights {
  constructor(readonly patterns: Record<TopicAction, readonly Segment[][]>) {}

  allows(action: TopicAction, topic: string): boolean {
    return this.patterns[action].some((segments) => matchesPattern(segments, topic));
  }
}

/**
 * The rights of a token's `streamhub` claim, `{"publish": [patterns], "subscribe": [patterns]}`.
 * Anything malformed grants nothing: a missing claim, a list that is not an array, an entry
 * that is not a valid pattern.
 */
export function rightsFromClaim(claim: unknown, sub: string | null): TopicRights {
  if (typeof claim !== 'object' || claim === null) return NO_RIGHTS;
  const compile = (list: unknown): Segment[][] => {
    if (!Array.isArray(list)) return [];
    const compiled: Segment[][] = [];
    for (const pattern of list) {
      const segments = compilePattern(pattern, sub);
      if (segments !== undefined) compiled.push(segments);
    }
    return compiled;
  };
  const { publish, subscribe } = claim as Record<string, unknown>;
  return new PatternRights({ publish: compile(publish), subscribe: compile(subscribe) });
}
