import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MOCK_MODEL, MockProvider } from '../../src/llm/mock.js';
import type { LlmErrorCode } from '../../src/llm/provider.js';
import { loadConfig, type SettingName } from '../../src/server/config.js';
import { createProvider } from '../../src/server/provider.js';
import { DEFAULT_REPLY, MockUpstream, upstream } from '../helpers/mock-upstream.js';
import { chatRequest, collect } from './collect.js';

let mock: MockUpstream;
before(async () => {
  mock = await MockUpstream.start();
});
after(() => mock.close());

const config = (settings: Partial<Record<SettingName, string>>) => loadConfig({}, settings);

describe('createProvider', () => {
  test('mock: the embedded model, under LLM_MODEL when that is set', async () => {
    const plain = createProvider(config({}));
    assert.equal(plain.circuitState, undefined);
    assert.ok(plain instanceof MockProvider);
    assert.equal(plain.defaultModel, MOCK_MODEL);
    const renamed = createProvider(config({ LLM_MODEL: 'house-model' }));
    assert.equal(renamed.defaultModel, 'house-model');
    const listed = await renamed.listModels(new AbortController().signal);
    assert.deepEqual(
      listed.map((model) => model.id),
      ['house-model', MOCK_MODEL],
    );
  });

  test('openai: gpt-4o-mini unless LLM_MODEL says otherwise', () => {
    const openai = createProvider(config({ LLM_PROVIDER: 'openai' }));
    assert.equal(openai.name, 'openai');
    assert.equal(openai.defaultModel, 'gpt-4o-mini');
    assert.equal(openai.circuitState?.(), 'closed');
    const chosen = createProvider(config({ LLM_PROVIDER: 'openai', LLM_MODEL: 'gpt-4.1' }));
    assert.equal(chosen.defaultModel, 'gpt-4.1');
  });

  test('openai: streams from OPENAI_BASE_URL with the key and the retry settings', async () => {
    const retries: LlmErrorCode[] = [];
    const provider = createProvider(
      config({
        LLM_PROVIDER: 'openai',
        OPENAI_BASE_URL: mock.baseURL,
        OPENAI_API_KEY: 'sk-test',
        LLM_MAX_RETRIES: '1',
      }),
      { retry: (code) => retries.push(code) },
    );
    mock.enqueue(upstream.status429('0'));
    const result = await collect(provider.generate(chatRequest().request));
    assert.equal(result.text, DEFAULT_REPLY);
    assert.deepEqual(retries, ['upstream_rate_limited']);
    assert.equal(mock.completionRequests.at(-1)?.headers.authorization, 'Bearer sk-test');
  });
});
