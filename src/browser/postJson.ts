/**
 * The one `fetch` of the HTTP clients: a JSON `POST` and its JSON answer, with the errors a
 * caller gets when there is no answer to read (`WalkinHttpClient`'s calls, the server-rendering
 * functions, admin calls).
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
    throw walkinError("DISCONNECTED", `${label}: could not reach ${endpoint} (${(error as Error).message}).`, undefined, error);
  }
  try {
    return { status: response.status, body: await response.json() };
  } catch (error) {
    throw walkinError("INTERNAL", `${label}: ${endpoint} answered ${response.status} without a JSON body. Is this the Walk-in server's address?`, undefined, error);
  }
}
