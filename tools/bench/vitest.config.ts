import { defineProject } from 'vitest/config';

// the peer tests spawn Python and child processes: the timeout guards against hangs, it is not a speed limit
export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'bench', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 300_000 },
});
