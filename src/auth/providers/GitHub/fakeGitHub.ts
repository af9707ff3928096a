/**
 * A local stand-in for GitHub's OAuth endpoints and the two API calls the provider makes, on
 * loopback, for tests. It speaks GitHub's protocol as documented: the authorize redirect with
 * `code` and `state`; the token endpoint taking Basic or body client credentials, checking the
 * redirect URI and the PKCE S256 challenge, and answering errors with HTTP 200 and an `error`
 * field; `GET /user`; `GET /user/emails` (404 without the `user:email` scope).
 *
 * @example
 * const github = await startFakeGitHub({ clientId: "id", clientSecret: "secret" });
 * github.signInAs({ id: 1, login: "ada", emails: [{ email: "ada@example.com", primary: true, verified: true }] });
 * GitHub({ authorizationEndpoint: github.authorizationEndpoint, tokenEndpoint: github.tokenEndpoint, apiBaseUrl: github.url });
 * await github.close();
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface FakeGitHubUser {
  id: number;
  login: string;
  name?: string | null;
  avatar_url?: string;
  emails?: { email: string; primary: boolean; verified: boolean }[];
}

export interface FakeGitHub {
  url: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** The user who "approves" the next authorizations. */
  signInAs(user: FakeGitHubUser): void;
  close(): Promise<void>;
}

interface Grant {
  user: FakeGitHubUser;
  redirectUri: string | null;
  challenge: string | null;
  scopes: string[];
}

export async function startFakeGitHub(app: { clientId: string; clientSecret: string }): Promise<FakeGitHub> {
  let current: FakeGitHubUser = { id: 1, login: "octocat" };
  const grants = new Map<string, Grant>();
  const tokens = new Map<string, Grant>();

  const server = createServer((request, response) => {
    void route(request, response).catch((error: unknown) => json(response, 500, { message: String(error) }));
  });

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (request.method === "GET" && url.pathname === "/login/OAuth/authorize") return authorize(url.searchParams, response);
    if (request.method === "POST" && url.pathname === "/login/OAuth/access_token") return accessToken(request, response);
    const grant = tokens.get(/^(?:Bearer|token)\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1] ?? "");
    if (request.method === "GET" && (url.pathname === "/user" || url.pathname === "/user/emails")) {
      if (!grant) return json(response, 401, { message: "Requires authentication", documentation_url: "https://docs.github.com/rest" });
      if (url.pathname === "/user") {
        const { emails: _emails, ...user } = grant.user;
        return json(response, 200, { email: null, name: null, avatar_url: `https://avatars.example/u/${user.id}`, ...user });
      }
      if (!grant.scopes.includes("user:email")) return json(response, 404, { message: "Not Found" });
      return json(response, 200, (grant.user.emails ?? []).map((e) => ({ ...e, visibility: e.primary ? "private" : null })));
    }
    json(response, 404, { message: "Not Found" });
  }

  function authorize(query: URLSearchParams, response: ServerResponse): void {
    const redirectUri = query.get("redirect_uri");
    if (query.get("client_id") !== app.clientId || !redirectUri) return void response.writeHead(404).end("Not Found");
    const method = query.get("code_challenge_method");
    const code = randomBytes(10).toString("hex");
    grants.set(code, { user: current, redirectUri, challenge: method === "S256" ? query.get("code_challenge") : null, scopes: (query.get("scope") ?? "").split(/[ ,]+/) });
    const back = new URL(redirectUri);
    back.searchParams.set("code", code);
    const state = query.get("state");
    if (state) back.searchParams.set("state", state);
    response.writeHead(302, { Location: back.href }).end();
  }

  async function accessToken(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    const basic = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
    const [clientId, clientSecret] = basic ? Buffer.from(basic, "base64").toString("utf8").split(":") : [body.get("client_id"), body.get("client_secret")];
    const error = (code: string, description: string) => json(response, 200, { error: code, error_description: description, error_uri: "https://docs.github.com/apps/oauth" });
    if (clientId !== app.clientId || clientSecret !== app.clientSecret) return error("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.");
    const code = body.get("code") ?? "";
    const grant = grants.get(code);
    grants.delete(code);
    if (!grant) return error("bad_verification_code", "The code passed is incorrect or expired.");
    if (grant.redirectUri !== body.get("redirect_uri")) return error("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.");
    const verifier = body.get("code_verifier") ?? "";
    if (grant.challenge && createHash("sha256").update(verifier).digest("base64url") !== grant.challenge) return error("bad_verification_code", "The code_verifier does not match the code_challenge.");
    const token = `gho_${randomBytes(18).toString("hex")}`;
    tokens.set(token, grant);
    json(response, 200, { access_token: token, token_type: "bearer", scope: grant.scopes.join(",") });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return {
    url,
    authorizationEndpoint: `${url}/login/OAuth/authorize`,
    tokenEndpoint: `${url}/login/OAuth/access_token`,
    signInAs(user) {
      current = user;
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
}
