import { defineProject } from 'vitest/config';

// the tests train and evaluate in child processes: the timeout is a guard against hangs, not a speed
// limit (a test that takes ~30 s alone took over 60 s beside a training process)
export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'cli', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 300_000 },
});
