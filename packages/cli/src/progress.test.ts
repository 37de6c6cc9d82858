import { describe, expect, it } from 'vitest';
import { Sink } from './harness.js';
import { Progress, progressLine } from './progress.js';

describe('progress', () => {
  it('draws a bar of the done fraction', () => {
    expect(progressLine('applying', 5, 10, 28)).toBe('applying [#####-----] 5/10');
    expect(progressLine('x', 0, 0, 10)).toBe('x [##########] 0/0');
  });

  it('draws on a terminal, at most every interval and always at the end, then erases itself', () => {
    const tty = new Sink(true);
    let now = 0;
    const p = new Progress(tty, 'work', 3, { now: () => now, intervalMs: 100 });
    p.tick();
    now = 50;
    p.tick(); // too soon: not drawn
    now = 60;
    p.tick(); // the last one is always drawn
    p.done();
    const frames = tty.text.split('\r\x1b[K').filter(Boolean);
    expect(frames).toEqual([
      expect.stringMatching(/^work \[#+-+\] 1\/3$/),
      expect.stringMatching(/^work \[#+\] 3\/3$/),
    ]);
    expect(tty.text.endsWith('\r\x1b[K')).toBe(true);
  });

  it('writes nothing when the stream is not a terminal', () => {
    const pipe = new Sink(false);
    const p = new Progress(pipe, 'work', 2);
    p.tick(2);
    p.phase('more');
    p.done();
    expect(pipe.text).toBe('');
    expect(p.enabled).toBe(false);
  });
});
