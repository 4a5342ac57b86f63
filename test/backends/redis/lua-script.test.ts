import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { luaScript } from '../../../src/backends/redis/lua-script.js';
import { useRedis } from './harness.js';

const redis = useRedis();

type Echo = [string, string, string, number, number, number];

test('a script reads each key and argument under the name the caller passed it by', async () => {
  const echo = luaScript<Echo>()({
    command: 'testEcho',
    keys: ['firstKey', 'secondKey'],
    args: { label: 'string', count: 'number', isOn: 'flag', isOff: 'flag' },
    body: 'return {first_key, second_key, label, count + 1, is_on and 1 or 0, is_off and 1 or 0}',
  });
  const client = await redis().client();
  echo.define(client);
  const reply = await echo.run(client, {
    secondKey: 'b',
    isOff: false,
    count: 41,
    firstKey: 'a',
    label: 'x\ny',
    isOn: true,
  });
  assert.deepEqual(reply, ['a', 'b', 'x\ny', 42, 1, 0]);
});

test('a rest list arrives after the named arguments, found from its `_at` index', async () => {
  const tail = luaScript<string[]>()({
    command: 'testTail',
    keys: ['key'],
    args: { label: 'string' },
    rest: 'items',
    body: 'local out = {label}\nfor i = items_at, #ARGV do table.insert(out, ARGV[i]) end\nreturn out',
  });
  const client = await redis().client();
  tail.define(client);
  assert.deepEqual(await tail.run(client, { key: 'k', label: 'l', items: ['a', 2, 'c'] }), [
    'l',
    'a',
    '2',
    'c',
  ]);
  assert.deepEqual(await tail.run(client, { key: 'k', label: 'l', items: [] }), ['l']);
});

test('a name given twice, or not usable as a Lua local, is refused', () => {
  const declare = luaScript<null>();
  assert.throws(
    () => declare({ command: 'twice', keys: ['logKey'], args: { logKey: 'string' }, body: '' }),
    TypeError,
  );
  assert.throws(
    () => declare({ command: 'bad', keys: ['log-key'], args: {}, body: '' }),
    TypeError,
  );
});

test('a script Redis no longer has (SCRIPT FLUSH, a restart) is sent whole and runs', async () => {
  const counter = luaScript<number>()({
    command: 'testCounter',
    keys: ['key'],
    args: {},
    body: "return redis.call('INCR', key)",
  });
  const client = await redis().client();
  counter.define(client);
  const key = `counter-${process.hrtime.bigint()}`;
  assert.equal(await counter.run(client, { key }), 1);
  await client.script('FLUSH');
  assert.equal(await counter.run(client, { key }), 2);
  assert.equal(await counter.run(client, { key }), 3);
});

test("a script's keys carry the client's key prefix", async () => {
  const setter = luaScript<string>()({
    command: 'testSetter',
    keys: ['key'],
    args: { value: 'string' },
    body: "redis.call('SET', key, value)\nreturn key",
  });
  const client = await redis().client();
  const prefixed = new Redis(redis().url, { keyPrefix: 'pre:' });
  try {
    setter.define(prefixed);
    assert.equal(await setter.run(prefixed, { key: 'k', value: 'v' }), 'pre:k');
    assert.equal(await client.get('pre:k'), 'v');
  } finally {
    prefixed.disconnect();
  }
});
