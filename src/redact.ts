import { inspect } from 'node:util';

/**
 * Keeps secrets out of everything the service prints: log lines (logger.ts runs every line
 * through `redact`), start-up errors and the db commands' errors (`formatError`). Two nets: the
 * password of any URL, and the literal secrets this process knows (DATABASE_URL's password, the
 * API keys, the embedded server's password), in the forms in which they appear in text.
 */

export const CENSOR = '[redacted]';

/**
 * `scheme://user:password@` → `scheme://user:[redacted]@`. The password runs to the *last* `@`
 * before a blank or a quote, so an unencoded `@`, `#`, `/` or `?` in it (what makes `new URL`
 * throw with the whole input) is hidden too.
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'`]*:)[^\s"'`]*@/gi;

/** Shorter strings are too common to replace everywhere; URL passwords are hidden by pattern. */
const MINIMUM_SECRET_LENGTH = 4;
const secretForms = new Set<string>();

/** Adds a secret that must never be printed, as it is, JSON-escaped and percent-encoded. */
export function addSecret(secret: string | undefined): void {
  if (!secret || secret.length < MINIMUM_SECRET_LENGTH) return;
  for (const form of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) secretForms.add(form);
}

/** The text with every URL password and known secret replaced by `[redacted]`. */
export function redact(text: string): string {
  // Plain `includes` first: this runs on every log line, and most lines contain neither.
  if (text.includes('://')) text = text.replace(URL_PASSWORD, `$1${CENSOR}@`);
  for (const form of secretForms) if (text.includes(form)) text = text.replaceAll(form, CENSOR);
  return text;
}

/**
 * An error as a person should see it when a process stops on it: a configuration error (named
 * `ConfigError`) is its one-line message, anything else the whole error with its stack and fields
 * (postgres.js puts the URL it failed to parse in `input`); both without secrets.
 */
export function formatError(error: unknown): string {
  if (error instanceof Error && error.name === 'ConfigError') return redact(error.message);
  return redact(inspect(error, { depth: 4 }));
}

/** The password of a `scheme://user:password@host` string, parsed or not (see URL_PASSWORD). */
export function urlPassword(url: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:(.*)@/i.exec(url);
  if (!match?.[1]) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}
