/**
 * The published JSON Schema files (tools/cli/schemas/) are current, and an editor validating a
 * config with them (ajv, JSON Schema 2020-12, as VS Code's and JetBrains' validators do) agrees
 * with the command line: our configs pass, a misspelt key at any depth is refused by both.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, test } from 'vitest';
import { DEFAULT_BENCH, STUDY_SCHEMA, jsonSchemas } from '../src/index.js';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const cli = here('../dist/main.js');
const published = (name: string) => JSON.parse(readFileSync(here(`../schemas/${name}.schema.json`), 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: false, strict: false });
const validator = (name: string) => ajv.compile(published(name));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-schemas-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Each case's keys over `base`: the published JSON Schema of `kind` refuses the config, and `vlmoe <kind> --config` exits 1 naming the file and the key. */
function refusedByBoth(kind: 'pretrain' | 'study', base: object, cases: [object, RegExp][]): void {
  const schema = validator(kind);
  for (const [o, re] of cases) {
    const cfg = { ...base, ...o };
    expect(schema(cfg), `JSON Schema accepted ${JSON.stringify(o)}`).toBe(false);
    const file = join(dir, `${kind}.json`);
    writeFileSync(file, JSON.stringify(cfg));
    const r = spawnSync(process.execPath, [cli, kind, '--config', file], { encoding: 'utf8', env: { ...process.env, VLMOE_PROGRESS: '0' } });
    expect(r.status, JSON.stringify(o)).toBe(1);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).toContain(file);
  }
}

