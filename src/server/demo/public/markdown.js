/**
 * The Markdown of chat replies: paragraphs, headings, bullet and numbered lists, fenced code
 * blocks, `code`, **bold** and *italic*. It builds elements and text nodes and never parses HTML,
 * so whatever a reply says is shown as text. It reads any prefix of a reply, so a reply still
 * streaming shows at every step: syntax not yet closed shows as typed until it is.
 *
 * @typedef {{ tag: string, start?: number, children: MarkdownNode[] }} MarkdownElement
 * @typedef {string | MarkdownElement} MarkdownNode
 * @typedef {{ kind: 'paragraph', lines: string[] }
 *   | { kind: 'heading', level: number, text: string }
 *   | { kind: 'code', lines: string[] }
 *   | { kind: 'list', ordered: boolean, start: number, items: string[][] }} Block
 */

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+|$)/;
const ITEM = /^ {0,3}(?:[-*+]|(\d{1,9})[.)])(?:[ \t]+|$)/;
const INLINE_SYNTAX = /[`*_\\]/g;
const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/;
const WORD_CHARACTER = /[\p{L}\p{N}]/u;

/** `text` as DOM nodes for the page. @param {string} text @returns {Node[]} */
export function renderMarkdown(text) {
  return parseMarkdown(text).map(toDom);
}

/** `text` as a tree of the few elements this renderer makes. @param {string} text */
export function parseMarkdown(text) {
  return blocksOf(text.split('\n')).map(blockNode);
}

/** @param {MarkdownNode} node @returns {Node} */
function toDom(node) {
  if (typeof node === 'string') return document.createTextNode(node);
  const element = document.createElement(node.tag);
  if (node.start !== undefined) element.setAttribute('start', String(node.start));
  element.append(...node.children.map(toDom));
  return element;
}

/**
 * @param {string} tag @param {MarkdownNode[]} children @param {number} [start]
 * @returns {MarkdownElement}
 */
function element(tag, children, start) {
  return start === undefined ? { tag, children } : { tag, start, children };
}

/** @param {string[]} lines @returns {Block[]} */
function blocksOf(lines) {
  /** @type {Block[]} */
  const blocks = [];
  /** The paragraph or list the next line may continue. @type {Block | undefined} */
  let open;
  let afterBlank = false;
  for (let i = 0; i < lines.length; i++) {
    const line = /** @type {string} */ (lines[i]);
    const fence = FENCE.exec(line);
    const heading = HEADING.exec(line);
    const item = ITEM.exec(line);
    if (line.trim() === '') {
      // A list goes on after a blank line if another item follows; a paragraph ends.
      if (open?.kind === 'paragraph') open = undefined;
      afterBlank = true;
      continue;
    }
    if (fence) {
      const end = closingFence(lines, i + 1, /** @type {string} */ (fence[1]));
      blocks.push({ kind: 'code', lines: lines.slice(i + 1, end) });
      open = undefined;
      i = end;
    } else if (heading) {
      const text = line.slice(heading[0].length).replace(/[ \t]+#+[ \t]*$/, '');
      blocks.push({ kind: 'heading', level: /** @type {string} */ (heading[1]).length, text });
      open = undefined;
    } else if (item) {
      const ordered = item[1] !== undefined;
      if (open?.kind !== 'list' || open.ordered !== ordered) {
        open = { kind: 'list', ordered, start: Number(item[1] ?? 1), items: [] };
        blocks.push(open);
      }
      open.items.push([line.slice(item[0].length)]);
    } else if (open?.kind === 'list' && (!afterBlank || /^\s/.test(line))) {
      open.items[open.items.length - 1]?.push(line.trim());
    } else if (open?.kind === 'paragraph') {
      open.lines.push(line.trim());
    } else {
      open = { kind: 'paragraph', lines: [line.trim()] };
      blocks.push(open);
    }
    afterBlank = false;
  }
  return blocks;
}

/**
 * The index of the line closing a fence opened with `fence`, or the end: a block still
 * streaming is code up to where it has come.
 * @param {string[]} lines @param {number} from @param {string} fence
 */
function closingFence(lines, from, fence) {
  const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}[ \\t]*$`);
  const index = lines.findIndex((line, i) => i >= from && closing.test(line));
  return index === -1 ? lines.length : index;
}

