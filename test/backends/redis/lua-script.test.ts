import assert from 'node:assert/strict';
import { test } from 'node:test';
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
