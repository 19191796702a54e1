import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'tensor', env: { VLMOE_POISON: '1' }, include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 60_000 },
});