describe('published JSON Schemas', () => {
  test('the files in tools/cli/schemas are what the config schemas say (npm run schemas -w @vlmoe/cli rewrites them)', () => {
    for (const [name, schema] of Object.entries(jsonSchemas())) expect(published(name), name).toEqual(JSON.parse(JSON.stringify(schema)));
  });

  test("the repository's configs validate, with their $schema key", () => {
    const pre = validator('pretrain');
    const smoke = JSON.parse(readFileSync(here('../recipes/ep-smoke.json'), 'utf8'));
    expect(smoke.$schema).toBe('../schemas/pretrain.schema.json');
    expect(pre(smoke), JSON.stringify(pre.errors)).toBe(true);
    const bench = validator('bench');
    const real = JSON.parse(readFileSync(here('../recipes/real-data.json'), 'utf8'));
    expect(bench(real), JSON.stringify(bench.errors)).toBe(true);
    expect(bench(DEFAULT_BENCH), JSON.stringify(bench.errors)).toBe(true);
    const study = validator('study');
    const shapesSearch = JSON.parse(readFileSync(here('../recipes/shapes-search.json'), 'utf8'));
    expect(shapesSearch.$schema).toBe('../schemas/study.schema.json');
    expect(study(shapesSearch), JSON.stringify(study.errors)).toBe(true);
    expect(STUDY_SCHEMA.parse(shapesSearch).search?.moe).toEqual({ capacityFactor: [1.25, 2] });
    // a bench config without a seed is a study config at the default seeds (the real-data study is run so)
    expect(real.seed).toBeUndefined();
    expect(study(real), JSON.stringify(study.errors)).toBe(true);
    // the real-data study with the search is the real-data bench config plus seeds and the search (kept in step)
    const realSearch = JSON.parse(readFileSync(here('../recipes/real-data-search.json'), 'utf8'));
    expect(study(realSearch), JSON.stringify(study.errors)).toBe(true);
    const { $schema: _s1, name: _n1, seeds, search, ...restSearch } = realSearch;
    const { $schema: _s2, name: _n2, ...restReal } = real;
    expect(restSearch).toEqual(restReal);
    expect({ seeds, search }).toEqual({ seeds: [0, 1, 2], search: shapesSearch.search });
    // the study at the settings the search chose (run without repeating the search): shapes-search.json
    // without its search block, each model at values of the search's grid
    const searched = JSON.parse(readFileSync(here('../recipes/shapes-searched.json'), 'utf8'));
    expect(study(searched), JSON.stringify(study.errors)).toBe(true);
    const { $schema: _s3, name: n3, search: grid, models: searchModels, ...restShapes } = shapesSearch;
    const { $schema: _s4, name: n4, models: searchedModels, ...restSearched } = searched;
    expect(restSearched).toEqual(restShapes);
    expect(n4).not.toBe(n3); // its own runs folder
    expect(searchedModels).toHaveLength(searchModels.length);
    searchedModels.forEach((m: { pretrain: Record<string, number>; model?: { moe?: Record<string, number> } }, i: number) => {
      const { pretrain, model, ...rest } = m;
      const { model: searchModel, ...searchRest } = searchModels[i];
      expect(rest).toEqual(searchRest);
      const { moe, ...arch } = model ?? {};
      expect(arch).toEqual(searchModel ?? {});
      expect(Object.keys(pretrain)).toEqual(Object.keys(grid.pretrain));
      for (const [k, v] of Object.entries(pretrain)) expect(grid.pretrain[k]).toContain(v);
      if (searchRest.experts > 0) {
        expect(Object.keys(moe ?? {})).toEqual(Object.keys(grid.moe));
        for (const [k, v] of Object.entries(moe ?? {})) expect(grid.moe[k]).toContain(v);
      } else expect(moe).toBeUndefined();
    });
    const ds = validator('deepspeed');
    expect(ds({ train_batch_size: 32, zero_optimization: { stage: 2 }, optimizer: { type: 'adamw', params: { lr: 1e-3, betas: [0.9, 0.98] } }, bf16: { enabled: true } }), JSON.stringify(ds.errors)).toBe(true);
  });

  test('a misspelt key or a wrong type at any depth: the editor (the JSON Schema) and vlmoe both refuse it', () => {
    const pre = validator('pretrain');
    const cases: [object, RegExp][] = [
      [{ stepz: 3 }, /unknown key 'stepz'/],
      [{ engine: { zero_optimisation: { stage: 1 } } }, /unknown key 'zero_optimisation'/],
      [{ engine: { optimizer: { type: 'AdamW', params: { weight_decy: 0.1 } } } }, /unknown key 'optimizer\.params\.weight_decy'/],
      [{ model: { moe: { capacityFactr: 2 } } }, /unknown key 'model\.moe\.capacityFactr'/],
      [{ model: { dropPth: 0.1 } }, /unknown key 'model\.dropPth'/],
      [{ weights: { mlmm: 1 } }, /unknown key 'weights\.mlmm'/],
      [{ steps: '10' }, /'steps' must be an integer, got "10"/],
      [{ engine: { gradient_clipping: '1.0' } }, /'gradient_clipping' must be a number, got "1\.0"/],
      // Hugging Face's "auto" is filled in by its Trainer, not by DeepSpeed: here it is an error, as in DeepSpeed
      [{ engine: { train_batch_size: 'auto' } }, /'train_batch_size' must be an integer, got "auto"/],
      [{ model: { moe: { dropPolicy: 'biggest' } } }, /'model\.moe\.dropPolicy' must be one of "position", "probs", got "biggest"/],
    ];
    const base = { name: 'x', data: `shapes:${join(dir, 'shapes')}`, runs: join(dir, 'runs') };
    refusedByBoth('pretrain', { ...base, steps: 1 }, cases);
    // a study config's search block: the same for both
    refusedByBoth('study', { ...base, split: 'test', models: [{ id: 'a', experts: 4 }, { id: 'b' }] }, [
      [{ search: { pretrian: { lr: [1e-3] } } }, /unknown key 'search\.pretrian'/],
      [{ search: { pretrain: { lr: [] } } }, /'search\.pretrain\.lr'/],
      [{ seeds: 1 }, /'seeds' must be an array/],
    ]);
    // DeepSpeed's MoE names are valid in the model block for both
    expect(pre({ name: 'x', model: { moe: { capacity_factor: 2, drop_tokens: false, ep_size: 1 } } }), JSON.stringify(pre.errors)).toBe(true);
  });
});
