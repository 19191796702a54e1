import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'parallel', include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 180_000 },
});
