import { randomBytes } from 'node:crypto';

/** Every namespace of a run starts with `cx<creator pid, base36><4 hex>`: unique per run, traceable to its creator. */
export function newRunId(pid = process.pid): string {
  return `cx${pid.toString(36)}${randomBytes(2).toString('hex')}`;
}

const RUN_ID = /^cx([0-9a-z]+)([0-9a-f]{4})-/;

/** The creator PID encoded in a namespace name of ours, or undefined for names that are not ours. */
export function creatorPid(netns: string): number | undefined {
  const m = RUN_ID.exec(netns);
  return m ? parseInt(m[1]!, 36) : undefined;
}
