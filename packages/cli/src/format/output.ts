import type { Kind, ResourceOf } from '@calyx/model';
import { renderDocuments, toDocument } from '../documents.js';
import { tableOf } from './columns.js';
import { renderTable } from './table.js';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface KindGroup<K extends Kind = Kind> {
  kind: K;
  items: readonly ResourceOf<K>[];
}

/**
 * Resources in the chosen format (pure). Table: one table per kind (titled when there are
 * several). JSON and YAML: documents that `apply -f` takes back; JSON is one object when
 * `single` (a resource asked for by id), else an array.
 */
export function renderResources(
  groups: readonly KindGroup[],
  format: OutputFormat,
  opts: { single?: boolean } = {},
): string {
  if (format !== 'table') {
    const docs = groups.flatMap((g) => g.items.map((r) => toDocument(g.kind, r)));
    return renderDocuments(docs, format, opts);
  }
  const titled = groups.length > 1;
  return groups
    .filter((g) => !titled || g.items.length > 0)
    .map((g) => {
      const t = tableOf(g.kind, g.items);
      return `${titled ? `${g.kind}\n` : ''}${renderTable(t.headers, t.rows)}`;
    })
    .join('\n');
}
