import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'util', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 60_000 },
});
