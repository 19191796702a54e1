import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['development'] },
  test: { name: 'native-cuda', include: ['test/**/*.test.ts'], pool: 'forks' },
});
