import { MemoryStreamStore } from '../../../src/backends/memory/memory-stream-store.js';
import { streamStoreContract } from '../stream-store-contract.js';

streamStoreContract('memory', {
  create: async ({ ttlMs }) => new MemoryStreamStore({ ttlMs }),
});
