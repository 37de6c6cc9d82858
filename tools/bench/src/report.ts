import { describeTargets, meetsTarget } from './measure.js';
import type { BenchmarkResult, BenchReport } from './types.js';

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (a >= 100) return n.toFixed(0);
  if (a >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

export function svgFileName(id: string): string {
  return `${id.replace(/[^A-Za-z0-9_.-]/g, '_')}.svg`;
}

/** A two-bar chart: Calyx vs the same-run baseline, with the ratio and the target. */
export function renderSvg(r: BenchmarkResult): string {
  const width = 720;
  const barMax = 400;
  const left = 170;
  const max = Math.max(r.value, r.baseline.value) || 1;
  const bars = [
    { label: 'Calyx', value: r.value, colour: '#2f7d4f' },
    { label: r.baseline.name, value: r.baseline.value, colour: '#8a8f98' },
  ];
  const ok = meetsTarget(r);
  const hasTarget = r.target !== null || r.absoluteTarget !== undefined;
  const targetText = hasTarget
    ? `target ${describeTargets(r)} — ${ok ? 'met' : 'MISSED'}`
    : 'no target';
  const rows = bars
    .map((b, i) => {
      const y = 44 + i * 34;
      const w = Math.max(1, (b.value / max) * barMax);
      const label = b.label.length > 24 ? `${b.label.slice(0, 23)}…` : b.label;
      return [
        `<text x="${left - 8}" y="${y + 16}" text-anchor="end" font-size="12">${esc(label)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="22" fill="${b.colour}"/>`,
        `<text x="${(left + w + 6).toFixed(1)}" y="${y + 16}" font-size="12">${esc(fmt(b.value))} ${esc(r.unit)}</text>`,
      ].join('');
    })
    .join('\n  ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="136" viewBox="0 0 ${width} 136" font-family="sans-serif">
  <rect width="100%" height="100%" fill="#fff"/>
  <text x="10" y="22" font-size="14" font-weight="bold">${esc(r.id)}</text>
  ${rows}
  <text x="10" y="126" font-size="12" fill="${ok ? '#2f7d4f' : '#b3261e'}">ratio ${esc(fmt(r.ratio))}× (${r.lowerIsBetter ? 'lower' : 'higher'} is better) · ${esc(targetText)}</text>
</svg>
`;
}

export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const lines = [
    '# Benchmarks',
    '',
    `Run ${report.date} on ${m.cpu} (${m.cores} cores, ${m.memoryGiB} GiB), ${m.platform} ${m.kernel}, Node ${m.node}.`,
    'Every figure is compared with a baseline measured in the same run: the raw tool reaching the same',
    'final state, or the peer the issue names. `ratio` = Calyx / baseline; the target bounds the ratio.',
    'Regenerate with `npm run bench` (or `npm run bench -- --only <id-substring>`).',
    '',
    '| benchmark | Calyx | baseline | ratio | target |',
    '|---|---|---|---|---|',
    ...report.results.map(
      (r) =>
        `| [${r.id}](#${r.id.replace(/[^a-z0-9-]/gi, '').toLowerCase()}) | ${fmt(r.value)} ${r.unit} | ${fmt(r.baseline.value)} ${r.unit} (${r.baseline.name}) | ${fmt(r.ratio)}× | ${
          r.target === null && r.absoluteTarget === undefined
            ? '—'
            : `${describeTargets(r)} ${meetsTarget(r) ? '✅' : '❌ missed'}`
        } |`,
    ),
    '',
  ];
  for (const r of report.results) {
    lines.push(`## ${r.id}`, '', r.description, '', `![${r.id}](${svgFileName(r.id)})`, '');
    if (r.details && Object.keys(r.details).length) {
      lines.push(
        '<details><summary>details</summary>',
        '',
        '```json',
        JSON.stringify(r.details, null, 2),
        '```',
        '',
        '</details>',
        '',
      );
    }
  }
  return lines.join('\n');
}

/** Replaces results with the same id, keeps the others (so a subset run updates the report). */
export function mergeResults(
  previous: BenchmarkResult[],
  fresh: BenchmarkResult[],
): BenchmarkResult[] {
  const ids = new Set(fresh.map((r) => r.id));
  return [...previous.filter((r) => !ids.has(r.id)), ...fresh].sort((a, b) =>
    a.id.localeCompare(b.id),
  );
}
