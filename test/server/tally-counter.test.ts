import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { TallyCounter } from '../../src/server/tally-counter.js';

function tallied() {
  const registry = new Registry();
  const tally = new TallyCounter({
    name: 'test_things_total',
    help: 'Things',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const values = async () =>
    Object.fromEntries(
      (await registry.getSingleMetric('test_things_total')?.get())?.values.map((v) => [
        v.labels.kind,
        v.value,
      ]) ?? [],
    );
  return { registry, tally, values };
}

test('tallies join the counter when it is read, and only what was added since', async () => {
  const { tally, values } = tallied();
  tally.add('a', { kind: 'a' });
  tally.add('a', { kind: 'a' }, 4);
  tally.add('b', { kind: 'b' }, 2);
  assert.deepEqual(await values(), { a: 5, b: 2 });
  tally.add('b', { kind: 'b' });
  assert.deepEqual(await values(), { a: 5, b: 3 });
});

test('a counting function and adds under the same key count into one label set', async () => {
  const { tally, values, registry } = tallied();
  const countA = tally.counting('a', { kind: 'a' });
  const againA = tally.counting('a', { kind: 'a' });
  countA();
  againA();
  tally.add('a', { kind: 'a' }, 10);
  assert.deepEqual(await values(), { a: 12 });
  assert.match(await registry.metrics(), /^test_things_total\{kind="a"\} 12$/m);
});
