/** The demo page's Markdown renderer (src/server/demo/public/markdown.js). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mockReply } from '../../src/llm/mock.js';
import { loadParseMarkdown, type MarkdownNode } from '../helpers/markdown.js';

const parseMarkdown = await loadParseMarkdown();

const p = (...children: MarkdownNode[]) => ({ tag: 'p', children });
const li = (...children: MarkdownNode[]) => ({ tag: 'li', children });
const code = (text: string) => ({ tag: 'code', children: [text] });
const pre = (text: string) => ({ tag: 'pre', children: [code(text)] });

function tagsOf(nodes: readonly MarkdownNode[]): Set<string> {
  const tags = new Set<string>();
  for (const node of nodes) {
    if (typeof node === 'string') continue;
    tags.add(node.tag);
    for (const tag of tagsOf(node.children)) tags.add(tag);
  }
  return tags;
}

describe('the demo page Markdown', () => {
  test('paragraphs keep their line breaks; lists, headings and emphasis', () => {
    const text = [
      '# Title',
      'Hello *you*,',
      'on **two** lines.',
      '',
      '- one',
      '- ***both***',
      '  continued',
      '',
      '3. three',
      '',
      '4. four, after a blank line',
      'After the list.',
    ].join('\n');
    assert.deepEqual(parseMarkdown(text), [
      { tag: 'h3', children: ['Title'] },
      p(
        'Hello ',
        { tag: 'em', children: ['you'] },
        ',\non ',
        { tag: 'strong', children: ['two'] },
        ' lines.',
      ),
      {
        tag: 'ul',
        children: [
          li('one'),
          li({ tag: 'strong', children: [{ tag: 'em', children: ['both'] }] }, '\ncontinued'),
        ],
      },
      {
        tag: 'ol',
        start: 3,
        children: [li('three'), li('four, after a blank line\nAfter the list.')],
      },
    ]);
    assert.deepEqual(parseMarkdown('1. first\n2. second'), [
      { tag: 'ol', children: [li('first'), li('second')] },
    ]);
  });

  test('fenced code is text, whether its fence is closed yet or not', () => {
    assert.deepEqual(parseMarkdown('```sh\nnpm start\n  <b>*x*</b>\n```\nafter'), [
      pre('npm start\n  <b>*x*</b>'),
      p('after'),
    ]);
    assert.deepEqual(parseMarkdown('Run:\n\n~~~\nlet a = `1`;'), [p('Run:'), pre('let a = `1`;')]);
  });

  test('code spans hold any characters, backticks too', () => {
    assert.deepEqual(parseMarkdown('`a *b* <i>` and ``x ` y`` and `` `z` ``'), [
      p(code('a *b* <i>'), ' and ', code('x ` y'), ' and ', code('`z`')),
    ]);
  });

  test('unmatched syntax, escapes and underscores inside words stay text', () => {
    for (const text of [
      '**not closed',
      'a ` alone',
      '2 * 3 * 4',
      'snake_case_name',
      '** spaced **',
      '-not a list',
      '#not a heading',
    ]) {
      assert.deepEqual(parseMarkdown(text), [p(text)], text);
    }
    assert.deepEqual(parseMarkdown('\\*not em\\* and \\d'), [p('*not em* and \\d')]);
  });

  test('HTML in a reply is text', () => {
    const html = '<img src=x onerror="alert(1)"> <script>alert(2)</script> &amp;';
    assert.deepEqual(parseMarkdown(html), [p(html)]);
  });

  test('every step of a streaming mock reply renders, and the whole has a list and code', () => {
    for (const question of ['What is streamhub?', 'hi', 'Tell me about `code` and *stars*']) {
      const tokens = mockReply([{ role: 'user', content: question }]);
      for (let count = 1; count <= tokens.length; count++) {
        const tags = tagsOf(parseMarkdown(tokens.slice(0, count).join('')));
        const unexpected = [...tags].filter(
          (tag) => !/^(p|ul|ol|li|pre|code|em|strong)$/.test(tag),
        );
        assert.deepEqual(unexpected, [], `${question}: ${count} tokens`);
      }
      const whole = parseMarkdown(tokens.join(''));
      const list = whole.find((node) => typeof node !== 'string' && /^[uo]l$/.test(node.tag));
      assert.equal(typeof list === 'object' && list.children.length, 3, question);
      assert.ok(tagsOf(whole).has('code'), question);
    }
  });
});
