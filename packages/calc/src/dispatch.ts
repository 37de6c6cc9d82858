/** Rules of one chain. */
type Rules = readonly string[];

const UNKNOWN = '-m comment --comment "unknown endpoint interface" -j DROP';
/** Interface names are at most 15 characters: a node this deep is always a leaf. */
const MAX_DEPTH = 15;

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A node of the tree: the names that start with `prefix` and are longer than it. A leaf holds
 * them; a split node has one child per next character, the child remembering whether a name
 * ends exactly there (`exact`) and, in its own node, the names that go on.
 */
interface Node {
  prefix: string;
  size: number;
  names?: Set<string>;
  children?: Map<string, { exact: boolean; node: Node }>;
  dirty: boolean;
}

const newNode = (prefix: string): Node => ({ prefix, size: 0, names: new Set(), dirty: true });

/**
 * Dispatch from one chain to per-interface chains as a prefix tree, kept up to date name by
 * name. A node holds at most `leaf` interfaces, else splits by the next character of the
 * name, so adding or removing an endpoint re-emits the few chains on its path — never a
 * chain of N — whatever the number of interfaces. Anything that starts with the prefix but is
 * not a known interface falls through every chain into DROP (fail closed).
 *
 * `chains` is the table the tree writes into (chain name → rules); a chain whose rules did
 * not change keeps its array.
 */
export class DispatchTree {
  private readonly top: Node;
  /** A name equal to the prefix itself (an interface called just `tap`). */
  private exactRoot = false;
  private count = 0;
  /** Emitted nodes: prefix → child prefixes that have chains of their own. */
  private readonly emitted = new Map<string, string[]>();

  constructor(
    private readonly root: string,
    private readonly prefix: string,
    private readonly dir: '-i' | '-o',
    private readonly target: (name: string) => string,
    private readonly leaf: number,
    private readonly chains: Map<string, Rules>,
  ) {
    this.top = newNode(prefix);
  }

  get size(): number {
    return this.count;
  }

  private isLeafSize(n: Node): boolean {
    return n.size <= this.leaf || n.prefix.length >= MAX_DEPTH;
  }

  /** Places `name` (longer than `node.prefix`) under `node`, whose size already counts it. */
  private place(node: Node, name: string): void {
    for (;;) {
      node.dirty = true;
      if (node.names) {
        node.names.add(name);
        if (!this.isLeafSize(node)) this.split(node);
        return;
      }
      const c = name[node.prefix.length]!;
      let child = node.children!.get(c);
      if (!child) node.children!.set(c, (child = { exact: false, node: newNode(node.prefix + c) }));
      if (name.length === node.prefix.length + 1) {
        child.exact = true;
        return;
      }
      node = child.node;
      node.size++;
    }
  }

  private split(node: Node): void {
    const names = node.names!;
    node.names = undefined;
    node.children = new Map();
    for (const n of names) {
      // `node.size` already counts every name; place() counts them in the children.
      const c = n[node.prefix.length]!;
      let child = node.children.get(c);
      if (!child) node.children.set(c, (child = { exact: false, node: newNode(node.prefix + c) }));
      if (n.length === node.prefix.length + 1) child.exact = true;
      else {
        child.node.size++;
        this.place(child.node, n);
      }
    }
  }

  private gather(node: Node, out: Set<string>): void {
    if (node.names) {
      for (const n of node.names) out.add(n);
      return;
    }
    for (const [c, child] of node.children!) {
      if (child.exact) out.add(node.prefix + c);
      this.gather(child.node, out);
    }
  }

  add(name: string): void {
    if (!name.startsWith(this.prefix) || this.has(name)) return;
    this.count++;
    if (name === this.prefix) {
      this.exactRoot = true;
      this.top.dirty = true;
      return;
    }
    this.top.size++;
    this.place(this.top, name);
  }

