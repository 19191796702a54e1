/** A one-line progress bar on stderr (plain lines when stderr is not a terminal). */
export class Progress {
  private last = 0;
  constructor(private readonly total: number, private readonly label: string) {}

  update(done: number, note = ''): void {
    const now = Date.now();
    if (done < this.total && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const filled = Math.round((done / this.total) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const line = `${this.label} [${bar}] ${done}/${this.total} ${note}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
    else if (done === this.total || done % Math.max(1, Math.floor(this.total / 10)) === 0) process.stderr.write(`${line}\n`);
    if (done === this.total && process.stderr.isTTY) process.stderr.write('\n');
  }
}
