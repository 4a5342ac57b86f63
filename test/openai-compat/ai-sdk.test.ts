import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import type { RunningServer } from '../../src/server/server.js';
import { useServer } from '../helpers/http.js';
import { DEFAULT_REPLY, upstream } from '../helpers/mock-upstream.js';
import { callId } from '../helpers/upstream-replies.js';
import { useServerBehindUpstream } from '../helpers/upstream-server.js';

/** The Vercel AI SDK's OpenAI-compatible provider pointed at streamhub. */
function aiProvider(server: RunningServer) {
  return createOpenAICompatible({
    name: 'streamhub',
    baseURL: `${server.url}/v1`,
    apiKey: 'the-clients-key',
  });
}

const weatherTools = (calls: { city: string }[]) => ({
  get_weather: tool({
    description: 'The weather in a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      calls.push({ city });
      return { city, sky: 'sunny' };
    },
  }),
  get_time: tool({
    description: 'The time in a zone',
    inputSchema: z.object({ zone: z.string().optional() }),
    execute: async ({ zone }) => ({ zone: zone ?? 'UTC', time: '12:00' }),
  }),
});

describe('the AI SDK’s streamText with tools, through the gateway', { timeout: 60_000 }, () => {
  const env = useServerBehindUpstream({ LLM_MAX_RETRIES: '0' });
  afterEach(() => env.mock.reset());

  test('tool calls streamed in pieces assemble into names, ids and parsed arguments', async () => {
    env.mock.enqueue(
      upstream.toolCalls(
        [
          { name: 'get_weather', arguments: '{"city":"Lyon"}' },
          { name: 'get_time', arguments: '{"zone":"Europe/Paris"}' },
        ],
        { pieceChars: 3 },
      ),
      upstream.ok(),
    );
    const executed: { city: string }[] = [];
    const result = streamText({
      model: aiProvider(env.server).chatModel('gpt-4o'),
      tools: weatherTools(executed),
      stopWhen: stepCountIs(2),
      prompt: 'Weather and time in Lyon?',
    });
    const steps = await result.steps;
    assert.deepEqual(
      steps[0]?.toolCalls.map(({ toolCallId, toolName, input }) => ({
        toolCallId,
        toolName,
        input,
      })),
      [
        { toolCallId: callId(0), toolName: 'get_weather', input: { city: 'Lyon' } },
        { toolCallId: callId(1), toolName: 'get_time', input: { zone: 'Europe/Paris' } },
      ],
    );
    assert.equal(steps[0]?.finishReason, 'tool-calls');
    assert.deepEqual(executed, [{ city: 'Lyon' }]);
    assert.equal(await result.text, DEFAULT_REPLY);

    // The follow-up carries the calls and their results to the upstream as the SDK sent them.
    const followUp = env.mock.completionRequests[1]?.body as {
      messages: { role: string; tool_call_id?: string; content?: unknown }[];
    };
    const toolMessages = followUp.messages.filter((message) => message.role === 'tool');
    assert.deepEqual(
      toolMessages.map((message) => message.tool_call_id),
      [callId(0), callId(1)],
    );
    assert.match(String(toolMessages[0]?.content), /sunny/);
  });
});

describe('the AI SDK with the mock model, no key', { timeout: 60_000 }, () => {
  const server = useServer({ MOCK_TOKENS_PER_SEC: '1000' });

  test('the mock calls the first tool, then answers with what the tool returned', async () => {
    const result = streamText({
      model: aiProvider(server()).chatModel('streamhub-mock'),
      tools: {
        get_time: weatherTools([]).get_time,
        get_weather: weatherTools([]).get_weather,
      },
      stopWhen: stepCountIs(2),
      prompt: 'What time is it?',
    });
    const steps = await result.steps;
    assert.equal(steps.length, 2);
    const [call] = steps[0]?.toolCalls ?? [];
    assert.equal(call?.toolName, 'get_time');
    assert.deepEqual(call?.input, {});
    assert.match(call?.toolCallId ?? '', /^call_/);
    assert.equal(steps[0]?.finishReason, 'tool-calls');
    assert.match(await result.text, /"time":"12:00"/);
    assert.equal(steps[1]?.finishReason, 'stop');
  });
});
