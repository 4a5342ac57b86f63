import { createHash } from 'node:crypto';

/** A message as the mock reads it: its role and its text. */
export interface MockMessage {
  readonly role: string;
  readonly content: string;
}

/**
 * The reply as tokens: its words, each with the whitespace before it, so the deltas add up to
 * the exact text. The reply is a pure function of the conversation, which makes "the rest of a
 * reply after some of its tokens" well defined. 60 to 150 tokens, in simple Markdown.
 */
export function mockReply(messages: readonly MockMessage[]): string[] {
  return composeReply(messages).match(/\s*\S+/g) ?? [];
}

/**
 * The tokens of `tokens` that come after the text `partial`, when they begin with it: the
 * token in which the partial ends is cut there. `undefined` when they do not begin with it.
 */
export function tokensAfter(tokens: readonly string[], partial: string): string[] | undefined {
  let at = 0;
  for (const [i, token] of tokens.entries()) {
    if (at + token.length > partial.length) {
      const cut = partial.length - at;
      if (token.slice(0, cut) !== partial.slice(at)) return undefined;
      return cut === 0 ? tokens.slice(i) : [token.slice(cut), ...tokens.slice(i + 1)];
    }
    if (partial.slice(at, at + token.length) !== token) return undefined;
    at += token.length;
  }
  return at === partial.length ? [] : undefined;
}

type Opening = (quote: string, turn: number) => string;

const OPENINGS: readonly Opening[] = [
  (quote) =>
    `You asked “${quote}” — and I can't really answer: I'm **streamhub-mock**, the model built ` +
    'into streamhub. I make replies up from a hash of the conversation, then stream them one ' +
    '`delta` event at a time.',
  (quote) =>
    `“${quote}” deserves a real model, and I'm not one. I'm \`streamhub-mock\`, streamhub's ` +
    'built-in stand-in: no key, no network, typed at `MOCK_TOKENS_PER_SEC` (50 by default).',
  (quote, turn) =>
    `This is turn ${turn}, about “${quote}” — answered by \`streamhub-mock\`, a deterministic ` +
    'model built into the server, to show off the streaming rather than to be right.',
  (quote) =>
    `On “${quote}”, I only pretend to know things: I'm the *mock* model that ships with ` +
    'streamhub. Still, every word you see is a real `delta` event on the server, with its own id.',
];

const LIST_INTROS: readonly string[] = [
  "While I'm typing, try one of these:",
  'Some things to try before I finish:',
  'Here is what this page can show you:',
];

const THINGS_TO_TRY: readonly string[] = [
  '**Refresh the page** now: the reply picks up right after the last event id it saw, with ' +
    'nothing repeated or missing.',
  '**Open this page in a second tab**: the new tab takes the reply over, and this one offers ' +
    'to take it back.',
  'Press **Stop** (or Escape): the server cancels the reply, and every viewer sees it end with ' +
    '`abort`.',
  'Ask a follow-up: each turn sends the whole conversation to the model, so my answer changes ' +
    'with it.',
  'Subscribe to a topic in the *Topic console*, then publish some JSON to it from another tab.',
  'Keep an eye on the status strip: *Tokens/s* is me typing, *Replies generating* counts this ' +
    'reply.',
  'Follow this session from a terminal: `curl -N` its `/v1/sessions/{id}/stream` URL, with the ' +
    'session id shown above.',
];

const CLOSINGS: readonly string[] = [
  'For real answers, restart the server with an OpenAI-compatible model:\n\n' +
    '```sh\nLLM_PROVIDER=openai OPENAI_API_KEY=sk-... npm start\n```',
  'To make me type slower, which makes refreshing mid-reply easier:\n\n' +
    '```sh\nMOCK_TOKENS_PER_SEC=10 npm start\n```',
  'When you want real answers, set `LLM_PROVIDER=openai` and `OPENAI_API_KEY`, or point ' +
    '`OPENAI_BASE_URL` at any OpenAI-compatible server.',
  'Any OpenAI client works with me too: point its base URL at `/v1` and ask for the model ' +
    '`streamhub-mock`.',
];

/** How many words of the question the reply quotes. */
const QUOTED_WORDS = 8;

function composeReply(messages: readonly MockMessage[]): string {
  const choose = chooser(messages);
  const words = messages[messages.length - 1]?.content.match(/\S+/g) ?? [];
  const quote = words.slice(0, QUOTED_WORDS).join(' ') + (words.length > QUOTED_WORDS ? ' …' : '');
  const turn = messages.filter((message) => message.role === 'user').length;
  const tries = choose.several(THINGS_TO_TRY, 3);
  const numbered = choose.index(2) === 0;
  const list = tries.map((item, i) => `${numbered ? `${i + 1}.` : '-'} ${item}`).join('\n');
  return [
    choose.one(OPENINGS)(quote, turn),
    choose.one(LIST_INTROS),
    list,
    choose.one(CLOSINGS),
  ].join('\n\n');
}

/** What the mock's choices are drawn from: the same conversation, the same digest. */
export function conversationDigest(messages: readonly MockMessage[]): Buffer {
  return createHash('sha256')
    .update(messages.map((m) => `${m.role}:${m.content}`).join('\n'))
    .digest();
}

/** Choices drawn from a digest of the whole conversation: the same conversation, the same ones. */
function chooser(messages: readonly MockMessage[]) {
  const digest = conversationDigest(messages);
  let drawn = 0;
  const index = (count: number) => (digest[drawn++ % digest.length] as number) % count;
  return {
    index,
    one: <T>(options: readonly T[]): T => options[index(options.length)] as T,
    several<T>(options: readonly T[], count: number): T[] {
      const left = [...options];
      return Array.from({ length: count }, () => left.splice(index(left.length), 1)[0] as T);
    },
  };
}
