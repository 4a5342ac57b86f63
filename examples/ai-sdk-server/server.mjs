// The server half of docs/ai-sdk.md: an AI SDK chat endpoint whose replies streamhub makes
// resumable. Run a streamhub server, then `node examples/ai-sdk-server/server.mjs`.
//
//   STREAMHUB_URL   the streamhub server (default http://127.0.0.1:8080)
//   MODEL_BASE_URL  an OpenAI-compatible API (default: streamhub's own front door, whose
//                   built-in mock model needs no key); MODEL_API_KEY, MODEL as it needs
//   PORT            where this server listens (default 3000; 0 picks a free port)
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { convertToModelMessages, streamText } from 'ai';
import { produce } from 'streamhub/client';

const STREAMHUB_URL = process.env.STREAMHUB_URL ?? 'http://127.0.0.1:8080';
const model = createOpenAICompatible({
  name: 'model',
  baseURL: process.env.MODEL_BASE_URL ?? `${STREAMHUB_URL}/v1`,
  apiKey: process.env.MODEL_API_KEY,
}).chatModel(process.env.MODEL ?? 'mock');

/** POST /api/chat, what useChat sends: `{ id, messages }`. */
async function chat(request, response) {
  const { id, messages } = JSON.parse(await textOf(request));
  const generation = new AbortController();
  const result = streamText({
    model,
    messages: await convertToModelMessages(messages),
    abortSignal: generation.signal,
  });
  const reply = result.toUIMessageStreamResponse({
    originalMessages: messages,
    // A copy of the SSE stream goes to streamhub, stored event by event as it is generated.
    // When the upload fails (the stop button cancelled the stream, or streamhub is gone), the
    // generation stops too.
    consumeSseStream: ({ stream }) => {
      produce(STREAMHUB_URL, id, stream, { type: 'sse' }).catch(() => generation.abort());
    },
  });
  await send(reply, response);
}

/** POST /api/chat/{id}/stop: streamhub ends the stream, and so the producer's upload. */
async function stop(id, response) {
  const answer = await fetch(`${STREAMHUB_URL}/v1/streams/${encodeURIComponent(id)}/cancel`, {
    method: 'POST',
  });
  await send(answer, response);
}

/**
 * A fetch Response through a node:http one. A browser that goes away stops only its own copy:
 * the generation goes on into streamhub, where the browser will resume it.
 */
async function send(reply, response) {
  response.writeHead(reply.status, Object.fromEntries(reply.headers));
  if (reply.body === null) return void response.end();
  await pipeline(Readable.fromWeb(reply.body), response).catch(() => {});
}

async function textOf(request) {
  let text = '';
  for await (const chunk of request.setEncoding('utf8')) text += chunk;
  return text;
}

function route(request, response) {
  if (request.method !== 'POST') return undefined;
  if (request.url === '/api/chat') return chat(request, response);
  const stopPath = request.url?.match(/^\/api\/chat\/([^/]+)\/stop$/);
  return stopPath ? stop(decodeURIComponent(stopPath[1]), response) : undefined;
}

const server = http.createServer((request, response) => {
  const handled = route(request, response);
  if (handled === undefined) return void response.writeHead(404).end();
  handled.catch((error) => {
    console.error(error);
    if (!response.headersSent) response.writeHead(500);
    response.end();
  });
});
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening at http://127.0.0.1:${server.address().port}`);
});
