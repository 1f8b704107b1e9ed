// Queues' backend_client_assigned fields, pure: normal and high-priority waiters are reported apart.
import { describe, expect, test } from 'bun:test';
import { assignRules } from '../../src/proxy/assign-hooks.ts';

describe('Queues fields', () => {
  test('X-Queue-* carry the normal waiters and X-HP-Queue-* the high-priority ones', () => {
    const rules = assignRules(
      { forwardedPort: false, forwardedProto: false, queues: true },
      { trusted: false, blindProxy: false, localPort: 80, tls: false, waiting: 3, oldestWaitSec: 2, hpWaiting: 1, hpOldestWaitSec: 0 },
      null,
    );
    expect(rules?.insert.map((i) => `${i.name}: ${i.value}`)).toEqual(['X-Queue-Count: 3', 'X-Queue-Age: 2', 'X-HP-Queue-Count: 1', 'X-HP-Queue-Age: 0']);
  });
});
