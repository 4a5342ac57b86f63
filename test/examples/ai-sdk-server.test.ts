import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import type { RunningServer } from '../../src/server/server.js';
import { uniqueStreamId, waitForStream } from '../client/harness.js';
import { type ServerProcess, spawnListening } from '../helpers/process.js';
import { startTestServer } from '../helpers/server.js';

const EXAMPLE = fileURLToPath(
  new URL('../../../examples/ai-sdk-server/server.mjs', import.meta.url),
);
const BOUNDED = { timeout: 60_000 };

let streamhub: RunningServer;
let example: ServerProcess;

before(async () => {
  // Slow enough that a reply is still being generated when the browser comes back.
  streamhub = await startTestServer({ MOCK_TOKENS_PER_SEC: '60' });
  example = await spawnExample();
});

function spawnExample(): Promise<ServerProcess> {
  return spawnListening([EXAMPLE], { STREAMHUB_URL: streamhub.url, PORT: '0' });
}
after(async () => {
  example.child.kill();
  await example.exited;
  await streamhub.shutdown();
});

/** The transport of docs/ai-sdk.md's useChat: messages to the app, reconnections to streamhub. */
function transport(app = example): DefaultChatTransport<UIMessage> {
  return new DefaultChatTransport({
    api: `${app.url}/api/chat`,
    prepareReconnectToStreamRequest: ({ id }) => ({
      api: `${streamhub.url}/v1/streams/${encodeURIComponent(id)}?if_active=true`,
    }),
  });
}

function send(
  chatId: string,
  text: string,
  app = example,
): Promise<ReadableStream<UIMessageChunk>> {
  return transport(app).sendMessages({
    chatId,
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: undefined,
    messages: [{ id: 'user-1', role: 'user', parts: [{ type: 'text', text }] }],
  });
}

/** The message the chunks assemble into, as `useChat` would show it once they end. */
async function assemble(
  stream: ReadableStream<UIMessageChunk>,
  onError?: (error: unknown) => void,
): Promise<UIMessage | undefined> {
  let message: UIMessage | undefined;
  for await (const state of readUIMessageStream({ stream, onError })) message = state;
  return message;
}

async function chunkTypes(stream: ReadableStream<UIMessageChunk>): Promise<string[]> {
  const types: string[] = [];
  const reader = stream.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) {
    types.push(read.value.type);
  }
  return types;
}

const textOf = (message: UIMessage | undefined) =>
  (message?.parts ?? []).map((part) => (part.type === 'text' ? part.text : '')).join('');

test('a browser that comes back mid-reply resumes it from streamhub, whole', BOUNDED, async () => {
  const chatId = uniqueStreamId('ai-chat');
  const [direct, leaving] = (await send(chatId, 'tell me about resumable streams')).tee();
  const whole = assemble(direct);
  // The page goes away after a few chunks…
  const reader = leaving.getReader();
  for (let n = 0; n < 4; n++) await reader.read();
  // Not awaited: cancelling one branch of a tee settles only once the other one ends too.
  void reader.cancel();
  await waitForStream(streamhub.url, chatId);
  // …and useChat({ resume: true }) reconnects on load, while the reply is still generated.
  const resumed = await transport().reconnectToStream({ chatId });
  assert.ok(resumed !== null, 'the stream is still active');
  const message = await assemble(resumed);
  assert.ok(textOf(message).length > 0);
  assert.deepEqual(message, await whole);
  // Once it has ended, there is nothing to resume: useChat keeps the message it has.
  assert.equal(await transport().reconnectToStream({ chatId }), null);
});

test('the stop button cancels the stream: readers get an error, not a hang', BOUNDED, async () => {
  const chatId = uniqueStreamId('ai-chat');
  const direct = await send(chatId, 'a long answer, please');
  await waitForStream(streamhub.url, chatId);
  const resumed = await transport().reconnectToStream({ chatId });
  assert.ok(resumed !== null);
  const stop = await fetch(`${example.url}/api/chat/${chatId}/stop`, { method: 'POST' });
  assert.equal(stop.status, 202);
  const errors: unknown[] = [];
  await assemble(resumed, (error) => errors.push(error));
  assert.match(String(errors[0]), /cancelled/);
  const status = await (await fetch(`${streamhub.url}/v1/streams/${chatId}`)).json();
  assert.equal(status.status, 'cancelled');
  // The example stopped generating: the app's own response ends with the AI SDK's abort chunk.
  assert.equal((await chunkTypes(direct)).at(-1), 'abort');
});

test(
  'an app server that dies mid-reply gives the AI SDK an error, not a hang',
  BOUNDED,
  async () => {
    const doomed = await spawnExample();
    try {
      const chatId = uniqueStreamId('ai-chat');
      const direct = await send(chatId, 'a reply cut short', doomed);
      // Past the start, step and text-start chunks, so some text is stored before the kill.
      await waitForStream(streamhub.url, chatId, 8);
      const resumed = await transport(doomed).reconnectToStream({ chatId });
      assert.ok(resumed !== null);
      doomed.child.kill('SIGKILL');
      // The browser's own response died with the server; streamhub's copy ends as producer_lost.
      direct.cancel().catch(() => {});
      const errors: unknown[] = [];
      const message = await assemble(resumed, (error) => errors.push(error));
      assert.match(String(errors[0]), /producer_lost/);
      assert.ok(textOf(message).length > 0, 'the partial reply is kept');
    } finally {
      doomed.child.kill();
      await doomed.exited;
    }
  },
);
