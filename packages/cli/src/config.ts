import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssue, toValidationIssues } from '@calyx/model';
import { UsageError } from './exit-codes.js';

const URL_FORM =
  'memory://name, etcd://host:port[,host:port…][/namespace], etcds://…?ca=&cert=&key=';

const datastoreUrlSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[a-z][a-z0-9+.-]*:\/\/\S*$/i, { error: `is not a datastore URL (${URL_FORM})` });

/** `--config <file>` (JSON or YAML). */
export const configSchema = z.strictObject({
  /** The datastore URL. */
  datastore: datastoreUrlSchema,
  /** Defaults for `node status`: where the host's BIRD keeps its control socket, and its namespace. */
  birdStateDir: z
    .string({ error: 'must be a string' })
    .startsWith('/', { error: 'must be an absolute path' })
    .optional(),
  netns: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'is not a network namespace name' })
    .optional(),
});
export type CalyxctlConfig = z.output<typeof configSchema>;

/** Parses and validates a config file's text; UsageError naming the file, field and value. */
export function parseConfig(text: string, file: string): CalyxctlConfig {
  let raw: unknown;
  try {
    raw = /^\s*\{/.test(text) ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new UsageError(
      `config file ${file}: not valid JSON or YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  const r = configSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issues = toValidationIssues(r.error, raw, 'the config file');
    const text = issues.map((i) =>
      i.problem === 'is missing' ? `${i.field} is missing` : formatIssue(i),
    );
    throw new UsageError(`config file ${file}: ${text.join('; ')}`);
  }
  return r.data;
}

export async function loadConfig(file: string, cwd: string): Promise<CalyxctlConfig> {
  const path = isAbsolute(file) ? file : resolve(cwd, file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`config file ${file}: ${(e as NodeJS.ErrnoException).message}`);
  }
  return parseConfig(text, file);
}

/** Where the datastore URL came from, for messages. */
export interface DatastoreChoice {
  url: string;
  from: string;
}

/**
 * The datastore to use: `--datastore`, else the `--config` file's `datastore:`, else
 * `$CALYX_DATASTORE`. UsageError when none is given or the URL is malformed.
 */
export function chooseDatastore(
  flag: string | undefined,
  config: CalyxctlConfig | undefined,
  configFile: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): DatastoreChoice {
  const pick: DatastoreChoice | undefined =
    flag !== undefined
      ? { url: flag, from: '--datastore' }
      : config
        ? { url: config.datastore, from: `config file ${configFile ?? ''}`.trim() }
        : env.CALYX_DATASTORE
          ? { url: env.CALYX_DATASTORE, from: '$CALYX_DATASTORE' }
          : undefined;
  if (!pick)
    throw new UsageError(
      `no datastore: pass --datastore <url>, --config <file> with 'datastore:', or set CALYX_DATASTORE (${URL_FORM})`,
    );
  const r = datastoreUrlSchema.safeParse(pick.url);
  if (!r.success)
    throw new UsageError(`${pick.from}: ${JSON.stringify(pick.url)} ${r.error.issues[0]!.message}`);
  return pick;
}
