import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { silentLogger } from '@calyx/core';
import { flagNumber, flagString, runProgram, serviceOf, type ProgramSpec } from './index.js';

const schema = z.strictObject({
  datastore: z.string().min(1),
  port: z.number().int().min(1).default(80),
});

/** A program whose service records what happened. */
function program(events: string[], opts: { openFails?: boolean } = {}): ProgramSpec<typeof schema> {
  return {
    name: 'calyx-test',
    usage: 'usage: calyx-test [--datastore URL] [--port N]',
    options: { datastore: { type: 'string' }, port: { type: 'string' } },
    schema,
    envPrefix: 'CALYX_TEST_',
    overrides: (f) => ({ datastore: flagString(f.datastore), port: flagNumber(f.port) }),
    logger: () => silentLogger,
    open: async (s) => {
      if (opts.openFails) throw new Error('no datastore');
      events.push(`open ${s.datastore}:${s.port}`);
      return serviceOf(
        {
          start: async () => void events.push('start'),
          close: async () => void events.push('close'),
        },
        { close: async () => void events.push('store closed') },
      );
    },
  };
}

const io = (argv: string[], env: Record<string, string> = {}) => {
  const out: string[] = [];
  const err: string[] = [];
  const signals = new EventEmitter();
  return {
    out,
    err,
    signals,
    io: { argv, env, out: (t: string) => out.push(t), err: (t: string) => err.push(t), signals },
  };
};

describe('runProgram', () => {
  it('flags win over the environment; runs until SIGTERM, then closes the service and its store', async () => {
    const events: string[] = [];
    const x = io(['--datastore', 'memory://a', '--port', '8080'], {
      CALYX_TEST_DATASTORE: 'memory://env',
      CALYX_TEST_PORT: '9',
    });
    const code = runProgram(program(events), x.io);
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['open memory://a:8080', 'start']);
    x.signals.emit('SIGTERM');
    expect(await code).toBe(0);
    expect(events).toEqual(['open memory://a:8080', 'start', 'close', 'store closed']);
  });

  it('exits 2 on an unknown flag or bad settings, naming the problem, before opening anything', async () => {
    const events: string[] = [];
    const bad = io(['--nope']);
    expect(await runProgram(program(events), bad.io)).toBe(2);
    expect(bad.err.join('\n')).toMatch(/--nope[\s\S]*usage: calyx-test/);
    const invalid = io(['--datastore', 'memory://a', '--port', 'x']);
    expect(await runProgram(program(events), invalid.io)).toBe(2);
    expect(invalid.err.join('\n')).toMatch(/calyx-test configuration[\s\S]*port/);
    expect(events).toEqual([]);
  });

  it('--help prints the usage (exit 0); a program that cannot open exits 1', async () => {
    const help = io(['--help']);
    expect(await runProgram(program([]), help.io)).toBe(0);
    expect(help.out).toEqual(['usage: calyx-test [--datastore URL] [--port N]']);
    const failing = io(['--datastore', 'memory://a']);
    expect(await runProgram(program([], { openFails: true }), failing.io)).toBe(1);
  });
});
