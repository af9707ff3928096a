/**
 * The Functions screen's API: every registered function with its type, visibility and
 * validators (as data, for the form the page generates), and running one as nobody, as a
 * chosen user, or as a chosen auth session.
 *
 * "As a user" and "as a session" give the call a fixed identity, the one walkin/auth would
 * give a token of that user or session (`getAuthUserId`, `getAuthSessionId` work as in the
 * app), without any token: the dashboard never holds one. Runs are marked `dashboard` in the
 * logs. Internal functions can be run too: the admin key is the server's own authority.
 */
import { convertFromJson, convertToJson, type JSONValue, type Value } from "../../values/index.js";
import type { Caller, Engine } from "../../engine/engine.js";
import type { UserIdentity } from "../../server/registration.js";
import { ISSUER, identityOf, type AuthSessionDoc } from "../../auth/authSessions.js";
import type { EngineSwitch } from "../../transport/engineSwitch.js";
import { badRequest, notFound, stringField } from "./httpJson.js";
import { tableOfId } from "./tables.js";
import { validatorData } from "./validatorData.js";

export interface FunctionSummary {
  path: string;
  type: "query" | "mutation" | "action";
  visibility: "public" | "internal";
  args: unknown;
  returns: unknown;
}

const asData = validatorData;

/** `GET /api/admin/functions`: by path. */
export function listFunctions(engine: Engine): FunctionSummary[] {
  return [...engine.functions.all()]
    .map(({ path, fn }) => ({ path, type: fn.type, visibility: fn.visibility, args: asData(fn.args), returns: asData(fn.returns) }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Who a dashboard run acts as: `{ kind: "nobody" }`, `{ kind: "user", userId }`,
 * `{ kind: "session", authSessionId }` or `{ kind: "identity", identity }` (exactly these
 * claims: what `WalkinHttpClient.setAdminAuth(key, actingAsIdentity)` sends).
 */
export async function callerFor(engine: Engine, as: unknown): Promise<Caller> {
  if (as === undefined || as === null) return { identity: null, kind: "dashboard" };
  // A given `as` must say who: `{ userId }` without its kind, run as nobody, would look to the
  // admin like a run as that user.
  if (typeof as !== "object" || Array.isArray(as)) throw badRequest(AS_SHAPES);
  const { kind, userId, authSessionId } = as as { kind?: unknown; userId?: unknown; authSessionId?: unknown };
  if (kind === "nobody") return { identity: null, kind: "dashboard" };
  if (kind === "user") {
    if (typeof userId !== "string") throw badRequest('"as.userId" must be the _id of a user.');
    const table = tableOfId(engine, userId);
    if (table.name !== "users") throw badRequest(`"as.userId" must be the _id of a user; "${userId}" is a document of "${table.name}".`);
    if (!(await engine.read((txn) => txn.get(userId)))) throw notFound(`No user ${userId} in "${table.name}".`);
    const identity: UserIdentity = { subject: userId, issuer: ISSUER, tokenIdentifier: `${ISSUER}|${userId}` };
    return { identity, kind: "dashboard" };
  }
  if (kind === "session") {
    if (typeof authSessionId !== "string") throw badRequest('"as.authSessionId" must be the _id of an auth session (a row of authSessions).');
    const table = tableOfId(engine, authSessionId);
    if (table.name !== "authSessions") throw badRequest(`"${authSessionId}" is a document of "${table.name}", not of authSessions.`);
    const session = (await engine.read((txn) => txn.get(authSessionId))) as AuthSessionDoc | null;
    if (!session) throw notFound(`No auth session ${authSessionId}: it was revoked or cleaned up.`);
    if (session.expiresAt <= Date.now()) throw badRequest(`Auth session ${authSessionId} has ended (signed out, revoked or expired); choose a live one.`);
    return { identity: identityOf(session), kind: "dashboard" };
  }
  if (kind === "identity") return { identity: identityFromClaims((as as { identity?: unknown }).identity), kind: "dashboard" };
  throw badRequest(AS_SHAPES);
}

const AS_SHAPES =
  '"as" must be { "kind": "nobody" }, { "kind": "user", "userId": <a users _id> }, { "kind": "session", "authSessionId": <an authSessions _id> } ' +
  'or { "kind": "identity", "identity": { "subject": …, "issuer"?: …, other claims } }; leave it out to run as nobody.';

/**
 * `as: { kind: "identity", identity }`: the handler sees exactly these claims, as Convex's
 * `setAdminAuth(key, actingAsIdentity)` gives them. Unlike `kind: "user"`, nothing is looked
 * up: the subject may be a user of another auth provider (an `authenticate` hook's), or one
 * that does not exist yet. The admin key is the server's own authority, which may already run
 * any internal function; acting as anyone is within it. `issuer` defaults to walkin/auth's, so
 * `{ subject: <a users _id> }` is that user as `getAuthUserId` reads it. `tokenIdentifier` is
 * made from the two, as for every identity, so a given one (which could disagree) is refused.
 */
function identityFromClaims(json: unknown): UserIdentity {
  const example = 'e.g. { "subject": "<a users _id>" } or { "subject": "user_123", "issuer": "https://auth.example.com", "email": "ada@example.com" }';
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw badRequest(`"as.identity" must be an object of identity claims, ${example}.`);
  let claims: Record<string, Value>;
  try {
    claims = convertFromJson(json as JSONValue, "as.identity") as Record<string, Value>;
  } catch (error) {
    throw badRequest((error as Error).message);
  }
  const { subject, issuer = ISSUER, tokenIdentifier } = claims;
  if (typeof subject !== "string" || subject.length === 0) throw badRequest(`"as.identity.subject" must be a non-empty string (who the call acts as), ${example}.`);
  if (typeof issuer !== "string" || issuer.length === 0) throw badRequest(`"as.identity.issuer" must be a non-empty string, or left out for walkin/auth's own (${ISSUER}).`);
  if (tokenIdentifier !== undefined) throw badRequest(`"as.identity.tokenIdentifier" is made from the issuer and the subject ("<issuer>|<subject>"); leave it out.`);
  return { ...claims, subject, issuer, tokenIdentifier: `${issuer}|${subject}` };
}

export function parseArgs(json: unknown): Value {
  if (json === undefined || json === null) return {};
  if (typeof json !== "object" || Array.isArray(json)) throw badRequest('"args" must be a JSON object of the function\'s arguments.');
  try {
    return convertFromJson(json as JSONValue, "args");
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

/**
 * `POST /api/admin/functions/run`: `{ path, args, as, type? }` → `{ value }` (errors as for any
 * admin call). `type`, when given, is the kind the caller means to run (`WalkinHttpClient`
 * sends it): a `mutation(api.messages.list)` is refused, as over the HTTP API, rather than run
 * as the query it is.
 * A query or an action runs on `engine`, the one the request holds (EngineSwitch.use); a
 * mutation on whichever engine serves once any reload in progress is done, as a client's would.
 */
export async function runFunction(engines: EngineSwitch, engine: Engine, body: Record<string, unknown>) {
  const path = stringField(body, "path");
  const summary = listFunctions(engine).find((f) => f.path === path);
  if (!summary) throw notFound(`There is no function "${path}". Function paths look like "messages:send".`);
  const { type } = body;
  if (type !== undefined && type !== "query" && type !== "mutation" && type !== "action") throw badRequest('"type" must be "query", "mutation" or "action", or left out.');
  if (type !== undefined) engine.functions.resolve(path, type); // WRONG_FUNCTION_TYPE, as for any call of the wrong kind
  const args = parseArgs(body.args);
  const caller = await callerFor(engine, body.as);
  const started = performance.now();
  let value: Value;
  switch (summary.type) {
    case "query":
      value = await engine.runQuery(path, args, caller);
      break;
    case "mutation":
      value = await engines.mutate(async (current) => (await current.runMutation(path, args, caller)).value);
      break;
    case "action":
      value = await engine.runAction(path, args, caller);
      break;
    default:
      return summary.type satisfies never;
  }
  return { value: convertToJson(value ?? null), durationMs: Math.round((performance.now() - started) * 100) / 100 };
}
