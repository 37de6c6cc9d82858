import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '@calyx/config';
import { agentConfigFromSettings, agentSettingsSchema } from './index.js';

const example = fileURLToPath(new URL('../../../docs/deploy/agent.yaml', import.meta.url));

describe('calyx-agent settings', () => {
  it('accepts the documented example file (docs/deploy/agent.yaml)', async () => {
    const s = await loadConfig(agentSettingsSchema, {
      file: example,
      defaults: { hostname: 'compute-1' },
    });
    const c = agentConfigFromSettings(s);
    expect(c).toMatchObject({
      hostname: 'compute-1',
      livenessTtlSeconds: 10,
      health: { host: '127.0.0.1', port: 9099 },
      hostServices: [{ protocol: 'tcp', port: 80, destination: '169.254.169.254' }],
    });
  });

  it('takes the environment over the file, and turns health off with false', async () => {
    const s = await loadConfig(agentSettingsSchema, {
      file: example,
      env: {
        CALYX_AGENT_HOSTNAME: 'compute-9',
        CALYX_AGENT_LIVENESS_TTL_SECONDS: '30',
        CALYX_AGENT_HEALTH: 'false',
      },
      envPrefix: 'CALYX_AGENT_',
    });
    const c = agentConfigFromSettings(s);
    expect(c.hostname).toBe('compute-9');
    expect(c.livenessTtlSeconds).toBe(30);
    expect(c.health).toBeUndefined();
  });

  it('rejects bad settings with every problem named', async () => {
    const e = await loadConfig(agentSettingsSchema, {
      overrides: {
        hostname: 'Not_A_Host',
        hostServices: ['tcp:99999', 'icmp:1'],
        iptablesBackend: 'bpf',
      },
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).issues.map((i) => i.path).sort()).toEqual([
      'datastore',
      'hostServices.0',
      'hostServices.1',
      'hostname',
      'iptablesBackend',
    ]);
  });
});
