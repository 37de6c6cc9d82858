import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CalyxError } from '@calyx/core';

/** One thing wrong with a configuration, and where the offending value came from. */
export interface ConfigIssue {
  /** Dotted path (`health.port`). */
  path: string;
  problem: string;
  /** `file <path>`, `env CALYX_AGENT_HEALTH__PORT`, `flag`, or `default`. */
  source: string;
}

export class ConfigError extends CalyxError {
  constructor(
    readonly issues: readonly ConfigIssue[],
    what = 'configuration',
  ) {
    super(
      'CONFIG_INVALID',
      `invalid ${what}:\n${issues.map((i) => `  ${i.path || '(top)'}: ${i.problem} (from ${i.source})`).join('\n')}`,
    );
  }
}

export interface LoadConfigOptions {
  /** A JSON or YAML file (by extension; `.json` is JSON, anything else YAML, which includes JSON). */
  file?: string;
  /** Environment to read (default none): `<prefix>HEALTH__PORT=9099` sets `health.port`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** e.g. `CALYX_AGENT_`. */
  envPrefix?: string;
  /** Defaults known only at run time (the machine's host name): lose to everything else. */
  defaults?: Record<string, unknown>;
  /** Values from flags: win over everything else. Undefined values are ignored. */
  overrides?: Record<string, unknown>;
  /** Named in the error message (`calyx-agent configuration`). */
  what?: string;
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `HEALTH__PORT` → `health.port`; `RESYNC_INTERVAL_MS` → `resyncIntervalMs`. */
export function envKeyToPath(key: string): string[] {
  return key
    .toLowerCase()
    .split('__')
    .map((seg) => seg.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
}

/** Env values: JSON when they parse as JSON (numbers, booleans, arrays, objects), else strings. */
function envValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let t = tree;
  for (const seg of path.slice(0, -1)) {
    if (!isTree(t[seg])) t[seg] = {};
    t = t[seg] as Tree;
  }
  t[path[path.length - 1]!] = value;
}

/** Deep merge: objects merge, everything else (arrays included) replaces. */
function merge(
  into: Tree,
  from: Tree,
  sources: Map<string, string>,
  source: string,
  at = '',
): void {
  for (const [k, v] of Object.entries(from)) {
    if (v === undefined) continue;
    const path = at ? `${at}.${k}` : k;
    if (isTree(v) && isTree(into[k])) merge(into[k], v, sources, source, path);
    else {
      into[k] = isTree(v) ? structuredClone(v) : v;
      sources.set(path, source);
    }
  }
}

/**
 * Builds a program's configuration: the schema's defaults, then the file, then the
 * environment, then flags. Everything is validated together; a ConfigError lists every
 * problem with the source of the value (never just the first one).
 */
export async function loadConfig<S extends z.ZodType>(
  schema: S,
  opts: LoadConfigOptions = {},
): Promise<z.output<S>> {
  const tree: Tree = {};
  const sources = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  if (opts.defaults) merge(tree, opts.defaults, sources, 'default');
  if (opts.file) {
    let text: string;
    try {
      text = await readFile(opts.file, 'utf8');
    } catch (e) {
      throw new ConfigError(
        [{ path: '', problem: (e as Error).message, source: `file ${opts.file}` }],
        opts.what,
      );
    }
    let parsed: unknown;
    try {
      parsed = opts.file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    } catch (e) {
      throw new ConfigError(
        [
          {
            path: '',
            problem: `does not parse: ${(e as Error).message}`,
            source: `file ${opts.file}`,
          },
        ],
        opts.what,
      );
    }
    if (parsed !== null && parsed !== undefined) {
      if (!isTree(parsed))
        throw new ConfigError(
          [{ path: '', problem: 'expected a mapping of settings', source: `file ${opts.file}` }],
          opts.what,
        );
      merge(tree, parsed, sources, `file ${opts.file}`);
    }
  }
  if (opts.env && opts.envPrefix) {
    const fromEnv: Tree = {};
    const envSources = new Map<string, string>();
    for (const [k, raw] of Object.entries(opts.env)) {
      if (!k.startsWith(opts.envPrefix) || raw === undefined) continue;
      const path = envKeyToPath(k.slice(opts.envPrefix.length));
      setPath(fromEnv, path, envValue(raw));
      envSources.set(path.join('.'), `env ${k}`);
    }
    merge(tree, fromEnv, sources, 'env');
    for (const [p, s] of envSources) sources.set(p, s);
  }
  if (opts.overrides) merge(tree, opts.overrides, sources, 'flag');
  const r = schema.safeParse(tree);
  if (r.success) return r.data as z.output<S>;
  // The source of a path: its own, or its nearest set ancestor's (a value inside an object).
  const sourceOf = (path: readonly PropertyKey[]): string => {
    for (let p = path.length; p >= 0; p--) {
      const s = sources.get(path.slice(0, p).map(String).join('.'));
      if (s) return s;
    }
    return 'default';
  };
  for (const i of r.error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const k of i.keys)
        issues.push({
          path: [...i.path, k].map(String).join('.'),
          problem: 'unknown setting',
          source: sourceOf([...i.path, k]),
        });
      continue;
    }
    issues.push({
      path: i.path.map(String).join('.'),
      problem: i.message,
      source: sourceOf(i.path),
    });
  }
  throw new ConfigError(issues, opts.what);
}
