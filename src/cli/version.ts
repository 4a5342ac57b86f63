import { readFileSync } from 'node:fs';

/**
 * The installed package's version, from its package.json at run time: compiled, this file is
 * `dist/src/cli/version.js`, three levels below it (a JSON import would drag package.json into
 * the build's output).
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
