/** A table cell: null and undefined print as '-', arrays as comma-separated lists. */
export type Cell = string | number | boolean | null | undefined | readonly (string | number)[];

export function cellText(c: Cell): string {
  if (c === null || c === undefined || c === '') return '-';
  if (Array.isArray(c)) return c.length ? c.join(',') : '-';
  return String(c);
}

/**
 * Columns separated by two spaces, padded to the widest cell, headers in capitals, no
 * trailing blanks: `awk '{print $2}'` and `column -t` read it.
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
): string {
  const text = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)].join('\n') + '\n';
}

/** `key: value` lines with the keys aligned. */
export function renderFields(fields: readonly (readonly [string, Cell])[]): string {
  const w = Math.max(0, ...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${cellText(v)}`).join('\n') + '\n';
}