/** @param {Block} block @returns {MarkdownElement} */
function blockNode(block) {
  switch (block.kind) {
    case 'code':
      return element('pre', [element('code', [block.lines.join('\n')])]);
    case 'heading':
      // The page's own headings are h1 and h2: a reply's start below them.
      return element(`h${Math.min(block.level + 2, 6)}`, inline(block.text));
    case 'list': {
      const items = block.items.map((lines) => element('li', inline(lines.join('\n'))));
      if (!block.ordered) return element('ul', items);
      return element('ol', items, block.start === 1 ? undefined : block.start);
    }
    default:
      return element('p', inline(block.lines.join('\n')));
  }
}

/**
 * Code spans, emphasis and backslash escapes; everything else is text.
 * @param {string} text @returns {MarkdownNode[]}
 */
function inline(text) {
  /** @type {MarkdownNode[]} */
  const nodes = [];
  let plain = '';
  let at = 0;
  while (at < text.length) {
    INLINE_SYNTAX.lastIndex = at;
    const found = INLINE_SYNTAX.exec(text);
    const next = found ? found.index : text.length;
    plain += text.slice(at, next);
    if (next === text.length) break;
    const { node, end } =
      codeSpan(text, next) ?? emphasis(text, next) ?? backslashEscape(text, next);
    if (typeof node === 'string') plain += node;
    else {
      if (plain) nodes.push(plain);
      plain = '';
      nodes.push(node);
    }
    at = end;
  }
  if (plain) nodes.push(plain);
  return nodes;
}

/**
 * What the syntax at `at` makes, and where it ends; unmatched syntax is its own text.
 * @typedef {{ node: MarkdownNode, end: number }} Span
 */

/** @param {string} text @param {number} at @returns {Span | undefined} */
function codeSpan(text, at) {
  if (text[at] !== '`') return undefined;
  const ticks = runAt(text, at);
  const runs = /`+/g;
  runs.lastIndex = at + ticks.length;
  for (let close = runs.exec(text); close; close = runs.exec(text)) {
    if (close[0].length !== ticks.length) continue;
    const code = text.slice(at + ticks.length, close.index).replaceAll('\n', ' ');
    // One space on each side lets a span start or end with a backtick: `` `a` ``.
    const padded = code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim();
    return { node: element('code', [padded ? code.slice(1, -1) : code]), end: runs.lastIndex };
  }
  return { node: ticks, end: at + ticks.length };
}

/** `*em*`, `**strong**`, `***both***`, or the same with `_`. @param {string} text @param {number} at */
function emphasis(text, at) {
  const marker = text[at];
  if (marker !== '*' && marker !== '_') return undefined;
  const delimiter = runAt(text, at);
  const literal = { node: delimiter, end: at + delimiter.length };
  const inner = at + delimiter.length;
  if (delimiter.length > 3 || !/\S/.test(text[inner] ?? '')) return literal;
  // An underscore inside a word (snake_case) is not emphasis.
  if (marker === '_' && WORD_CHARACTER.test(text[at - 1] ?? '')) return literal;
  const runs = marker === '*' ? /\*+/g : /_+/g;
  runs.lastIndex = inner;
  for (let close = runs.exec(text); close; close = runs.exec(text)) {
    const before = text[close.index - 1] ?? '';
    const after = text[runs.lastIndex] ?? '';
    if (close[0].length !== delimiter.length || /\s|\\/.test(before)) continue;
    if (marker === '_' && WORD_CHARACTER.test(after)) continue;
    const children = inline(text.slice(inner, close.index));
    const node =
      delimiter.length === 1
        ? element('em', children)
        : element('strong', delimiter.length === 2 ? children : [element('em', children)]);
    return { node, end: runs.lastIndex };
  }
  return literal;
}

/** A backslash before punctuation makes it plain text. @param {string} text @param {number} at */
function backslashEscape(text, at) {
  const next = text[at + 1] ?? '';
  return ASCII_PUNCTUATION.test(next) ? { node: next, end: at + 2 } : { node: '\\', end: at + 1 };
}

/** The run of the same character starting at `at`. @param {string} text @param {number} at */
function runAt(text, at) {
  let end = at;
  while (text[end] === text[at]) end++;
  return text.slice(at, end);
}
