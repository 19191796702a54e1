/**
 * A small progress bar on stderr for long data jobs (conversion, generation, a pass over a
 * dataset). Draws in place on a terminal; elsewhere (CI logs, pipes) prints a line every
 * 10% so logs stay short. `VLMOE_PROGRESS=0` silences it, `=1` forces line output.
 */
export class Progress {
  private done = 0;
  /** Work done before this bar started (a resumed run): counted in the total, not in the rate. */
  private before = 0;
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly start = Date.now();
  private readonly tty: boolean;
  private readonly enabled: boolean;
  private finished = false;

  constructor(readonly label: string, readonly total: number | null, options: { enabled?: boolean } = {}) {
    const env = process.env.VLMOE_PROGRESS;
    this.enabled = options.enabled ?? env !== '0';
    this.tty = env === '1' ? false : Boolean(process.stderr.isTTY);
  }

  /** Starts the count at `n` units done earlier (a resumed run), without drawing: the rate and ETA count only this bar's work. */
  resumeAt(n: number): void {
    this.done = this.before = n;
    if (this.total) this.lastDecile = Math.floor((10 * n) / this.total);
  }

  tick(n = 1, note?: string): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastDraw < 100 && this.done !== this.total) return;
      this.lastDraw = now;
      process.stderr.write(`\r${this.line(note)}\x1b[K`);
    } else if (this.total) {
      const decile = Math.floor((10 * this.done) / this.total);
      if (decile > this.lastDecile && decile < 10) {
        this.lastDecile = decile;
        if (decile > 0) process.stderr.write(`${this.line(note)}\n`);
      }
    }
  }

  private line(note?: string): string {
    const secs = (Date.now() - this.start) / 1000;
    const rate = (this.done - this.before) / Math.max(secs, 1e-3);
    if (this.total) {
      const frac = Math.min(1, this.done / this.total);
      const width = 24;
      const fill = Math.round(frac * width);
      const eta = rate > 0 ? (this.total - this.done) / rate : 0;
      return `${this.label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.done}/${this.total} ${(100 * frac).toFixed(0)}% ${rate.toFixed(1)}/s eta ${eta.toFixed(0)}s${note ? ' ' + note : ''}`;
    }
    return `${this.label} ${this.done} ${rate.toFixed(1)}/s${note ? ' ' + note : ''}`;
  }

  /** Prints a line of its own (on a terminal: above the bar, which is redrawn at the next tick). */
  note(text: string): void {
    if (!this.enabled) return;
    process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${this.label}: ${text}\n`);
    this.lastDraw = 0;
  }

  /** Print the final line (always, when enabled). */
  finish(note?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.enabled) return;
    const secs = ((Date.now() - this.start) / 1000).toFixed(1);
    process.stderr.write(`${this.tty ? '\r' : ''}${this.label}: ${this.done}${this.total ? '/' + this.total : ''} in ${secs}s${note ? ' ' + note : ''}${this.tty ? '\x1b[K' : ''}\n`);
  }
}
