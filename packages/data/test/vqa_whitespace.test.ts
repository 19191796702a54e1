import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { PYTHON_WHITESPACE, isPythonSpace, pythonSplit, pythonStrip } from '../src/vqa/whitespace.js';
import { cleanAnswerWhitespace, normalizeAnswer } from '../src/vqa/normalize.js';
import { AnswerVocab } from '../src/vqa/answers.js';

/** Written by python3 (fixtures/vqa/make_python_whitespace.py): str.isspace, str.strip(), str.split(). */
const fixture = JSON.parse(readFileSync(new URL('./fixtures/vqa/python_whitespace.json', import.meta.url), 'utf8')) as {
  isspace: number[];
  cases: { input: string; strip: string; split: string[] }[];
};
const hex = (s: string) => [...s].map((c) => `U+${c.codePointAt(0)!.toString(16).padStart(4, '0')}`).join(' ') || '(empty)';

describe("Python's whitespace (the official VQA evaluation's strip() and split())", () => {
  test('PYTHON_WHITESPACE is the str.isspace() set, code point for code point', () => {
    expect([...PYTHON_WHITESPACE].map((c) => c.codePointAt(0))).toEqual(fixture.isspace);
    for (let cp = 0; cp < 0x3100; cp++) expect(isPythonSpace(String.fromCodePoint(cp)), hex(String.fromCodePoint(cp))).toBe(fixture.isspace.includes(cp));
  });

  test(`strip() and split() on ${fixture.cases.length} strings around each special character`, () => {
    for (const c of fixture.cases) {
      expect(pythonStrip(c.input), hex(c.input)).toBe(c.strip);
      expect(pythonSplit(c.input), hex(c.input)).toEqual(c.split);
    }
  });

  test('answers: U+001C–U+001F and U+0085 are stripped and split on, U+FEFF is kept (unlike trim())', () => {
    for (const c of ['\u001c', '\u001d', '\u001e', '\u001f', '\u0085']) {
      expect(cleanAnswerWhitespace(`${c}yes${c}`)).toBe('yes');
      expect(normalizeAnswer(`two${c}dogs`)).toBe('2 dogs');
    }
    expect(cleanAnswerWhitespace('\ufeffyes\ufeff')).toBe('\ufeffyes\ufeff');
    expect(normalizeAnswer('two\ufeffdogs')).toBe('two\ufeffdogs');
    // the converters' vocabulary uses the same normalisation
    const vocab = new AnswerVocab(['yes', '2 dogs']);
    expect(vocab.label('\u0085Yes\u001f')).toBe(0);
    expect(vocab.label('two\u001edogs')).toBe(1);
    expect(vocab.label('\ufeffyes')).toBe(-1);
  });
});