  has(name: string): boolean {
    if (!name.startsWith(this.prefix)) return false;
    if (name === this.prefix) return this.exactRoot;
    let node = this.top;
    for (;;) {
      if (node.names) return node.names.has(name);
      const child = node.children!.get(name[node.prefix.length]!);
      if (!child) return false;
      if (name.length === node.prefix.length + 1) return child.exact;
      node = child.node;
    }
  }

  delete(name: string): void {
    if (!this.has(name)) return;
    this.count--;
    if (name === this.prefix) {
      this.exactRoot = false;
      this.top.dirty = true;
      return;
    }
    const path: Node[] = [];
    let node = this.top;
    for (;;) {
      path.push(node);
      node.size--;
      node.dirty = true;
      if (node.names) {
        node.names.delete(name);
        break;
      }
      const c = name[node.prefix.length]!;
      const child = node.children!.get(c)!;
      if (name.length === node.prefix.length + 1) {
        child.exact = false;
        if (child.node.size === 0) node.children!.delete(c);
        break;
      }
      node = child.node;
    }
    // Children left without names go.
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      const parent = path[i - 1]!;
      const c = n.prefix[n.prefix.length - 1]!;
      if (n.size === 0 && !parent.children?.get(c)?.exact) parent.children?.delete(c);
    }
    // The highest split node that fits in a leaf again becomes one.
    for (const n of path)
      if (n.children && this.isLeafSize(n)) {
        const names = new Set<string>();
        this.gather(n, names);
        n.children = undefined;
        n.names = names;
        n.dirty = true;
        break;
      }
  }

  private chainOf(p: string): string {
    return p === this.prefix ? this.root : `${this.root}-${p.slice(this.prefix.length)}`;
  }

  private direct(name: string): string {
    return `${this.dir} ${name} -g ${this.target(name)}`;
  }

  private dropChain(p: string): void {
    for (const q of this.emitted.get(p) ?? []) this.dropChain(q);
    this.emitted.delete(p);
    this.chains.delete(this.chainOf(p));
  }

  private emit(node: Node, force: boolean): void {
    if (!force && !node.dirty) return;
    node.dirty = false;
    const p = node.prefix;
    const rules: string[] = [];
    const children: Node[] = [];
    if (node === this.top && this.exactRoot) rules.push(this.direct(p));
    if (node.names) {
      for (const n of [...node.names].sort()) rules.push(this.direct(n));
    } else {
      for (const c of [...node.children!.keys()].sort()) {
        const child = node.children!.get(c)!;
        const q = p + c;
        if (child.exact) rules.push(this.direct(q));
        const rest = child.node.size;
        if (rest === 1) {
          const one = new Set<string>();
          this.gather(child.node, one);
          rules.push(this.direct(one.values().next().value!));
        } else if (rest > 1) {
          rules.push(`${this.dir} ${q}+ -g ${this.chainOf(q)}`);
          children.push(child.node);
        }
      }
    }
    rules.push(UNKNOWN);
    const before = this.emitted.get(p) ?? [];
    const now = children.map((n) => n.prefix);
    for (const q of before) if (!now.includes(q)) this.dropChain(q);
    this.emitted.set(p, now);
    const chain = this.chainOf(p);
    const prev = this.chains.get(chain);
    if (!prev || !sameList(prev, rules)) this.chains.set(chain, rules);
    for (const n of children) this.emit(n, force || !before.includes(n.prefix));
  }

  /** Writes the chains that changed since the last flush into the table. */
  flush(): void {
    this.emit(this.top, false);
  }
}

/** The dispatch chains for a set of names, from scratch. */
export function dispatchChains(
  root: string,
  names: readonly string[],
  prefix: string,
  dir: '-i' | '-o',
  target: (name: string) => string,
  leaf: number,
): Map<string, Rules> {
  const out = new Map<string, Rules>();
  const tree = new DispatchTree(root, prefix, dir, target, leaf, out);
  for (const n of names) tree.add(n);
  tree.flush();
  return out;
}
