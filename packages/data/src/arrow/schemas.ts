/**
 * The ViLT/VLMo Arrow schemas (REFERENCE §5), as apache-arrow `Schema`s, row types, and a
 * checker that accepts `string`, `large_string` or `string_view` (and `binary`, `large_binary`
 * or `binary_view`; `list` or `large_list`) wherever the reference files use strings (bytes, lists).
 *
 * Hugging Face `datasets` files are accepted where the meaning of a column is clear: its
 * `Image()` feature is stored as `struct<bytes: binary, path: string>` (datasets/features/
 * image.py, `Image.pa_type`; the bytes are the encoded image file, the path where it came
 * from), so such a struct is accepted wherever an image (`binary`) column is expected and read
 * as its `bytes`; its `Value('large_string')` is `large_string` and `List` / `LargeList` are
 * `list` / `large_list`, already accepted above.
 */
import {
  Binary,
  DataType,
  Field,
  Float64,
  Int64,
  LargeBinary,
  LargeUtf8,
  List,
  Schema,
  Struct,
  Type,
  Utf8,
} from 'apache-arrow';

/** One image with its captions (COCO / Flickr30K Karpathy, CC, SBU). */
export interface CaptionRow {
  image: Uint8Array;
  caption: string[];
  image_id: string;
  split: string;
}

/** One image with all its questions (VQAv2); test rows carry empty answer lists. */
export interface VqaRow {
  image: Uint8Array;
  questions: string[];
  answers: string[][];
  answer_labels: number[][];
  answer_scores: number[][];
  image_id: number;
  question_id: number[];
  split: string;
}

/** A pair of images with statements about them and "True"/"False" answers (NLVR2). */
export interface Nlvr2Row {
  image_0: Uint8Array;
  image_1: Uint8Array;
  questions: string[];
  answers: string[];
  identifier: string;
}

export interface RowTypes {
  captions: CaptionRow;
  vqa: VqaRow;
  nlvr2: Nlvr2Row;
}
export type DatasetKind = keyof RowTypes;
export const DATASET_KINDS: readonly DatasetKind[] = ['captions', 'vqa', 'nlvr2'];

const listOf = (t: DataType, name = 'item') => new List(new Field(name, t, true));

/** The schemas our writers produce (32-bit offsets: `binary`, `string`). */
export const SCHEMAS: { [K in DatasetKind]: Schema } = {
  captions: new Schema([
    new Field('image', new Binary(), true),
    new Field('caption', listOf(new Utf8()), true),
    new Field('image_id', new Utf8(), true),
    new Field('split', new Utf8(), true),
  ]),
  vqa: new Schema([
    new Field('image', new Binary(), true),
    new Field('questions', listOf(new Utf8()), true),
    new Field('answers', listOf(listOf(new Utf8())), true),
    new Field('answer_labels', listOf(listOf(new Int64())), true),
    new Field('answer_scores', listOf(listOf(new Float64())), true),
    new Field('image_id', new Int64(), true),
    new Field('question_id', listOf(new Int64()), true),
    new Field('split', new Utf8(), true),
  ]),
  nlvr2: new Schema([
    new Field('image_0', new Binary(), true),
    new Field('image_1', new Binary(), true),
    new Field('questions', listOf(new Utf8()), true),
    new Field('answers', listOf(new Utf8()), true),
    new Field('identifier', new Utf8(), true),
  ]),
};

const isBinaryType = (t: DataType) => t.typeId === Type.Binary || t.typeId === Type.LargeBinary || t.typeId === Type.BinaryView;
const isStringType = (t: DataType) => t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8 || t.typeId === Type.Utf8View;

/**
 * Whether `t` is the Hugging Face `datasets` image struct: `struct<bytes: binary, path: string>`
 * (binary / string in any offset width; the field order does not matter, other fields may not be
 * there). Its `bytes` are the image file.
 */
