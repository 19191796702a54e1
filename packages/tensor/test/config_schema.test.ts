import { describe, expect, test } from 'vitest';
import { z, parseConfig, jsonSchemaOf, configUsage, knownKeysAt, SCHEMA_KEY } from '../src/index.js';

const S = z.strictObject({
  ...SCHEMA_KEY,
  name: z.string(),
  steps: z.int().default(100),
  lr: z.number().default(1e-3),
  mode: z.enum(['fast', 'slow']).default('fast'),
  tags: z.array(z.int()).default([]),
  engine: z.strictObject({ zero: z.strictObject({ stage: z.int().optional() }).optional() }).default({}),
  init: z.string().nullable().default(null),
});

describe('parseConfig', () => {
  test('fills defaults and keeps what was given; $schema is allowed', () => {
    expect(parseConfig(S, { name: 'x', $schema: 's.json', engine: { zero: { stage: 2 } } }, 'config a.json')).toEqual({
      $schema: 's.json', name: 'x', steps: 100, lr: 1e-3, mode: 'fast', tags: [], engine: { zero: { stage: 2 } }, init: null,
    });
  });

  test('each kind of mistake is one message naming where, the key path and the value', () => {
    const bad = (v: unknown, re: RegExp, prefix?: string) => expect(() => parseConfig(S, v, 'config a.json', { prefix })).toThrow(re);
    bad({ name: 'x', stepz: 1 }, /^config a\.json: unknown key 'stepz' \(did you mean 'steps'\?\); known: name, steps, lr, mode, tags, engine, init$/);
    bad({ name: 'x', engine: { zero: { stgae: 1 } } }, /^config a\.json: unknown key 'engine\.zero\.stgae' \(did you mean 'stage'\?\); known: stage$/);
    bad({ name: 'x', engine: { zero: { stage: 1 } }, mode: 'fats' }, /'mode' must be one of "fast", "slow", got "fats" \(did you mean 'fast'\?\)/);
    bad({ name: 'x', steps: 1.5 }, /'steps' must be an integer, got 1\.5/);
    bad({ name: 'x', steps: '3' }, /'steps' must be an integer, got "3"/);
    bad({ name: 'x', lr: '1e-3' }, /'lr' must be a number, got "1e-3"/);
    bad({ name: 'x', tags: [1, 'b'] }, /'tags\[1\]' must be an integer, got "b"/);
    bad({ name: 'x', engine: 3 }, /'engine' must be a JSON object, got 3/);
    bad({ steps: 3 }, /^config a\.json: 'name' is required$/);
    bad([1], /^config a\.json must be a JSON object, got \[1\]$/);
    bad({ name: 'x', stepz: 1 }, /unknown key 'model\.stepz'/, 'model.');
  });

  test('an unknown key can get its own message (a key known elsewhere)', () => {
    const unknownKey = (at: readonly string[], key: string) => (at.join('.') === 'engine' && key === 'offload' ? `'engine.offload' is not implemented here` : null);
    expect(() => parseConfig(S, { name: 'x', engine: { offload: true } }, 'w', { unknownKey })).toThrow(/^w: 'engine\.offload' is not implemented here$/);
    expect(() => parseConfig(S, { name: 'x', engine: { zeroo: {} } }, 'w', { unknownKey })).toThrow(/unknown key 'engine\.zeroo' \(did you mean 'zero'\?\)/);
  });

  test('knownKeysAt walks objects through optional and default wrappers', () => {
    expect(knownKeysAt(S, [])).toEqual(['name', 'steps', 'lr', 'mode', 'tags', 'engine', 'init']);
    expect(knownKeysAt(S, ['engine', 'zero'])).toEqual(['stage']);
    expect(knownKeysAt(S, ['name'])).toEqual([]);
  });
});

describe('jsonSchemaOf and configUsage', () => {
  test('the JSON Schema an editor reads: input side (defaults optional), no unknown keys, integers without safe-integer bounds', () => {
    const js = jsonSchemaOf(S, { title: 'T' }) as { $schema: string; title: string; required: string[]; additionalProperties: boolean; properties: Record<string, Record<string, unknown>> };
    expect(js.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(js.title).toBe('T');
    expect(js.required).toEqual(['name']);
    expect(js.additionalProperties).toBe(false);
    expect(js.properties.steps).toEqual({ type: 'integer', default: 100 });
    expect(js.properties.mode).toMatchObject({ enum: ['fast', 'slow'], default: 'fast' });
  });

  test('configUsage lists each key with its type and default', () => {
    expect(configUsage(S)).toBe(
      'name (string, required), steps (integer, default 100), lr (number, default 0.001), mode (string, default "fast"), tags (array, default []), engine (object, default {}), init (string, optional)',
    );
  });
});
