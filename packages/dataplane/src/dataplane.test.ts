import { describe, expect, it } from 'vitest';
import {
  CommandError,
  InvalidNameError,
  RecordingRunner,
  assertInterfaceName,
  inNetns,
} from './index.js';

describe('inNetns', () => {
  it('uses ip -n for ip itself and ip netns exec for everything else', () => {
    expect(inNetns(['ip', 'route', 'show'], 'h1')).toEqual(['ip', '-n', 'h1', 'route', 'show']);
    expect(inNetns(['sysctl', '-w', 'a=b'], 'h1')).toEqual([
      'ip',
      'netns',
      'exec',
      'h1',
      'sysctl',
      '-w',
      'a=b',
    ]);
    expect(inNetns(['ip', 'link'], undefined)).toEqual(['ip', 'link']);
    expect(() => inNetns(['ip'], '../etc')).toThrow(InvalidNameError);
    expect(() => inNetns(['ip'], 'a b')).toThrow(InvalidNameError);
  });
});

describe('names', () => {
  it.each(['tap1234567890a', 'eth0', 'ns-1.2_3'])('accepts interface %s', (n) =>
    expect(assertInterfaceName(n)).toBe(n),
  );
  it.each(['', 'tap12345678901234', 'a b', 'a/b', '..', 'eth0;reboot', 'tap\0x'])(
    'rejects interface %j',
    (n) => expect(() => assertInterfaceName(n)).toThrow(InvalidNameError),
  );
});

describe('RecordingRunner', () => {
  it('records argv, namespace and stdin and answers from scripts', async () => {
    const r = new RecordingRunner()
      .on(['ip', '-json', 'route'], { stdout: '[]' })
      .on(['false'], { exitCode: 1, stderr: 'nope' });
    expect((await r.run(['ip', '-json', 'route', 'show'], { netns: 'h1' })).stdout).toBe('[]');
    await r.run(['ip', '-batch', '-'], { input: 'route add 10.0.0.1/32 dev tap1\n' });
    await expect(r.run(['false'])).rejects.toThrow(CommandError);
    expect(r.calls).toEqual([
      { argv: ['ip', '-json', 'route', 'show'], netns: 'h1', input: undefined },
      { argv: ['ip', '-batch', '-'], netns: undefined, input: 'route add 10.0.0.1/32 dev tap1\n' },
      { argv: ['false'], netns: undefined, input: undefined },
    ]);
    expect(r.callsOf('ip', '-batch')).toHaveLength(1);
  });

  it('validates like the real runner', async () => {
    const r = new RecordingRunner();
    await expect(r.run([])).rejects.toThrow(InvalidNameError);
    await expect(r.run(['ip'], { netns: 'bad name' })).rejects.toThrow(InvalidNameError);
  });
});