export function isImageStruct(t: DataType): boolean {
  if (t.typeId !== Type.Struct) return false;
  const fields = (t as Struct).children;
  const bytes = fields.find((f) => f.name === 'bytes');
  const path = fields.find((f) => f.name === 'path');
  return fields.length === 2 && !!bytes && isBinaryType(bytes.type) && !!path && isStringType(path.type);
}

/** Describe a type the way error messages should print it. */
export function describeType(t: DataType): string {
  switch (t.typeId) {
    case Type.Struct:
      return `struct<${(t as Struct).children.map((f) => `${f.name}: ${describeType(f.type)}`).join(', ')}>`;
    case Type.Utf8:
      return 'string';
    case Type.LargeUtf8:
      return 'large_string';
    case Type.Binary:
      return 'binary';
    case Type.LargeBinary:
      return 'large_binary';
    case Type.Utf8View:
      return 'string_view';
    case Type.BinaryView:
      return 'binary_view';
    case Type.LargeList:
      return `large_list<${describeType((t as List).children[0]!.type)}>`;
    case Type.List:
      return `list<${describeType((t as List).children[0]!.type)}>`;
    case Type.Float:
      return ({ 0: 'half_float', 1: 'float', 2: 'double' } as Record<number, string>)[(t as unknown as { precision: number }).precision] ?? String(t);
    case Type.Int: {
      const i = t as unknown as { isSigned: boolean; bitWidth: number };
      return `${i.isSigned ? '' : 'u'}int${i.bitWidth}`;
    }
    default:
      return String(t);
  }
}

/**
 * Whether `actual` is acceptable where the schema says `expected` (string ≡ large_string,
 * binary ≡ large_binary ≡ the Hugging Face image struct, list ≡ large_list).
 */
export function typeCompatible(expected: DataType, actual: DataType): boolean {
  const e = expected.typeId;
  const a = actual.typeId;
  if (e === Type.Utf8) return isStringType(actual);
  if (e === Type.Binary) return isBinaryType(actual) || isImageStruct(actual);
  if (e === Type.List) {
    if (a !== Type.List && a !== Type.LargeList) return false;
    return typeCompatible((expected as List).children[0]!.type, (actual as List).children[0]!.type);
  }
  if (e === Type.Int) {
    // int64 columns: accept any integer width (files written by other tools may narrow ids)
    return a === Type.Int;
  }
  if (e === Type.Float) return a === Type.Float;
  return e === a;
}

/**
 * Check that `schema` carries every column `kind` needs with a compatible type.
 * Extra columns are allowed. Throws an error naming the file, the column and both types.
 */
export function checkSchema(kind: DatasetKind, schema: Schema, where: string): void {
  const want = SCHEMAS[kind];
  const missing: string[] = [];
  for (const f of want.fields) {
    const got = schema.fields.find((g) => g.name === f.name);
    if (!got) {
      missing.push(f.name);
      continue;
    }
    if (!typeCompatible(f.type, got.type)) {
      throw new Error(
        `${where}: column '${f.name}' has type ${describeType(got.type)}, but a ${kind} file needs ${describeType(f.type)}`,
      );
    }
  }
  if (missing.length > 0) {
    const have = schema.fields.map((g) => g.name).join(', ') || '(none)';
    throw new Error(`${where}: missing column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m}'`).join(', ')} for a ${kind} file (columns present: ${have})`);
  }
}

/** Guess the dataset kind from a schema's column names. */
export function detectKind(schema: Schema): DatasetKind | null {
  return detectKindFromNames(schema.fields.map((f) => f.name));
}

/** Guess the dataset kind from column names (Arrow or Parquet). */
export function detectKindFromNames(columns: Iterable<string>): DatasetKind | null {
  const names = new Set(columns);
  if (names.has('image_0') && names.has('image_1')) return 'nlvr2';
  if (names.has('questions') && names.has('image')) return 'vqa';
  if (names.has('caption') && names.has('image')) return 'captions';
  return null;
}

export { LargeUtf8, LargeBinary };
