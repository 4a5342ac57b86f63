import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** `results` is the main block; other names (e.g. `gateway`) are blocks written separately. */
const markers = (name: string) => ({
  begin: `<!-- bench:${name}:begin -->`,
  end: `<!-- bench:${name}:end -->`,
});

/**
 * Replaces the text between the markers of block `name`, keeping the hand-written rest of the
 * document and every other block, so a run that measured only one block's scenarios leaves
 * the others' numbers alone.
 */
export function writeBetweenMarkers(file: string, content: string, name = 'results'): void {
  const { begin, end: endMarker } = markers(name);
  const block = `${begin}\n${content.trim()}\n${endMarker}`;
  const doc = existsSync(file)
    ? readFileSync(file, 'utf8')
    : `# Benchmarks\n\n${begin}\n${endMarker}\n`;
  const start = doc.indexOf(begin);
  const end = doc.indexOf(endMarker);
  const next =
    start === -1 || end < start
      ? `${doc.trimEnd()}\n\n${block}\n`
      : doc.slice(0, start) + block + doc.slice(end + endMarker.length);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, next);
}
