/** Shared pieces of the converters: options, image file loading with checks, reports. */
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { ArrowWriter, type ArrowWriterOptions } from '../arrow/writer.js';
import type { DatasetKind } from '../arrow/schemas.js';
import { Progress } from '../progress.js';
import { decodeImage } from '../image/decode.js';

export interface ConvertOptions extends ArrowWriterOptions {
  /**
   * What to do with an image that is missing or does not decode: `'throw'` (default) stops
   * with an error naming the file and the row; `'skip'` drops the image (and its texts), and
   * lists it (path, where it was named, reason) in the report.
   */
  onError?: 'throw' | 'skip';
  /**
   * How each image is checked before it is written: `'decode'` (default, also `true`) decodes
   * it fully, as training will (a JPEG cut short, whose header is intact, is caught here);
   * `'header'` only reads its header (format and size: cheap, but a truncated or corrupt body
   * passes); `'none'` (also `false`) only reads the file.
   */
  verifyImages?: ImageCheck | boolean;
  /** Show a progress bar (default true; `VLMOE_PROGRESS=0` turns it off). */
  progress?: boolean;
}

/** How much of an image file is checked: see {@link ConvertOptions.verifyImages}. */
export type ImageCheck = 'decode' | 'header' | 'none';

/** An image skipped under `onError: 'skip'`. */
export interface SkippedImage {
  /** The image file. */
  source: string;
  /** Where the input named it (e.g. `captions_train2017.json images[12]`). */
  where: string;
  /** What is wrong with it (the decoder's message). */
  reason: string;
}

export interface ConvertReport {
  /** The Arrow file written. */
  out: string;
  /** Rows written (one per image, or per image pair for NLVR). */
  rows: number;
  /** Images written. */
  images: number;
  /** Texts written (captions, questions or statements). */
  texts: number;
  /** Images skipped with the reason (only with `onError: 'skip'`). */
  skipped: SkippedImage[];
  /** Other files written next to the Arrow file (answer vocabulary, annotations). */
  sidecars: string[];
}

const IMAGE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff']);

/** An image file that cannot be used: `message` is `image <source>: <reason>`. */
export class ImageFileError extends Error {
  override readonly name = 'ImageFileError';
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`image ${source}: ${reason}`);
  }
}

function resolveCheck(v: ImageCheck | boolean | undefined): ImageCheck {
  if (v === undefined || v === true) return 'decode';
  if (v === false) return 'none';
  if (v !== 'decode' && v !== 'header' && v !== 'none') throw new Error(`verifyImages must be 'decode', 'header' or 'none', got '${String(v)}'`);
  return v;
}

/**
 * Read an image file's bytes and check them (`'decode'`, the default: decode the whole image
 * with the same decoder the loader uses; `'header'`: the header only; `'none'`). Throws an
 * {@link ImageFileError} naming the file.
 */
export async function loadImageFile(path: string, check: ImageCheck | boolean = 'decode'): Promise<Uint8Array> {
  const how = resolveCheck(check);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageFileError(path, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (e as Error).message);
  }
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (how === 'none') return view;
  try {
    const meta = await sharp(bytes).metadata();
    if (!meta.format || !IMAGE_FORMATS.has(meta.format)) throw new Error(`unsupported image format '${meta.format ?? 'unknown'}'`);
    if (!meta.width || !meta.height) throw new Error('image has no size');
    if (how === 'decode') await decodeImage(view);
  } catch (e) {
    throw new ImageFileError(path, `does not decode: ${(e as Error).message.trim()}`);
  }
  return view;
}

/** Runs a converter's per-image steps with the error policy and counts. */
export class ConvertSession {
  readonly report: ConvertReport;
  readonly progress: Progress;
  private readonly policy: 'throw' | 'skip';
  readonly verify: ImageCheck;

