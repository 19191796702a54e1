#!/usr/bin/env node
/** The `vlmoe-data` command (see cli/main.ts); `bin/vlmoe-data.js` and `vlmoe data` run this file. */
import { runCli } from './cli/main.js';

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
