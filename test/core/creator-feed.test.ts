import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CreatorFeed } from '../../src/core/creator-feed.js';
import type { StoredEvent } from '../../src/core/types.js';

const ends = (event: StoredEvent) => event.event === 'done';

/** A creator following `feed`: what it was fed, and where it was told to resume. */
function creator(feed: CreatorFeed, open = () => true) {
  const fed: string[] = [];
  const resumed: (string | undefined)[] = [];
  feed.follow(
    (events) => {
      for (const event of events) fed.push(event.id);
      return open();
    },
    (lastId) => resumed.push(lastId),
  );
  return { fed, resumed };
}

describe('CreatorFeed', () => {
  test('feeds the backlog, then each event; a writer that ended the log hands nothing over', () => {
    const feed = new CreatorFeed();
    feed.stored('e-1', 'start', '{}');
    const { fed, resumed } = creator(feed);
    feed.stored('e-2', 'delta', '{}');
    feed.stored('e-3', 'done', '{}');
    feed.release(ends);
    assert.deepEqual(fed, ['e-1', 'e-2', 'e-3']);
    assert.deepEqual(resumed, []);
  });

  test('a writer that stops before the end hands the creator to the log after the last event fed', () => {
    const feed = new CreatorFeed();
    feed.stored('e-1', 'start', '{}');
    const { fed, resumed } = creator(feed);
    feed.stored('e-2', 'delta', '{}');
    feed.release(ends);
    feed.stored('e-3', 'delta', '{}');
    assert.deepEqual(fed, ['e-1', 'e-2']);
    assert.deepEqual(resumed, ['e-2']);
  });

  test('a creator that follows after the writer stopped gets the backlog, then the log', () => {
    const feed = new CreatorFeed();
    feed.stored('e-1', 'start', '{}');
    feed.release(ends);
    const { fed, resumed } = creator(feed);
    assert.deepEqual(fed, ['e-1']);
    assert.deepEqual(resumed, ['e-1']);
  });

  test('one epoch only: an event of another (the log started again) hands the creator to the log', () => {
    const feed = new CreatorFeed(true, true);
    feed.stored('a-b-1', 'start', '{}');
    const { fed, resumed } = creator(feed);
    feed.stored('a-b-2', 'delta', '{}');
    feed.stored('c-1', 'error', '{}');
    feed.stored('c-2', 'delta', '{}');
    feed.release(ends);
    assert.deepEqual(fed, ['a-b-1', 'a-b-2']);
    assert.deepEqual(resumed, ['a-b-2'], 'handed over once, after the last event of its epoch');
  });

  test('a creator gone (its feed refused an event) is not handed over', () => {
    const feed = new CreatorFeed();
    feed.stored('e-1', 'start', '{}');
    const { resumed } = creator(feed, () => false);
    feed.stored('e-2', 'delta', '{}');
    feed.release(ends);
    assert.deepEqual(resumed, []);
  });
});
