import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'examples', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 300_000 },
});
