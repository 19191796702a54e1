/**
 * A byte-bounded LRU of decoded record batches over several Arrow files, so a shuffled
 * loader reads each batch from disk once while it is hot, and never holds more than
 * `maxBytes` of batches (plus those in use).
 */
import { ArrowReader, type BatchView } from '../arrow/reader.js';
import type { DatasetKind } from '../arrow/schemas.js';

export class BatchCache<K extends DatasetKind = DatasetKind> {
  private readonly entries = new Map<string, { view: Promise<BatchView<K>>; bytes: number }>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly readers: ArrowReader<K>[],
    readonly maxBytes = 512 * 1024 * 1024,
  ) {}

  get(file: number, batch: number): Promise<BatchView<K>> {
    const key = `${file}:${batch}`;
    const e = this.entries.get(key);
    if (e) {
      this.hits++;
      this.entries.delete(key); // move to the back (most recent)
      this.entries.set(key, e);
      return e.view;
    }
    this.misses++;
    const entry = { view: this.readers[file]!.readBatch(batch), bytes: 0 };
    this.entries.set(key, entry);
    entry.view.then(
      (v) => {
        entry.bytes = v.batch.data.byteLength;
        this.bytes += entry.bytes;
        this.evict();
      },
      () => this.entries.delete(key),
    );
    return entry.view;
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.bytes <= this.maxBytes || this.entries.size <= 1) break;
      if (e.bytes === 0) continue; // still loading
      this.entries.delete(key);
      this.bytes -= e.bytes;
    }
  }

  get cachedBytes(): number {
    return this.bytes;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
