import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import {
  CommandError,
  CommandNotFoundError,
  CommandTimeoutError,
  ExecCommandRunner,
  writeFileAtomic,
} from './index.js';

const runner = new ExecCommandRunner();

describeIntegration(
  'ExecCommandRunner (real processes)',
  { commands: ['ip', 'sleep', 'cat'] },
  () => {
    it('runs argv without a shell and returns output', async () => {
      const r = await runner.run(['echo', 'a; rm -rf /', '$(id)']);
      expect(r.stdout).toBe('a; rm -rf / $(id)\n');
      expect(r.exitCode).toBe(0);
    });

    it('feeds stdin', async () => {
      expect((await runner.run(['cat'], { input: 'line1\nline2\n' })).stdout).toBe(
        'line1\nline2\n',
      );
    });

    it('fails with CommandError carrying exit code and stderr', async () => {
      const e = await runner.run(['ip', 'route', 'get', 'not-an-address']).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(CommandError);
      expect((e as CommandError).exitCode).not.toBe(0);
      expect((e as CommandError).stderr.length).toBeGreaterThan(0);
      expect((await runner.run(['sh', '-c', 'exit 3'], { okExitCodes: [0, 3] })).exitCode).toBe(3);
    });

    it('reports a missing command and a timeout with their own types', async () => {
      await expect(runner.run(['calyx-no-such-command'])).rejects.toThrow(CommandNotFoundError);
      await expect(runner.run(['sleep', '5'], { timeoutMs: 100 })).rejects.toThrow(
        CommandTimeoutError,
      );
    });

    it('streams a long-running child and stops it', async () => {
      const child = runner.spawn(['sh', '-c', 'for i in 1 2 3; do echo $i; done; exec sleep 10']);
      const lines: string[] = [];
      for await (const l of child.lines) {
        lines.push(l);
        if (lines.length === 3) break;
      }
      child.kill();
      const exit = await child.exited;
      expect(lines).toEqual(['1', '2', '3']);
      expect(exit.signal).toBe('SIGTERM');
    });

    it('hands stderr over as lines too when asked, and ends when both streams end', async () => {
      const child = runner.spawn(['sh', '-c', 'echo out; echo err >&2; sleep 0.05; echo out2'], {
        stderrToLines: true,
      });
      const lines: string[] = [];
      for await (const l of child.lines) lines.push(l);
      expect(lines.sort()).toEqual(['err', 'out', 'out2']);
      expect((await child.exited).exitCode).toBe(0);
    });

    it('writes files atomically', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'calyx-atomic-'));
      try {
        await writeFileAtomic(join(dir, 'f.conf'), 'one');
        await writeFileAtomic(join(dir, 'f.conf'), 'two');
        expect(await readFile(join(dir, 'f.conf'), 'utf8')).toBe('two');
      } finally {
        await rm(dir, { recursive: true });
      }
    });
  },
);

describeIntegration(
  'ExecCommandRunner in a network namespace',
  { root: true, commands: ['ip'] },
  () => {
    const ns = `cxrun${randomBytes(3).toString('hex')}`;
    beforeAll(async () => {
      await runner.run(['ip', 'netns', 'add', ns]);
    });
    afterAll(async () => {
      await runner.run(['ip', 'netns', 'del', ns]);
    });

    it('runs ip and other commands inside the namespace only', async () => {
      await runner.run(
        ['ip', 'link', 'add', 'cxprobe0', 'type', 'veth', 'peer', 'name', 'cxprobe1'],
        { netns: ns },
      );
      const inside = JSON.parse(
        (await runner.run(['ip', '-json', 'link', 'show'], { netns: ns })).stdout,
      ) as { ifname: string }[];
      expect(inside.map((l) => l.ifname).sort()).toEqual(['cxprobe0', 'cxprobe1', 'lo']);
      const outside = JSON.parse((await runner.run(['ip', '-json', 'link', 'show'])).stdout) as {
        ifname: string;
      }[];
      expect(outside.map((l) => l.ifname)).not.toContain('cxprobe0');
      const fwd = await runner.run(['cat', '/proc/sys/net/ipv4/ip_forward'], { netns: ns });
      expect(fwd.stdout.trim()).toBe('0');
    });
  },
);
