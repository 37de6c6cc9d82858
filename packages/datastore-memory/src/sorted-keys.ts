/**
 * A sorted set of strings tuned for "many inserts, then prefix scans": new keys wait in an
 * unsorted buffer and are merged in on the next scan, so bulk loads cost O(n log n) total
 * instead of O(n) per insert.
 */
export class SortedKeys {
  private keys: string[] = [];
  private pending: string[] = [];
  private removed = new Set<string>();

  add(key: string): void {
    if (this.removed.delete(key)) return; // still in `keys`
    this.pending.push(key);
  }

  remove(key: string): void {
    const i = this.pending.indexOf(key);
    if (i >= 0) {
      this.pending.splice(i, 1);
      return;
    }
    this.removed.add(key);
  }

  get size(): number {
    return this.keys.length + this.pending.length - this.removed.size;
  }

  private settle(): void {
    if (this.pending.length === 0 && this.removed.size === 0) return;
    let base = this.keys;
    if (this.removed.size) {
      base = base.filter((k) => !this.removed.has(k));
      this.removed.clear();
    }
    if (this.pending.length) {
      const add = this.pending.sort(byteOrder);
      this.pending = [];
      const merged = new Array<string>(base.length + add.length);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < base.length && j < add.length)
        merged[o++] = byteOrder(base[i]!, add[j]!) <= 0 ? base[i++]! : add[j++]!;
      while (i < base.length) merged[o++] = base[i++]!;
      while (j < add.length) merged[o++] = add[j++]!;
      base = merged;
    }
    this.keys = base;
  }

  forEachWithPrefix(prefix: string, fn: (key: string) => void): void {
    this.settle();
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byteOrder(keys[mid]!, prefix) < 0) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < keys.length && keys[i]!.startsWith(prefix); i++) fn(keys[i]!);
  }
}

/** Keys are printable ASCII, so UTF-16 code unit order is byte order. */
export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
