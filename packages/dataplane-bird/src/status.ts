/** One line of `birdc show protocols`. */
export interface BirdProtocolStatus {
  name: string;
  proto: string;
  table: string;
  /** `up`, `start`, `down`, `flush`… */
  state: string;
  since: string;
  /** For BGP: `Established`, `Idle`, `Active`, `Connect`, … followed by details. */
  info: string;
  /** BGP sessions: whether it is Established. */
  established: boolean;
}

const LINE =
  /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|\d\d:\d\d:\d\d(?:\.\d+)?)\s*(.*)$/;

export function parseShowProtocols(text: string): BirdProtocolStatus[] {
  const out: BirdProtocolStatus[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('BIRD ') || line.startsWith('Name ')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const info = m[6]!.trim().replace(/\s{2,}/g, ' ');
    out.push({
      name: m[1]!,
      proto: m[2]!,
      table: m[3]!,
      state: m[4]!,
      since: m[5]!,
      info,
      established: m[2] === 'BGP' && info.startsWith('Established'),
    });
  }
  return out;
}

/** `birdc show route count` → routes per table. */
export function parseRouteCount(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(/(\d+) of \d+ routes for \d+ networks in table (\S+)/g))
    out.set(m[2]!, Number(m[1]));
  return out;
}
