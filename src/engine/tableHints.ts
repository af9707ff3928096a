/**
 * Hints for an unknown table that one of Walk-in's own modules provides: a newcomer who calls
 * `getOrCreateSessionUser` without `...sessionTables` in the schema gets `Unknown table "logins"`,
 * and the fix is a spread they have not heard of yet, so the error names it.
 *
 * The engine does not import walkin/sessions or walkin/auth (they sit above it), so the names
 * are listed here; tableHints.test.ts checks them against the real `sessionTables` and `authTables`.
 */

const SESSIONS = { spread: "sessionTables", from: "walkin/sessions" } as const;
const AUTH = { spread: "authTables", from: "walkin/auth" } as const;

/** Table name → the export that defines it. `sessionId` is not a table, but a common guess for one. */
export const PROVIDED_TABLES: Readonly<Record<string, { spread: string; from: string }>> = {
  logins: SESSIONS,
  sessionId: SESSIONS,
  authAccounts: AUTH,
  authSessions: AUTH,
  authVerificationCodes: AUTH,
  authVerifiers: AUTH,
  authRateLimits: AUTH,
};

/** How to add the table to the schema, or undefined when no Walk-in module provides it. */
export function providedTableHint(name: string): string | undefined {
  const provider = Object.hasOwn(PROVIDED_TABLES, name) ? PROVIDED_TABLES[name] : undefined;
  if (!provider) return undefined;
  return (
    `${provider.from} keeps ${name === "sessionId" ? "sessions" : `"${name}"`} in its own tables: spread them into your schema, ` +
    `\`defineSchema({ ...${provider.spread}, … })\` with \`import { ${provider.spread} } from "${provider.from}"\` in functions/schema.ts`
  );
}
