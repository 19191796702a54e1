import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'moe', env: { VLMOE_POISON: '1' }, include: ['test/**/*.test.ts'], pool: 'forks', testTimeout: 120_000 },
});
