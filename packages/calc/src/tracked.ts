/**
 * A Map that remembers which keys were set or deleted, so a consumer that saw generation g
 * can ask for what changed since instead of comparing everything. The log is trimmed as it
 * grows; a consumer too far behind is told `undefined` and compares in full.
 */
export class TrackedMap<K, V> extends Map<K, V> {
  private log: K[] = [];
  private base = 0;

  /** Advances with every set or delete. */
  get generation(): number {
    return this.base + this.log.length;
  }

  override set(key: K, value: V): this {
    // Map's constructor calls set() before the fields exist.
    this.log?.push(key);
    this.trim();
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    const had = super.delete(key);
    if (had) {
      this.log.push(key);
      this.trim();
    }
    return had;
  }

  override clear(): void {
    for (const k of this.keys()) this.log.push(k);
    super.clear();
    this.trim();
  }

  /** Keys set or deleted since `generation` (possibly repeated), or undefined when that is too old. */
  changedSince(generation: number): readonly K[] | undefined {
    if (generation < this.base || generation > this.generation) return undefined;
    return this.log.slice(generation - this.base);
  }

  private trim(): void {
    if (this.log.length > 4096 + 2 * this.size) {
      const drop = this.log.length >> 1;
      this.log = this.log.slice(drop);
      this.base += drop;
    }
  }
}
