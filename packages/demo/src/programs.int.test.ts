import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { freePort, startRedis, Testbed, type StartedRedis, type TestHost } from '@calyx/testbed';

const bin = (pkg: string, name: string) =>
  fileURLToPath(new URL(`../../${pkg}/dist/bin/${name}.js`, import.meta.url));
const PROGRAMS = [
  { name: 'calyx-agent', path: bin('agent', 'calyx-agent') },
  { name: 'calyx-dhcp-agent', path: bin('dhcp-agent', 'calyx-dhcp-agent') },
] as const;

// What a service manager (systemd) sees: stopping is exit 0, during start as well as after.
describeIntegration(
  'calyx-agent and calyx-dhcp-agent as programs: stop signals and exit codes',
  {
    root: true,
    commands: ['ip', 'bird', 'birdc', 'iptables-restore', 'ipset', 'dnsmasq', 'redis-server'],
  },
  () => {
    let bed: Testbed;
    let host: TestHost;
    /** A Redis that wants a password the programs are not given. */
    let guarded: StartedRedis;
    beforeAll(async () => {
      bed = await Testbed.create();
      host = await bed.addHost('h1');
      guarded = await startRedis({ extraArgs: ['--requirepass', 'not-given'] });
    });
    afterAll(async () => {
      await bed?.dispose();
      await guarded?.stop();
    });

    const start = async (program: (typeof PROGRAMS)[number], datastore: string) => {
      const health = await freePort();
      const child = bed.runner.spawn(
        [
          process.execPath,
          program.path,
          '--datastore',
          datastore,
          '--hostname',
          'h1',
          '--netns',
          host.netns,
          '--state-dir',
          await bed.tempDir(program.name),
          '--health-address',
          `127.0.0.1:${health}`,
          '--log-level',
          'info',
        ],
        { stderrToLines: true },
      );
      const log: string[] = [];
      const drained = (async () => {
        for await (const l of child.lines) log.push(l);
      })();
      const said = (msg: string) => log.some((l) => l.includes(`"msg":"${msg}"`));
      /** The exit, once everything it wrote has been read ('exit' may come before the last lines). */
      const exited = async () => {
        const exit = await child.exited;
        await drained;
        return exit;
      };
      return { child, log, said, health, exited };
    };

    for (const program of PROGRAMS) {
      it(`${program.name}: SIGTERM while it cannot reach its datastore yet stops it with exit 0`, async () => {
        // Nothing listens there: the program keeps trying to get in sync.
        const nobody = await freePort();
        const p = await start(program, `etcd://127.0.0.1:${nobody}`);
        await eventually(() => p.said('starting'), { what: `${program.name} starting` });
        // Its health server answers (it starts first): not ready, it has no view yet.
        const ready = await eventually(
          async () =>
            (await fetch(`http://127.0.0.1:${p.health}/readyz`).catch(() => undefined))?.status,
          { what: `${program.name} health server` },
        );
        expect(ready, p.log.join('\n')).toBe(503);
        p.child.kill('SIGTERM');
        const exit = await p.exited();
        expect(exit, p.log.join('\n')).toMatchObject({ exitCode: 0, signal: null });
        expect(p.said('stopping before start completed')).toBe(true);
      });

      it(`${program.name}: a datastore that refuses its credentials stops it at start with exit 1, saying why`, async () => {
        const p = await start(program, `redis://127.0.0.1:${guarded.port}/?namespace=programs`);
        const exit = await p.exited();
        expect(exit, p.log.join('\n')).toMatchObject({ exitCode: 1, signal: null });
        const why = p.log.find((l) => l.includes('"msg":"could not start"'));
        expect(why, p.log.join('\n')).toMatch(/redis refused: NOAUTH/);
      });

      it(`${program.name}: SIGTERM once ready stops it with exit 0`, async () => {
        const p = await start(program, 'memory://programs');
        await eventually(
          async () =>
            (await fetch(`http://127.0.0.1:${p.health}/readyz`).catch(() => undefined))?.status ===
            200,
          { timeoutMs: 20_000, what: `${program.name} ready` },
        );
        p.child.kill('SIGTERM');
        const exit = await p.exited();
        expect(exit, p.log.join('\n')).toMatchObject({ exitCode: 0, signal: null });
        expect(p.said('stopping')).toBe(true);
      });
    }
  },
);
