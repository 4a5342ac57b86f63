import type { RedisClient } from './connection.js';

/**
 * Classic Pub/Sub broadcasts every message to every node of a Redis Cluster, so it stops
 * scaling there; sharded Pub/Sub (Redis 7) keeps a channel on the shard of its hash slot.
 * Channel names carry the topic's hash tag, so either mode works with the same names.
 */
export interface PubSubMode {
  /** Redis command the append script publishes with. */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /**
   * Event the subscriber connection emits for a message, as bytes: ioredis makes a string of
   * every message only while someone listens for the string event.
   */
  readonly messageEvent: 'messageBuffer' | 'smessageBuffer';
  publish(client: RedisClient, channel: string, message: string): Promise<unknown>;
  subscribe(subscriber: RedisClient, channel: string): Promise<unknown>;
  unsubscribe(subscriber: RedisClient, channel: string): Promise<unknown>;
}

export const classicPubSub: PubSubMode = {
  publishCommand: 'PUBLISH',
  messageEvent: 'messageBuffer',
  publish: (client, channel, message) => client.publish(channel, message),
  subscribe: (subscriber, channel) => subscriber.subscribe(channel),
  unsubscribe: (subscriber, channel) => subscriber.unsubscribe(channel),
};

export const shardedPubSub: PubSubMode = {
  publishCommand: 'SPUBLISH',
  messageEvent: 'smessageBuffer',
  publish: (client, channel, message) => client.spublish(channel, message),
  subscribe: (subscriber, channel) => subscriber.ssubscribe(channel),
  unsubscribe: (subscriber, channel) => subscriber.sunsubscribe(channel),
};
