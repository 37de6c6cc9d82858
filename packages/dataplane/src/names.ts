import { InvalidNameError } from './errors.js';

function check(kind: string, value: string, re: RegExp, rule: string): string {
  if (typeof value !== 'string' || !re.test(value))
    throw new InvalidNameError(kind, String(value), rule);
  return value;
}

/** Linux interface names: 1-15 bytes of [A-Za-z0-9_.-], not '.' or '..'. */
export function assertInterfaceName(name: string): string {
  check('interface name', name, /^[A-Za-z0-9_.-]{1,15}$/, '1-15 characters of [A-Za-z0-9_.-]');
  if (name === '.' || name === '..')
    throw new InvalidNameError('interface name', name, "not '.' or '..'");
  return name;
}

/** Network namespace names (files under /run/netns). */
export function assertNetnsName(name: string): string {
  return check(
    'network namespace',
    name,
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
    '1-64 characters of [A-Za-z0-9_.-], starting alphanumeric',
  );
}

/** One path component we create (config, pid, lease files). */
export function assertFileName(name: string): string {
  check(
    'file name',
    name,
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
    '1-128 characters of [A-Za-z0-9_.-], not starting with a dot or dash',
  );
  return name;
}

/** An absolute path made of safe components. */
export function assertAbsolutePath(path: string): string {
  if (
    typeof path !== 'string' ||
    !path.startsWith('/') ||
    path.includes('\0') ||
    path.split('/').some((c) => c === '..')
  ) {
    throw new InvalidNameError('path', String(path), "absolute, without '..' or NUL");
  }
  return path;
}

/** Every argv element is a string without NUL: the argv goes to execve as is, never to a shell. */
export function assertArgv(argv: readonly string[]): void {
  if (!Array.isArray(argv) || argv.length === 0)
    throw new InvalidNameError('argv', String(argv), 'a non-empty array');
  for (const a of argv) {
    if (typeof a !== 'string' || a.includes('\0'))
      throw new InvalidNameError('argument', String(a), 'a string without NUL');
  }
}
