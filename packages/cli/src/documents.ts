import { LineCounter, isSeq, parseAllDocuments, stringify } from 'yaml';
import { KIND_NAMES, keyOf, safeParseResource, type Kind, type ResourceOf } from '@calyx/model';
import { DERIVED_KINDS, idOf, kindOfDocument } from './kinds.js';

// The document format: one resource per document, `kind` first, then the resource's fields
// exactly as stored (`{kind: Network, id: n1, mtu: 1500, …}`). `get -o yaml` writes it (a
// multi-document YAML stream), `get -o json` writes one object or an array of them, and
// `apply -f` reads either back.

/** A document as read, before validation. */
export interface SourceDocument {
  /** 1-based position in the input (array items and YAML documents counted alike). */
  index: number;
  /** Line where it starts, when known (YAML). */
  line?: number;
  value: unknown;
}

/** A valid document: a resource of a kind, normalised by its schema. */
export interface ResourceDocument<K extends Kind = Kind> {
  index: number;
  line?: number;
  kind: K;
  value: ResourceOf<K>;
  /** Its datastore key. */
  key: string;
  /** Its id (name, cidr, …). */
  id: string;
}

export interface DocumentProblem {
  index?: number;
  line?: number;
  message: string;
}

export function whereOf(p: { index?: number; line?: number }): string {
  if (p.index === undefined) return p.line !== undefined ? `line ${p.line}` : 'input';
  return `document ${p.index}${p.line !== undefined ? ` (line ${p.line})` : ''}`;
}

export function describeProblem(p: DocumentProblem): string {
  return `${whereOf(p)}: ${p.message}`;
}

/** Splits a file's text into documents: JSON (an object or an array of them) or YAML (multi-document). */
export function readDocuments(text: string): {
  docs: SourceDocument[];
  problems: DocumentProblem[];
} {
  const docs: SourceDocument[] = [];
  const problems: DocumentProblem[] = [];
  if (/^\s*[[{]/.test(text)) {
    try {
      const parsed: unknown = JSON.parse(text);
      const list = Array.isArray(parsed) ? parsed : [parsed];
      list.forEach((value, i) => docs.push({ index: i + 1, value }));
      return { docs, problems };
    } catch (e) {
      // YAML flow style (`{kind: Network, id: n1}`) looks like JSON too.
      const yaml = readYaml(text);
      if (yaml.problems.length === 0) return yaml;
      return { docs, problems: [{ message: `not valid JSON: ${(e as Error).message}` }] };
    }
  }
  return readYaml(text);
}

function readYaml(text: string): { docs: SourceDocument[]; problems: DocumentProblem[] } {
  const docs: SourceDocument[] = [];
  const problems: DocumentProblem[] = [];
  const lineCounter = new LineCounter();
  const lineAt = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  for (const doc of parseAllDocuments(text, { lineCounter })) {
    if (doc.errors.length) {
      for (const e of doc.errors)
        problems.push({ line: e.linePos?.[0]?.line, message: `not valid YAML: ${e.message}` });
      continue;
    }
    const contents = doc.contents;
    const value: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (value === null || value === undefined) continue; // an empty document (`---` at the end)
    if (isSeq(contents) && Array.isArray(value)) {
      value.forEach((item: unknown, i) =>
        docs.push({
          index: docs.length + 1,
          line: lineAt((contents.items[i] as { range?: [number] } | undefined)?.range?.[0]),
          value: item,
        }),
      );
    } else {
      docs.push({ index: docs.length + 1, line: lineAt(contents?.range?.[0]), value });
    }
  }
  return { docs, problems };
}

/**
 * Validates every document against its kind's schema (nothing stops at the first problem),
 * and finds documents that name the same resource twice.
 */
export function validateDocuments(docs: readonly SourceDocument[]): {
  valid: ResourceDocument[];
  problems: DocumentProblem[];
} {
  const valid: ResourceDocument[] = [];
  const problems: DocumentProblem[] = [];
  const seen = new Map<string, ResourceDocument>();
  for (const d of docs) {
    const at = { index: d.index, ...(d.line !== undefined ? { line: d.line } : {}) };
    if (d.value === null || typeof d.value !== 'object' || Array.isArray(d.value)) {
      problems.push({ ...at, message: 'must be an object with a kind and the fields' });
      continue;
    }
    const { kind: kindField, ...fields } = d.value as Record<string, unknown>;
    if (kindField === undefined) {
      problems.push({ ...at, message: `kind is missing (one of ${KIND_NAMES.join(', ')})` });
      continue;
    }
    const kind = kindOfDocument(kindField);
    if (!kind) {
      problems.push({
        ...at,
        message: `kind ${JSON.stringify(kindField)} is not a kind (one of ${KIND_NAMES.join(', ')})`,
      });
      continue;
    }
    if (DERIVED_KINDS.has(kind)) {
      problems.push({
        ...at,
        message: `${kind} records are written with their Endpoint: give the Endpoint instead`,
      });
      continue;
    }
    const r = safeParseResource(kind, fields);
    if (!r.ok) {
      problems.push({ ...at, message: r.error.message });
      continue;
    }
    const doc: ResourceDocument = {
      ...at,
      kind,
      value: r.value,
      key: keyOf(kind, r.value),
      id: idOf(kind, r.value),
    };
    // An endpoint is one resource whatever its host: two documents for it would fight.
    const identity = kind === 'Endpoint' ? `Endpoint ${doc.id}` : doc.key;
    const first = seen.get(identity);
    if (first) {
      problems.push({
        ...at,
        message: `${kind} ${doc.id} is also ${whereOf(first)}`,
      });
      continue;
    }
    seen.set(identity, doc);
    valid.push(doc);
  }
  return { valid, problems };
}

/** A resource as a document: `kind` first, then its fields. */
export function toDocument(kind: Kind, value: unknown): Record<string, unknown> {
  return { kind, ...(value as Record<string, unknown>) };
}

/** Documents as JSON (one object when `single`, else an array) or as a YAML stream. */
export function renderDocuments(
  docs: readonly Record<string, unknown>[],
  format: 'json' | 'yaml',
  opts: { single?: boolean } = {},
): string {
  if (format === 'json')
    return `${JSON.stringify(opts.single && docs.length === 1 ? docs[0] : docs, null, 2)}\n`;
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

/** Any value (reports, status) as JSON or YAML. */
export function renderValue(value: unknown, format: 'json' | 'yaml'): string {
  const plain = JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as unknown;
  return format === 'json'
    ? `${JSON.stringify(plain, null, 2)}\n`
    : stringify(plain, { lineWidth: 0 });
}
