#!/usr/bin/env node
// Writes tools/cli/schemas/<kind>.schema.json from the config schemas (run after `npm run build`:
// `npm run schemas -w @vlmoe/cli`). A test checks that the committed files are current.
import { writeFileSync } from 'node:fs';
import { jsonSchemas } from '../dist/index.js';

for (const [name, schema] of Object.entries(jsonSchemas())) {
  const file = new URL(`../schemas/${name}.schema.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(schema, null, 2) + '\n');
  console.log(`wrote ${file.pathname}`);
}
