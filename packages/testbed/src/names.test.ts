import { describe, expect, it } from 'vitest';
import { creatorPid, newRunId } from './names.js';

describe('run ids', () => {
  it('encode the creating PID so stale namespaces can be recognised', () => {
    const id = newRunId(123456);
    expect(id).toMatch(/^cx[0-9a-z]+[0-9a-f]{4}$/);
    expect(creatorPid(`${id}-h1`)).toBe(123456);
    expect(creatorPid('someone-elses-ns')).toBeUndefined();
    expect(newRunId()).not.toBe(newRunId());
  });
});
