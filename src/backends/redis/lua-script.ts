import { createHash } from 'node:crypto';
import { Command, Redis } from 'ioredis';
import type { RedisClient } from './connection.js';

/**
 * How an argument travels: text as it is, a number (`tonumber` in Lua), or a flag (`'1'` or
 * `'0'` on the wire, a boolean on both sides).
 */
export type ArgKind = 'string' | 'number' | 'flag';

interface ArgTypes {
  string: string;
  number: number;
  flag: boolean;
}

/** A script's arguments by name, in ARGV order: an object literal keeps the order it is written in. */
export type ArgKinds = Readonly<Record<string, ArgKind>>;

/** Every key and argument of a script, by name; the rest arguments (if any) as a list. */
export type ScriptInput<K extends string, A extends ArgKinds, V extends string = never> = {
  readonly [key in K]: string;
} & { readonly [arg in keyof A]: ArgTypes[A[arg]] } & {
  readonly [rest in V]: readonly (string | number)[];
};

export interface ScriptSpec<K extends string, A extends ArgKinds, V extends string = never> {
  /** The method ioredis defines on a client for the script. */
  readonly command: string;
  /** In KEYS order. */
  readonly keys: readonly K[];
  readonly args: A;
  /**
   * A list of any length sent after `args`: Lua finds it at `ARGV[<name>_at]` to the end
   * (`events` is at `events_at`), read in place rather than copied into a table.
   */
  readonly rest?: V;
  /** Lua functions shared with other scripts; they come after the header and may use its names. */
  readonly helpers?: string;
  /** Reads its keys and arguments only by their Lua names: `metaKey` is `meta_key`. */
  readonly body: string;
}

const LUA_VALUE: Record<ArgKind, (raw: string) => string> = {
  string: (raw) => raw,
  // Arithmetic converts the text once; tonumber() converts it twice (a check, then the value).
  number: (raw) => `(${raw} + 0)`,
  flag: (raw) => `${raw} == '1'`,
};

/**
 * A Lua script whose keys and arguments are named once: the Lua header that gives them names
 * and the positional lists ioredis sends are both derived from the same name lists, so they
 * cannot disagree, and callers pass a named object.
 */
export class LuaScript<K extends string, A extends ArgKinds, R, V extends string = never> {
  readonly #command: string;
  readonly #lua: string;
  readonly #sha: string;
  readonly #keys: readonly K[];
  readonly #args: ReadonlyArray<readonly [name: string, kind: ArgKind]>;
  readonly #rest: V | undefined;

  constructor(spec: ScriptSpec<K, A, V>) {
    this.#command = spec.command;
    this.#keys = spec.keys;
    this.#args = Object.entries(spec.args);
    this.#rest = spec.rest;
    const restNames = spec.rest === undefined ? [] : [`${spec.rest}At`];
    checkNames([...this.#keys, ...this.#args.map(([name]) => name), ...restNames]);
    this.#lua = `${this.#header()}\n${spec.helpers ?? ''}\n${spec.body}`;
    this.#sha = createHash('sha1').update(this.#lua).digest('hex');
  }

  /** Makes the script callable on this client (ioredis loads it and runs it by its SHA). */
  define(client: RedisClient): void {
    client.defineCommand(this.#command, { numberOfKeys: this.#keys.length, lua: this.#lua });
  }

  /** KEYS and ARGV, each in the order the Lua header names them. */
  encode(input: ScriptInput<K, A, V>): { keys: string[]; args: (string | number)[] } {
    const values = input as Readonly<Record<string, string | number | boolean>>;
    const args = this.#args.map(([name, kind]) =>
      kind === 'flag' ? (values[name] ? '1' : '0') : (values[name] as string | number),
    );
    if (this.#rest !== undefined) args.push(...input[this.#rest]);
    return { keys: this.#keys.map((name) => input[name]), args };
  }

  run(client: RedisClient, input: ScriptInput<K, A, V>): Promise<R> {
    if (client instanceof Redis) return this.#runOn(client, input);
    const method = (client as unknown as Partial<Record<string, ScriptMethod>>)[this.#command];
    if (method === undefined) {
      throw new Error(`script ${this.#command} is not defined on this client`);
    }
    const { keys, args } = this.encode(input);
    return method.call(client, ...keys, ...args) as Promise<R>;
  }

  /**
   * On one server, EVALSHA goes to the client as a plain command: the method ioredis defines
   * wraps it in an options object, argument copies and two more promises. A server that lost
   * its script cache (restarted, flushed) answers NOSCRIPT, and the script is sent whole.
   */
  #runOn(client: Redis, input: ScriptInput<K, A, V>): Promise<R> {
    const { keys, args } = this.encode(input);
    const keysAndArgs = [keys.length, ...keys, ...args];
    return this.#send(client, 'evalsha', this.#sha, keysAndArgs).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#send(client, 'eval', this.#lua, keysAndArgs);
    });
  }

  #send(
    client: Redis,
    name: string,
    script: string,
    keysAndArgs: readonly (string | number)[],
  ): Promise<R> {
    const options = { replyEncoding: 'utf8' as const, keyPrefix: client.options.keyPrefix };
    const command = new Command(name, [script, ...keysAndArgs], options);
    client.sendCommand(command);
    return command.promise as Promise<R>;
  }

  #header(): string {
    return [
      '-- KEYS and ARGV by name, generated from the declaration that also orders them for callers',
      ...this.#keys.map((name, i) => `local ${luaName(name)} = KEYS[${i + 1}]`),
      ...this.#args.map(
        ([name, kind], i) => `local ${luaName(name)} = ${LUA_VALUE[kind](`ARGV[${i + 1}]`)}`,
      ),
      ...(this.#rest === undefined
        ? []
        : [`local ${luaName(this.#rest)}_at = ${this.#args.length + 1}`]),
    ].join('\n');
  }
}

type ScriptMethod = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/**
 * Declares a script replying `R`. Curried because TypeScript infers either all type parameters
 * or none: `R` is given, the key and argument names are inferred from the declaration.
 */
export function luaScript<R>() {
  return <const K extends string, const A extends ArgKinds, const V extends string = never>(
    spec: ScriptSpec<K, A, V>,
  ): LuaScript<K, A, R, V> => new LuaScript(spec);
}

function luaName(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function checkNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (!/^[a-z][A-Za-z0-9]*$/.test(name) || seen.has(luaName(name))) {
      throw new TypeError(`script input named twice or not usable as a Lua local: ${name}`);
    }
    seen.add(luaName(name));
  }
}
