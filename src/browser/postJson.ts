/**
 * The one `fetch` of the HTTP clients: a JSON `POST` and its JSON answer, with the errors a
 * caller gets when there is no answer to read (`WalkinHttpClient`'s calls, the server-rendering
 * functions, admin calls).
 *
 * A server that cannot be reached is named with the network error's code (ECONNREFUSED,
 * ENOTFOUND, …): `fetch` only says "fetch failed" and keeps the reason in its `cause`, which a
 * log that prints the message does not show.
 *
 * Node's own `fetch` gives up on an answer whose headers take more than 5 minutes (undici's
 * `headersTimeout`, code UND_ERR_HEADERS_TIMEOUT), well before an action's 11-minute limit
 * (`actionTimeoutMs`): that failure says so, and how to raise Node's limit.
 */
import { walkinError } from "../values/errors.js";

/**
 * A JSON `POST` to `endpoint`: the answer's status and parsed body. Rejects with `DISCONNECTED`
 * when the server cannot be reached, and with `INTERNAL` when what answered is not JSON (a
 * proxy's error page, say: the server itself always answers JSON).
 */
export async function postJson(
  endpoint: string,
  headers: Record<string, string>,
  body: unknown,
  fetchFunction: typeof fetch,
  label: string,
): Promise<{ status: number; body: unknown }> {
  let response: Response;
  try {
    response = await fetchFunction(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
      // Next.js caches fetch() in Server Components (POSTs too, up to Next 14) and would answer
      // every later request with the first result; "no-store" also keeps such a page dynamic.
      // Elsewhere a POST is not cached anyway.
      cache: "no-store",
    });
  } catch (error) {
    if (causeCode(error) === "UND_ERR_HEADERS_TIMEOUT") {
      throw walkinError(
        "DISCONNECTED",
        `${label}: Node's fetch stopped waiting for ${endpoint} after its own limit of 5 minutes for an answer's headers ` +
          "(undici's headersTimeout, UND_ERR_HEADERS_TIMEOUT); it may still have run on the server. To wait longer from Node, " +
          "raise the limit of the fetch this client uses: pass { fetch: (url, init) => fetch(url, { ...init, dispatcher: new Agent({ headersTimeout: 0, bodyTimeout: 0 }) }) } " +
          'with fetch and Agent from the "undici" package, or call it over the WebSocket (WalkinClient).',
        undefined,
        error,
      );
    }
    throw walkinError("DISCONNECTED", `${label}: could not reach ${endpoint} (${failure(error)}).`, undefined, error);
  }
  try {
    return { status: response.status, body: await response.json() };
  } catch (error) {
    throw walkinError("INTERNAL", `${label}: ${endpoint} answered ${response.status} without a JSON body. Is this the Walk-in server's address?`, undefined, error);
  }
}

/** The code of the network error a failed `fetch` keeps in its `cause`, if any. */
function causeCode(error: unknown): unknown {
  return error instanceof Error ? (error.cause as { code?: unknown } | undefined)?.code : undefined;
}

/** "fetch failed: connect ECONNREFUSED 127.0.0.1:3210": the error's message with the network reason its `cause` holds. */
function failure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const reason = error instanceof Error ? networkReason(error.cause) : undefined;
  return reason === undefined || message.includes(reason) ? message : `${message}: ${reason}`;
}

/** "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:3210", or just the code or message there is. */
function networkReason(cause: unknown): string | undefined {
  if (!(cause instanceof Error)) return undefined;
  // Connecting to a name with several addresses fails with an AggregateError, one per address.
  const inner = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0] : cause;
  const code = (cause as { code?: unknown }).code ?? (inner as { code?: unknown }).code;
  const message = inner.message;
  if (typeof code !== "string") return message || undefined;
  return message.includes(code) ? message : `${code}: ${message}`;
}
