import { parse as parseYaml, YAMLParseError } from 'yaml';
import { ConfigError, ConfigErrorCodes } from '../errors.js';
import { describeProblems, validateConfig, type ConfigProblem, type Infer, type Spec } from './schema.js';

/**
 * YAML text → validated, frozen config, or one ConfigError listing every problem. `source` names the file in
 * messages. The caller reads the file and passes the environment (for `${env:NAME}`).
 */
export function parseConfigText<S extends Spec>(
  spec: S,
  text: string,
  source: string,
  env: Record<string, string | undefined>,
  crossCheck?: (cfg: Infer<S>) => ConfigProblem[],
): Infer<S> {
  let doc: unknown;
  try {
    doc = text.trim() === '' ? {} : parseYaml(text, { prettyErrors: true });
  } catch (e) {
    const detail = e instanceof YAMLParseError ? e.message : String(e);
    throw new ConfigError(ConfigErrorCodes.UNREADABLE, `${source} is not valid YAML: ${detail}`);
  }
  const { config, problems } = validateConfig(spec, doc ?? {}, { env });
  // Rules between keys (e.g. a file required when a feature is on) run on the typed config, after the keys' own.
  if (problems.length === 0 && crossCheck) problems.push(...crossCheck(config));
  if (problems.length > 0) throw new ConfigError(ConfigErrorCodes.INVALID, describeProblems(source, problems));
  return config;
}

/**
 * Reads `path` with the caller's `read` (the I/O stays with the caller) and validates it; '' gives the defaults.
 * Throws ConfigError: UNREADABLE for a missing file, INVALID with every problem listed.
 */
export function loadConfig<S extends Spec>(
  spec: S,
  path: string,
  env: Record<string, string | undefined>,
  read: (path: string) => string,
  crossCheck?: (cfg: Infer<S>) => ConfigProblem[],
): Infer<S> {
  let text = '';
  if (path !== '') {
    try {
      text = read(path);
    } catch (e) {
      throw new ConfigError(ConfigErrorCodes.UNREADABLE, `cannot read config file ${path}: ${(e as Error).message}`);
    }
  }
  return parseConfigText(spec, text, path || '(defaults)', env, crossCheck);
}
