/**
 * The "did you mean" of every config and command-line error: the known name nearest to a
 * misspelt one, when it is close enough to be a slip.
 */

/** Edit distance (insertions, deletions, substitutions, adjacent swaps: optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name nearest to `word` when it is close enough to be a slip (distance at most
 * max(2, ⌊length/3⌋); case and `-`/`_` are ignored), else null.
 */
export function nearestKey(word: string, known: readonly string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = norm(k) === norm(word) ? 0 : editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

/** " (did you mean '<prefix><nearest>'?)" for the nearest known name, or ''. */
export function didYouMean(word: string, known: readonly string[], prefix = ''): string {
  const n = nearestKey(word, known);
  return n !== null ? ` (did you mean '${prefix}${n}'?)` : '';
}
