/** The demo page's Markdown renderer, loaded from the page's own files as the browser loads it. */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PAGE_DIR } from '../../src/server/demo/plugin.js';

export type MarkdownNode = string | { tag: string; start?: number; children: MarkdownNode[] };

/** The page's `parseMarkdown`: plain JavaScript that touches no DOM until it renders. */
export async function loadParseMarkdown(): Promise<(text: string) => MarkdownNode[]> {
  const module = await import(pathToFileURL(join(PAGE_DIR, 'markdown.js')).href);
  return module.parseMarkdown;
}

/** The text a reader sees: what `textContent` gives for the rendered nodes. */
export function visibleText(nodes: readonly MarkdownNode[]): string {
  return nodes
    .map((node) => (typeof node === 'string' ? node : visibleText(node.children)))
    .join('');
}
