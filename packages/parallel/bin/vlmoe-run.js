#!/usr/bin/env node
// `vlmoe-run`: the installed command. It exists before the package is built (npm links a bin only
// when its file is there at install time), and says what to do when the build is missing.
try {
  const { main } = await import('../dist/launcher.js');
  main(process.argv.slice(2));
} catch (e) {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('/dist/launcher.js')) {
    console.error('vlmoe-run: the package is not built yet: run `npm run build` in the repository first');
    process.exit(2);
  }
  throw e;
}
