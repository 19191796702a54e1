#!/usr/bin/env node
// `vlmoe-data`: the installed command. It exists before the package is built (npm links a bin only
// when its file is there at install time), and says what to do when the build is missing.
try {
  await import('../dist/cli.js');
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('/dist/cli.js')) {
    console.error('vlmoe-data: the package is not built yet: run `npm run build` in the repository first');
    process.exit(2);
  }
  throw e;
}