  constructor(out: string, label: string, total: number, options: ConvertOptions) {
    this.report = { out, rows: 0, images: 0, texts: 0, skipped: [], sidecars: [] };
    this.policy = options.onError ?? 'throw';
    if (this.policy !== 'throw' && this.policy !== 'skip') throw new Error(`onError must be 'throw' or 'skip', got '${String(this.policy)}'`);
    this.verify = resolveCheck(options.verifyImages);
    this.progress = new Progress(label, total, { enabled: options.progress });
  }

  /**
   * Load the image at `path`, named by the input at `where`, or (skip policy) return null
   * after recording why. The error names the file, where the input named it and the row of the
   * output it was for.
   */
  async image(path: string, where: string): Promise<Uint8Array | null> {
    try {
      return await loadImageFile(path, this.verify);
    } catch (e) {
      const reason = e instanceof ImageFileError ? e.reason : (e as Error).message;
      if (this.policy === 'throw') throw new Error(`image ${path}: ${reason} (${where}; row ${this.report.rows} of ${this.report.out})`, { cause: e });
      this.report.skipped.push({ source: path, where, reason });
      return null;
    }
  }

  /** Count one written row. */
  wrote(images: number, texts: number): void {
    this.report.rows++;
    this.report.images += images;
    this.report.texts += texts;
  }

  /**
   * A captions row for the image at `path` (skipped per the error policy when it does not
   * load): the shared step of the COCO, Karpathy and Flickr converters.
   */
  async captionRow(w: ArrowWriter<'captions'>, path: string, where: string, caption: string[], imageId: string, split: string): Promise<void> {
    const bytes = await this.image(path, where);
    if (!bytes) return;
    w.write({ image: bytes, caption, image_id: imageId, split });
    this.wrote(1, caption.length);
  }

  finish(): ConvertReport {
    const s = this.report.skipped.length;
    this.progress.finish(`${this.report.rows} rows, ${this.report.texts} texts${s ? `, ${s} images skipped` : ''}`);
    return this.report;
  }
}

/** Parse a JSON-lines file; errors name the file and line. */
export function readJsonLines(path: string): unknown[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const out: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      throw new Error(`${path} line ${i + 1}: invalid JSON: ${(e as Error).message}`);
    }
  });
  return out;
}

/** Throw a clear error when a required field is missing or of the wrong type. */
export function field<T>(obj: unknown, key: string, type: 'string' | 'number' | 'array' | 'object', where: string): T {
  const v = (obj as Record<string, unknown> | null)?.[key];
  const ok = type === 'array' ? Array.isArray(v) : type === 'object' ? v !== null && typeof v === 'object' : typeof v === type;
  if (!ok) throw new Error(`${where}: field '${key}' must be a${type === 'array' || type === 'object' ? 'n' : ''} ${type}, got ${v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 60)}`);
  return v as T;
}

/** Every file under `dir` (recursively) by base name; duplicates are an error. */
export function indexFilesByName(dir: string, filter: (name: string) => boolean = () => true): Map<string, string> {
  if (!existsSync(dir)) throw new Error(`image folder ${dir} does not exist`);
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (filter(name)) {
        const prev = out.get(name);
        if (prev) throw new Error(`image folder ${dir}: '${name}' appears twice (${prev} and ${p})`);
        out.set(name, p);
      }
    }
  };
  walk(dir);
  return out;
}

/** `<dir>/<stem>_<suffix>` for a sidecar of `out.arrow`. */
export function sidecarPath(out: string, suffix: string): string {
  return out.replace(/\.arrows?$/, '') + `_${suffix}`;
}

/** Run `body` with a writer for `out`; close it on success, abort it (no file left) on error. */
export async function withWriter<K extends DatasetKind>(out: string, kind: K, options: ArrowWriterOptions, body: (w: ArrowWriter<K>) => Promise<void>): Promise<void> {
  const w = new ArrowWriter(out, kind, options);
  try {
    await body(w);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await w.close();
}
