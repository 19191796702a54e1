import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'moe', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 120_000 },
});
