import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  chunkText,
  chunkTextJson,
  inspectChunk,
  isNotable,
  literalText,
} from '../../src/llm/chunks.js';
import { LlmError } from '../../src/llm/provider.js';
import { choicesReply, pythonJson, textReply, toolCallReply } from '../helpers/upstream-replies.js';

const chunk = (fields: object) => JSON.stringify({ id: 'chatcmpl-1', ...fields });

describe('isNotable', () => {
  test('finds a key with a value, compact or spaced, and not one that is null', () => {
    assert.ok(isNotable('{"finish_reason":"stop"}'));
    assert.ok(isNotable('{"finish_reason" :\n "stop"}'));
    assert.ok(isNotable('{"usage": {"total_tokens": 3}}'));
    assert.ok(isNotable('{"error":{"message":"x"}}'));
    assert.ok(!isNotable('{"finish_reason":null}'));
    assert.ok(!isNotable('{"finish_reason": null, "usage": null, "x": 1}'));
    assert.ok(!isNotable('{"id":"x"}'));
  });

  test('is not fooled by the same words inside a string', () => {
    const text = JSON.stringify({ content: 'say "usage": 1 and "finish_reason":"stop"' });
    assert.ok(!isNotable(text));
    assert.ok(!isNotable(JSON.stringify({ content: 'ends with "error"', other: 1 })));
  });

  test('looks past a null occurrence to a later valued one', () => {
    assert.ok(isNotable('{"a":{"usage":null},"usage":{"total_tokens":1}}'));
  });
});

describe('inspectChunk', () => {
  test('a text chunk has nothing to say', () => {
    const facts = inspectChunk(
      chunk({
        choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }],
        usage: null,
      }),
    );
    assert.deepEqual(facts, { finished: [], usage: undefined, usageOnly: false });
  });

  test('reads the finish reasons of every choice a chunk ends', () => {
    const facts = inspectChunk(
      chunk({
        choices: [
          { index: 0, delta: {}, finish_reason: 'stop' },
          { index: 1, delta: {}, finish_reason: 'length' },
        ],
      }),
    );
    assert.deepEqual(facts.finished, [
      { index: 0, reason: 'stop' },
      { index: 1, reason: 'length' },
    ]);
  });

  test('tells the usage-only chunk from usage riding on a chunk with choices', () => {
    const usage = { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 };
    assert.deepEqual(inspectChunk(chunk({ choices: [], usage })), {
      finished: [],
      usage,
      usageOnly: true,
    });
    const riding = inspectChunk(
      pythonJson({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage }),
    );
    assert.equal(riding.usageOnly, false);
    assert.deepEqual(riding.usage, usage);
  });

  test('throws for an error in the stream and for what is not a JSON object', () => {
    for (const text of [chunk({ error: { message: 'boom' } }), '{"choices": [', 'null', '[1]']) {
      assert.throws(
        () => inspectChunk(text),
        (error: unknown) => error instanceof LlmError && error.code === 'upstream_error',
        text,
      );
    }
  });

  test('over whole replies: only the last chunk of each choice is notable', () => {
    for (const script of [
      textReply(['a', ' b']),
      toolCallReply([{ name: 'f', arguments: '{"finish_reason":"x"}' }]),
      choicesReply(['one two', 'three']),
    ]) {
      const notable = script.chunks.filter(
        (scripted) => inspectChunk(JSON.stringify(scripted)).finished.length > 0,
      );
      assert.equal(notable.length, script.choices.length);
    }
  });
});

describe('chunkText', () => {
  test('is the first choice’s content, or empty', () => {
    assert.equal(chunkText(chunk({ choices: [{ index: 0, delta: { content: 'hi' } }] })), 'hi');
    assert.equal(chunkText(chunk({ choices: [{ index: 0, delta: { role: 'assistant' } }] })), '');
    assert.equal(chunkText(chunk({ choices: [], usage: null })), '');
    assert.equal(chunkText(chunk({ choices: [{ delta: { content: null } }] })), '');
  });

  test('reads OpenAI’s layout without a full parse and agrees with one on every other', () => {
    const texts = ['hi', ' "quoted" \\ \n é 😀', '"choices":[{"index":0,"delta":{"content":"x"}'];
    const layouts = (content: string) => [
      chunk({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] }),
      chunk({
        fake: '"choices":[{"index":0,"delta":{"content":"no"}',
        choices: [{ index: 0, delta: { content } }],
      }),
      chunk({
        nested: { choices: [{ index: 0, delta: { content: 'no' } }] },
        choices: [{ index: 0, delta: { content } }],
      }),
      JSON.stringify({ id: 'x', choices: [{ index: 0, delta: { content } }] }, null, 1),
      chunk({ choices: [{ index: 1, delta: { content } }] }),
    ];
    for (const text of texts) {
      for (const json of layouts(text)) {
        const parsed = JSON.parse(json).choices[0].delta.content;
        assert.equal(chunkText(json), parsed, json);
      }
    }
  });

  test('as JSON, keeps a plain chunk’s literal as it came and serializes any other', () => {
    const plain = '{"id":"x","choices":[{"index":0,"delta":{"content":"caf\\u00e9 \\/"}}]}';
    assert.equal(chunkTextJson(plain), '"caf\\u00e9 \\/"');
    assert.equal(JSON.parse(chunkTextJson(plain)), 'café /');
    const other = chunk({ choices: [{ delta: { content: 'a"b' }, index: 0 }] });
    assert.equal(chunkTextJson(other), JSON.stringify('a"b'));
    assert.equal(chunkTextJson(chunk({ choices: [] })), '""');
  });

  test('reads a literal’s text as JSON.parse does, short or long, escaped or not', () => {
    const texts = ['', 'x', ' tok', 'twelve chars', 'thirteen char', 'a much longer piece of text'];
    for (const text of [...texts, 'caf\u00e9', 'tab\there', 'q"uote', '😀 é']) {
      const literal = JSON.stringify(text);
      assert.equal(literalText(literal), JSON.parse(literal), literal);
    }
    assert.equal(literalText('"\\u0041"'), 'A');
    assert.throws(() => literalText('"a\tb"'), SyntaxError);
  });
});
