import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const BEGIN = '<!-- bench:results:begin -->';
export const END = '<!-- bench:results:end -->';

/** Replaces the text between the markers, keeping the hand-written rest of the document. */
export function writeBetweenMarkers(file: string, content: string): void {
  const block = `${BEGIN}\n${content.trim()}\n${END}`;
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  const next =
    start === -1 || end < start
      ? `${doc.trimEnd()}\n\n${block}\n`
      : doc.slice(0, start) + block + doc.slice(end + END.length);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, next);
}
