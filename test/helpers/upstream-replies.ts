/**
 * Replies of the test upstream, each as OpenAI streams it (a sequence of
 * `chat.completion.chunk` bodies) and as it answers it unstreamed (the `choices` of one
 * `chat.completion`): text, tool calls with their arguments split across chunks, parallel
 * calls, refusals, logprobs, a vendor's own fields, several choices.
 */

/** One choice's part of a streamed chunk, in OpenAI's field order. */
export interface ChunkChoice {
  readonly index: number;
  readonly delta: Readonly<Record<string, unknown>>;
  readonly logprobs: unknown;
  readonly finish_reason: string | null;
}

/** One streamed chunk's own part: its choices, and top-level fields OpenAI does not send. */
export interface ScriptChunk {
  readonly choices: readonly ChunkChoice[];
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface ReplyScript {
  readonly chunks: readonly ScriptChunk[];
  /** The `choices` of the same reply unstreamed. */
  readonly choices: readonly unknown[];
  /** Top-level fields of the unstreamed answer that OpenAI does not send. */
  readonly extra?: Readonly<Record<string, unknown>>;
  readonly completionTokens: number;
}

export interface ToolCall {
  readonly name: string;
  /** The arguments' JSON text, streamed in pieces. */
  readonly arguments: string;
}

/** `'a b c'` → `['a', ' b', ' c']`: words with their leading space, as models stream them. */
export function tokenize(text: string): string[] {
  return text.split(/(?= )/);
}

function choice(
  delta: Record<string, unknown>,
  finishReason: string | null = null,
  index = 0,
  logprobs: unknown = null,
): ChunkChoice {
  return { index, delta, logprobs, finish_reason: finishReason };
}

const one = (...choices: ChunkChoice[]): ScriptChunk => ({ choices });

/** Role first, then one chunk per token, then the finish reason in a chunk of its own. */
export function textReply(tokens: readonly string[], finishReason = 'stop'): ReplyScript {
  return {
    chunks: [
      one(choice({ role: 'assistant', content: '', refusal: null })),
      ...tokens.map((content) => one(choice({ content }))),
      one(choice({}, finishReason)),
    ],
    choices: [textChoice(0, tokens.join(''), finishReason)],
    completionTokens: tokens.length,
  };
}

function textChoice(index: number, content: string, finishReason: string) {
  return {
    index,
    message: { role: 'assistant', content, refusal: null },
    logprobs: null,
    finish_reason: finishReason,
  };
}

/** `text` in pieces of `size` characters. */
function pieces(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts;
}

/**
 * Calls made one after the other, as OpenAI streams parallel calls: a call's first delta has
 * its id, type and name with empty arguments, the arguments follow in pieces of `pieceChars`.
 */
export function toolCallReply(calls: readonly ToolCall[], pieceChars = 4): ReplyScript {
  const chunks: ScriptChunk[] = [];
  calls.forEach((call, index) => {
    const opening = {
      index,
      id: callId(index),
      type: 'function',
      function: { name: call.name, arguments: '' },
    };
    const role = index === 0 ? { role: 'assistant', content: null, refusal: null } : {};
    chunks.push(one(choice({ ...role, tool_calls: [opening] })));
    for (const part of pieces(call.arguments, pieceChars)) {
      chunks.push(one(choice({ tool_calls: [{ index, function: { arguments: part } }] })));
    }
  });
  chunks.push(one(choice({}, 'tool_calls')));
  const toolCalls = calls.map((call, index) => ({
    id: callId(index),
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  }));
  return {
    chunks,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: null, tool_calls: toolCalls, refusal: null },
        logprobs: null,
        finish_reason: 'tool_calls',
      },
    ],
    completionTokens: chunks.length,
  };
}

export function callId(index: number): string {
  return `call_mock${index}`;
}

/** The model declines: `refusal` deltas instead of content. */
export function refusalReply(text: string): ReplyScript {
  const tokens = tokenize(text);
  return {
    chunks: [
      one(choice({ role: 'assistant', content: null, refusal: '' })),
      ...tokens.map((refusal) => one(choice({ refusal }))),
      one(choice({}, 'stop')),
    ],
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: null, refusal: text },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    completionTokens: tokens.length,
  };
}

function tokenLogprob(token: string, rank: number) {
  return {
    token,
    logprob: -0.125 * (rank + 1),
    bytes: [...Buffer.from(token)],
    top_logprobs: [{ token, logprob: -0.125 * (rank + 1), bytes: [...Buffer.from(token)] }],
  };
}

/** Text whose every chunk carries the token's logprobs, as `logprobs: true` asks. */
export function logprobsReply(tokens: readonly string[]): ReplyScript {
  const perToken = tokens.map(tokenLogprob);
  return {
    chunks: [
      one(choice({ role: 'assistant', content: '', refusal: null }, null, 0, null)),
      ...tokens.map((content, i) =>
        one(choice({ content }, null, 0, { content: [perToken[i]], refusal: null })),
      ),
      one(choice({}, 'stop')),
    ],
    choices: [
      {
        ...textChoice(0, tokens.join(''), 'stop'),
        logprobs: { content: perToken, refusal: null },
      },
    ],
    completionTokens: tokens.length,
  };
}

/**
 * A reasoning model behind a vendor's server: `reasoning_content` deltas before the text, and
 * top-level fields of the vendor's own on every chunk.
 */
export function vendorReply(reasoning: readonly string[], tokens: readonly string[]): ReplyScript {
  const extra = { provider: 'mock-vendor', x_mock: { region: 'eu', cached: false } };
  const deltas = [
    { role: 'assistant', content: '', reasoning_content: '' },
    ...reasoning.map((reasoning_content) => ({ reasoning_content })),
    ...tokens.map((content) => ({ content })),
  ];
  return {
    chunks: [
      ...deltas.map((delta) => ({ choices: [choice(delta)], extra })),
      { choices: [choice({}, 'stop')], extra },
    ],
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: tokens.join(''),
          reasoning_content: reasoning.join(''),
        },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    extra,
    completionTokens: reasoning.length + tokens.length,
  };
}

/** `n` choices at once (`n > 1`): their chunks interleave, each finishes in its own chunk. */
export function choicesReply(replies: readonly string[]): ReplyScript {
  const tokenLists = replies.map(tokenize);
  const longest = Math.max(...tokenLists.map((tokens) => tokens.length));
  const chunks: ScriptChunk[] = [];
  tokenLists.forEach((_, index) => {
    chunks.push(one(choice({ role: 'assistant', content: '', refusal: null }, null, index)));
  });
  for (let i = 0; i < longest; i++) {
    tokenLists.forEach((tokens, index) => {
      const content = tokens[i];
      if (content !== undefined) chunks.push(one(choice({ content }, null, index)));
    });
  }
  tokenLists.forEach((_, index) => {
    chunks.push(one(choice({}, 'stop', index)));
  });
  return {
    chunks,
    choices: replies.map((text, index) => textChoice(index, text, 'stop')),
    completionTokens: tokenLists.reduce((sum, tokens) => sum + tokens.length, 0),
  };
}

/**
 * JSON as Python's `json.dumps` writes it (`", "` and `": "` separators, non-ASCII escaped),
 * which many OpenAI-compatible servers send: a relay that re-serialized chunks would change
 * these bytes.
 */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined);
    return `{${fields.map(([key, field]) => `${asciiJson(key)}: ${pythonJson(field)}`).join(', ')}}`;
  }
  return typeof value === 'string' ? asciiJson(value) : JSON.stringify(value);
}

function asciiJson(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
