/**
 * The real AI SDK (`ai`) against streams (docs/api.md §9): a UI message stream, made with
 * `createUIMessageStream` and `JsonToSseTransformStream` as `toUIMessageStreamResponse()` makes
 * it, is piped into `POST /v1/streams/{chatId}`, and `DefaultChatTransport.reconnectToStream`
 * pointed at `GET /v1/streams/{chatId}?if_active=true` resumes it, as `useChat({ resume: true })`
 * does on page load.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createUIMessageStream,
  DefaultChatTransport,
  JsonToSseTransformStream,
  readUIMessageStream,
  type UIMessage,
  type UIMessageChunk,
} from 'ai';
import { uniqueTopic, useServer } from '../helpers/http.js';
import { streamHolds } from '../helpers/stream-producer.js';

const WORDS = ['Streams ', 'outlive ', 'their ', 'connections, ', 'and ', 'resume.'];

function chunks(): UIMessageChunk[] {
  return [
    { type: 'start', messageId: 'reply-1' },
    { type: 'text-start', id: 'text-1' },
    ...WORDS.map((delta): UIMessageChunk => ({ type: 'text-delta', id: 'text-1', delta })),
    { type: 'text-end', id: 'text-1' },
    { type: 'finish' },
  ];
}

/** A gate the producer waits at half-way, so the consumer connects while it generates. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/**
 * The application's side: writes the chunks up to `halfWay`, waits at the gate, writes the
 * rest unless `stopAt` says where it dies; its SSE is streamed into streamhub.
 */
function produce(url: string, id: string, halfWay: Promise<void>, signal?: AbortSignal) {
  const all = chunks();
  const stream = createUIMessageStream({
    async execute({ writer }) {
      for (const [index, chunk] of all.entries()) {
        if (index === 4) await halfWay;
        writer.write(chunk);
      }
    },
  })
    .pipeThrough(new JsonToSseTransformStream())
    .pipeThrough(new TextEncoderStream());
  return fetch(`${url}/v1/streams/${id}`, {
    method: 'POST',
    headers: { 'content-type': 'text/event-stream' },
    body: stream,
    duplex: 'half',
    signal,
  } as RequestInit);
}

async function lastMessage(stream: ReadableStream<UIMessageChunk>): Promise<UIMessage | undefined> {
  let last: UIMessage | undefined;
  for await (const message of readUIMessageStream({ stream, terminateOnError: true })) {
    last = message;
  }
  return last;
}

function transport(url: string): DefaultChatTransport<UIMessage> {
  return new DefaultChatTransport({
    api: `${url}/api/chat`,
    prepareReconnectToStreamRequest: ({ id }) => ({
      api: `${url}/v1/streams/${id}?if_active=true`,
    }),
  });
}

describe('the AI SDK resumes a UI message stream piped into streamhub', () => {
  const server = useServer();

  test('reconnectToStream part-way assembles exactly the produced message; after the end, null', async () => {
    const { url } = server();
    const chatId = uniqueTopic('chat');
    const halfWay = gate();
    const response = produce(url, chatId, halfWay.wait);
    // start, text-start and two deltas are stored before the gate.
    await streamHolds(url, chatId, 4);
    const resumed = await transport(url).reconnectToStream({ chatId });
    assert.ok(resumed !== null, 'an active stream resumes');
    const message = lastMessage(resumed);
    halfWay.open();
    assert.equal((await response).status, 200);
    const expected = await lastMessage(
      new ReadableStream({
        start(controller) {
          for (const chunk of chunks()) controller.enqueue(chunk);
          controller.close();
        },
      }),
    );
    assert.deepEqual(await message, expected);
    const text = (await message)?.parts.find((part) => part.type === 'text');
    assert.equal(text?.text, WORDS.join(''));
    assert.equal(await transport(url).reconnectToStream({ chatId }), null);
  });

  test('a producer that dies mid-stream gives the AI SDK an error, not a hang', async () => {
    const { url } = server();
    const chatId = uniqueTopic('chat');
    const dies = new AbortController();
    const response = produce(url, chatId, new Promise(() => {}), dies.signal);
    response.catch(() => {});
    await streamHolds(url, chatId, 4);
    const resumed = await transport(url).reconnectToStream({ chatId });
    assert.ok(resumed !== null);
    const message = lastMessage(resumed);
    dies.abort();
    await assert.rejects(message, /^Error: producer_lost: /);
  });
});
