import { afterEach, describe, expect, it } from 'vitest';
import { HealthServer, ProgramMetrics, parsePrometheusText } from './index.js';

describe('HealthServer and ProgramMetrics', () => {
  const servers: HealthServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function serve(ready: () => boolean, metrics = new ProgramMetrics()) {
    const server = new HealthServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      live: () => ({ ok: true }),
      ready: () => (ready() ? { ok: true } : { ok: false, reasons: ['not in sync yet'] }),
    });
    servers.push(server);
    const { port } = await server.start();
    return { url: `http://127.0.0.1:${port}`, metrics };
  }

  it('answers /livez and /readyz with 200, or 503 and the reasons', async () => {
    let ready = false;
    const { url } = await serve(() => ready);
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    const notReady = await fetch(`${url}/readyz?verbose`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe('not in sync yet\n');
    ready = true;
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    expect((await fetch(`${url}/livez`, { method: 'POST' })).status).toBe(405);
  });

  it('serves metrics that parse: apply histograms, counters by outcome, gauges read at scrape', async () => {
    const metrics = new ProgramMetrics({ labels: { host: 'h1' } });
    let chains = 3;
    metrics.gauge('calyx_iptables_chains', 'Chains.', () => chains);
    metrics.gauge(
      'calyx_endpoints',
      'Endpoints by status.',
      () => [
        { labels: { status: 'up' }, value: 2 },
        { labels: { status: 'down' }, value: 1 },
      ],
      ['status'],
    );
    await metrics.observe('routes', async () => undefined);
    await expect(
      metrics.observe('routes', async () => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    const { url } = await serve(() => true, metrics);
    chains = 7;
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const samples = parsePrometheusText(await res.text());
    const find = (name: string, labels: Record<string, string> = {}) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value;
    expect(find('calyx_iptables_chains', { host: 'h1' })).toBe(7);
    expect(find('calyx_endpoints', { status: 'up' })).toBe(2);
    expect(find('calyx_endpoints', { status: 'down' })).toBe(1);
    expect(find('calyx_reconciles_total', { programmer: 'routes', result: 'ok' })).toBe(1);
    expect(find('calyx_reconciles_total', { programmer: 'routes', result: 'error' })).toBe(1);
    expect(find('calyx_programming_duration_seconds_count', { programmer: 'routes' })).toBe(2);
    expect(find('calyx_programming_duration_seconds_bucket', { le: '+Inf' })).toBe(2);
  });

  it('rejects text that is not the exposition format', () => {
    expect(() => parsePrometheusText('what is this')).toThrow(/not a Prometheus sample/);
    expect(parsePrometheusText('# HELP x y\nx{a="b\\"c"} 1.5\n')).toEqual([
      { name: 'x', labels: { a: 'b"c' }, value: 1.5 },
    ]);
  });
});
