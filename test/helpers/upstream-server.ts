import { after, before } from 'node:test';
import type { RunningServer } from '../../src/server/server.js';
import { MockUpstream } from './mock-upstream.js';
import { type Settings, startTestServer } from './server.js';

export interface ServerBehindUpstream {
  readonly mock: MockUpstream;
  readonly server: RunningServer;
}

/**
 * For one describe block: a streamhub with LLM_PROVIDER=openai in front of its own
 * fault-injecting upstream, both stopped after the block.
 */
export function useServerBehindUpstream(settings: Settings = {}): ServerBehindUpstream {
  let mock: MockUpstream;
  let server: RunningServer;
  before(async () => {
    mock = await MockUpstream.start();
    server = await startTestServer({
      LLM_PROVIDER: 'openai',
      OPENAI_BASE_URL: mock.baseURL,
      OPENAI_API_KEY: 'test-key',
      ...settings,
    });
  });
  after(async () => {
    await server.shutdown();
    await mock.close();
  });
  return {
    get mock() {
      return mock;
    },
    get server() {
      return server;
    },
  };
}
