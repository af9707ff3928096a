/**
 * Functions: every registered function with its type, visibility and argument validator;
 * run one with a form generated from its validator (JSON for what a form cannot express), as
 * nobody, a chosen user or a chosen auth session. A query run here stays live: its result
 * updates as the data changes, until stopped.
 */
import { useEffect, useState, type FormEvent } from "react";
import { admin, stream, type StreamEvent } from "./api.js";
import { useRoute } from "./router.js";
import { Badge, Empty, ErrorText, JsonView, useAdminData, useStream } from "./ui.js";
import { describe, inputKind, templateFor, type ValidatorData } from "./validators.js";

interface FunctionSummary {
  path: string;
  type: "query" | "mutation" | "action";
  visibility: "public" | "internal";
  args: ValidatorData | null;
  returns: ValidatorData | null;
}

type RunAs = { kind: "nobody" } | { kind: "user"; userId: string } | { kind: "session"; sessionId: string };

export function FunctionsScreen() {
  const route = useRoute();
  const { data: functions, error } = useAdminData<FunctionSummary[]>("functions", undefined, null);
  const [search, setSearch] = useState("");
  const selectedPath = route.rest[0] ?? null;
  const selected = functions?.find((f) => f.path === selectedPath) ?? null;
  const shown = functions?.filter((f) => f.path.toLowerCase().includes(search.toLowerCase())) ?? [];
  const query = route.params.toString();
  return (
    <div className="split">
      <aside className="sidebar card" aria-label="Functions">
        <h2>Functions</h2>
        <input type="search" aria-label="Find a function" placeholder="Find…" value={search} onChange={(e) => setSearch(e.target.value)} />
        <ErrorText error={error} />
        <ul className="nav-list">
          {shown.map((f) => (
            <li key={f.path}>
              <a href={`#/functions/${encodeURIComponent(f.path)}${query ? `?${query}` : ""}`} className={f.path === selectedPath ? "active" : ""} aria-current={f.path === selectedPath ? "page" : undefined}>
                <span className="mono">{f.path}</span>
                <span className={`type-tag ${f.type}`}>{f.type[0]!.toUpperCase()}</span>
              </a>
            </li>
          ))}
        </ul>
        {functions && shown.length === 0 && <Empty>No function matches.</Empty>}
      </aside>
      <section className="main-column">
        {selected ? (
          <FunctionRunner key={selected.path} fn={selected} initialAs={runAsFrom(route.params)} initialUser={route.params.get("ofUser") ?? ""} />
        ) : (
          <div className="card">
            <Empty>Pick a function to see its arguments and run it.</Empty>
          </div>
        )}
      </section>
    </div>
  );
}

function runAsFrom(params: URLSearchParams): RunAs {
  const session = params.get("asSession");
  if (session) return { kind: "session", sessionId: session };
  const user = params.get("asUser");
  if (user) return { kind: "user", userId: user };
  return { kind: "nobody" };
}

type Result = { ok: true; value: unknown; live: boolean; durationMs?: number } | { ok: false; error: unknown };

function FunctionRunner({ fn, initialAs, initialUser }: { fn: FunctionSummary; initialAs: RunAs; initialUser: string }) {
  const fields = fn.args?.kind === "object" ? fn.args.fields ?? {} : null;
  const [values, setValues] = useState<Record<string, string | boolean>>(() => initialValues(fields));
  const [asJson, setAsJson] = useState(fields === null);
  const [json, setJson] = useState(() => JSON.stringify(templateFor(fn.args), null, 2));
  const [runAs, setRunAs] = useState<RunAs>(initialAs);
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [watch, setWatch] = useState<{ watchId: string; streamId: string } | null>(null);

  useStream((event: StreamEvent) => {
    if (event.type === "watch" && watch && event.watchId === watch.watchId) {
      setResult(event.outcome.ok ? { ok: true, value: event.outcome.value, live: true } : { ok: false, error: new Error(event.outcome.error) });
    }
  });
  useEffect(() => () => void (watch && admin("functions/unwatch", watch).catch(() => {})), [watch]);

  function argsFromForm(): Record<string, unknown> {
    if (asJson || !fields) {
      const parsed = JSON.parse(json || "{}");
      return parsed;
    }
    const args: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(fields)) {
      const raw = values[name];
      const kind = inputKind(v);
      if (kind === "checkbox") {
        args[name] = raw === true;
        continue;
      }
      if (raw === "" || raw === undefined) {
        if (v.isOptional === "optional") continue;
        if (kind === "text") args[name] = "";
        continue; // missing: the server's validator says so
      }
      if (kind === "text") args[name] = raw;
      else if (kind === "number") args[name] = Number(raw);
      else if (kind === "select") args[name] = JSON.parse(raw as string);
      else {
        try {
          args[name] = JSON.parse(raw as string);
        } catch {
          throw new Error(`${name}: this is not valid JSON.`);
        }
      }
    }
    return args;
  }

  async function run(event: FormEvent) {
    event.preventDefault();
    let args: Record<string, unknown>;
    try {
      args = argsFromForm();
    } catch (caught) {
      setResult({ ok: false, error: caught });
      return;
    }
    setBusy(true);
    if (watch) {
      void admin("functions/unwatch", watch).catch(() => {});
      setWatch(null);
    }
    try {
      if (fn.type === "query" && stream.streamId) {
        const streamId = stream.streamId;
        const answer = await admin<{ watchId: string; outcome: { ok: true; value: unknown } | { ok: false; error: string } }>("functions/watch", { path: fn.path, args, as: runAs, streamId });
        setWatch({ watchId: answer.watchId, streamId });
        setResult(answer.outcome.ok ? { ok: true, value: answer.outcome.value, live: true } : { ok: false, error: new Error(answer.outcome.error) });
      } else {
        const answer = await admin<{ value: unknown; durationMs: number }>("functions/run", { path: fn.path, args, as: runAs });
        setResult({ ok: true, value: answer.value, live: false, durationMs: answer.durationMs });
      }
    } catch (caught) {
      setResult({ ok: false, error: caught });
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <div className="card">
        <div className="heading-row">
          <h2 className="mono">{fn.path}</h2>
          <div className="row-actions">
            <Badge tone={fn.type}>{fn.type}</Badge>
            <Badge tone={fn.visibility === "internal" ? "warn" : "soft"}>{fn.visibility}</Badge>
          </div>
        </div>
        <p className="muted small">
          Arguments: <code>{fields && Object.keys(fields).length === 0 ? "none" : fields ? `{ ${Object.entries(fields).map(([n, v]) => `${n}${v.isOptional === "optional" ? "?" : ""}: ${describe(v)}`).join(", ")} }` : fn.args ? describe(fn.args) : "not declared (any object)"}</code>
          {fn.returns && (
            <>
              {" "}
              · Returns: <code>{describe(fn.returns)}</code>
            </>
          )}
        </p>
        <form className="run-form" onSubmit={run} aria-label="Run the function">
          {fields && Object.keys(fields).length > 0 && (
            <label className="inline">
              <input type="checkbox" checked={asJson} onChange={(e) => setAsJson(e.target.checked)} /> Edit the arguments as JSON
            </label>
          )}
          {!asJson && fields ? (
            <ArgsForm fields={fields} values={values} onChange={(name, value) => setValues((old) => ({ ...old, [name]: value }))} />
          ) : (
            <label>
              Arguments (JSON)
              <textarea className="code" rows={Math.max(3, json.split("\n").length + 1)} value={json} spellCheck={false} onChange={(e) => setJson(e.target.value)} />
            </label>
          )}
          <RunAsPicker value={runAs} onChange={setRunAs} initialUser={initialUser} />
          <div className="row-actions">
            <button className="primary" disabled={busy}>
              {busy ? "Running…" : fn.type === "query" ? "Run live" : "Run"}
            </button>
            {watch && (
              <button
                type="button"
                onClick={() => {
                  void admin("functions/unwatch", watch).catch(() => {});
                  setWatch(null);
                  setResult((old) => (old && old.ok ? { ...old, live: false } : old));
                }}
              >
                Stop live updates
              </button>
            )}
          </div>
        </form>
      </div>
      {result && (
        <div className="card result" aria-label="Result">
          <div className="heading-row">
            <h2>{result.ok ? "Result" : "Error"}</h2>
            {result.ok && result.live && watch && <Badge tone="live">live</Badge>}
            {result.ok && result.durationMs !== undefined && <span className="muted small">{result.durationMs} ms</span>}
          </div>
          {result.ok ? <JsonView value={result.value} /> : <ErrorText error={result.error} />}
        </div>
      )}
    </>
  );
}

function initialValues(fields: Record<string, ValidatorData> | null): Record<string, string | boolean> {
  const values: Record<string, string | boolean> = {};
  for (const [name, v] of Object.entries(fields ?? {})) {
    const kind = inputKind(v);
    values[name] = kind === "checkbox" ? false : kind === "json" && v.isOptional !== "optional" ? JSON.stringify(templateFor(v)) : kind === "select" ? JSON.stringify(v.members?.[0]?.value) : "";
  }
  return values;
}

function ArgsForm({ fields, values, onChange }: { fields: Record<string, ValidatorData>; values: Record<string, string | boolean>; onChange: (name: string, value: string | boolean) => void }) {
  if (Object.keys(fields).length === 0) return <p className="muted small">This function takes no arguments.</p>;
  return (
    <div className="args-grid">
      {Object.entries(fields).map(([name, v]) => {
        const kind = inputKind(v);
        const id = `arg-${name}`;
        const label = (
          <span>
            {name}
            {v.isOptional === "optional" ? <span className="muted"> (optional)</span> : null} <span className="muted small mono">{describe(v)}</span>
          </span>
        );
        if (kind === "checkbox") {
          return (
            <label key={name} className="inline" htmlFor={id}>
              <input id={id} type="checkbox" checked={values[name] === true} onChange={(e) => onChange(name, e.target.checked)} /> {label}
            </label>
          );
        }
        if (kind === "select") {
          return (
            <label key={name} htmlFor={id}>
              {label}
              <select id={id} value={String(values[name] ?? "")} onChange={(e) => onChange(name, e.target.value)}>
                {v.isOptional === "optional" && <option value="">(absent)</option>}
                {(v.members ?? []).map((m) => (
                  <option key={JSON.stringify(m.value)} value={JSON.stringify(m.value)}>
                    {JSON.stringify(m.value)}
                  </option>
                ))}
              </select>
            </label>
          );
        }
        return (
          <label key={name} htmlFor={id}>
            {label}
            {kind === "json" ? (
              <textarea id={id} className="code" rows={2} spellCheck={false} placeholder="JSON" value={String(values[name] ?? "")} onChange={(e) => onChange(name, e.target.value)} />
            ) : (
              <input id={id} type={kind === "number" ? "number" : "text"} step="any" value={String(values[name] ?? "")} onChange={(e) => onChange(name, e.target.value)} />
            )}
          </label>
        );
      })}
    </div>
  );
}

function RunAsPicker({ value, onChange, initialUser }: { value: RunAs; onChange: (value: RunAs) => void; initialUser: string }) {
  const id = value.kind === "user" ? value.userId : value.kind === "session" ? value.sessionId : "";
  const [pickedUser, setPickedUser] = useState(initialUser);
  return (
    <fieldset className="run-as">
      <legend>Run as</legend>
      <div className="segmented" role="radiogroup" aria-label="Run as">
        {(["nobody", "user", "session"] as const).map((kind) => (
          <label key={kind} className={value.kind === kind ? "on" : ""}>
            <input
              type="radio"
              name="run-as"
              checked={value.kind === kind}
              onChange={() => onChange(kind === "nobody" ? { kind } : kind === "user" ? { kind, userId: "" } : { kind, sessionId: "" })}
            />
            {kind === "nobody" ? "Nobody" : kind === "user" ? "A user" : "A session"}
          </label>
        ))}
      </div>
      {value.kind !== "nobody" && (
        <div className="pickers">
          <UserPicker
            value={value.kind === "user" ? value.userId : pickedUser}
            onPick={(userId) => (value.kind === "user" ? onChange({ kind: "user", userId }) : setPickedUser(userId))}
          />
          {value.kind === "session" && pickedUser && <SessionPicker userId={pickedUser} value={value.sessionId} onPick={(sessionId) => onChange({ kind: "session", sessionId })} />}
        </div>
      )}
      {value.kind !== "nobody" && (
        <label>
          {value.kind === "user" ? "User _id" : "Auth session _id"}
          <input
            className="mono"
            value={id}
            placeholder={value.kind === "user" ? "pick above, or paste a user's _id" : "pick above, or paste an auth session's _id"}
            onChange={(e) => onChange(value.kind === "user" ? { kind: "user", userId: e.target.value } : { kind: "session", sessionId: e.target.value })}
          />
        </label>
      )}
    </fieldset>
  );
}

interface UserOption {
  _id: string;
  name: string | null;
  email: string | null;
  isAnonymous: boolean;
  liveSessions: number;
}

/** The newest users (walkin/auth apps); nothing when the app has no users table. */
function UserPicker({ value, onPick }: { value: string; onPick: (userId: string) => void }) {
  const { data } = useAdminData<{ page: UserOption[] }>("users/list", {}, ["users"]);
  if (!data || data.page.length === 0) return null;
  return (
    <label>
      User
      <select value={data.page.some((u) => u._id === value) ? value : ""} onChange={(e) => onPick(e.target.value)}>
        <option value="">Choose a recent user…</option>
        {data.page.map((u) => (
          <option key={u._id} value={u._id}>
            {u.name ?? "(no name)"} · {u.email ?? (u.isAnonymous ? "guest" : "account")} · {u.liveSessions} live
          </option>
        ))}
      </select>
    </label>
  );
}

function SessionPicker({ userId, value, onPick }: { userId: string; value: string; onPick: (sessionId: string) => void }) {
  const { data } = useAdminData<{ sessions: Array<{ _id: string; provider: string; live: boolean; lastUsedAt: number; userAgent: string | null }> }>("users/get", { userId }, ["authSessions"]);
  const live = data?.sessions.filter((s) => s.live) ?? [];
  if (!data) return null;
  return (
    <label>
      Session
      <select value={live.some((s) => s._id === value) ? value : ""} onChange={(e) => onPick(e.target.value)}>
        <option value="">{live.length === 0 ? "No live session" : "Choose one of their live sessions…"}</option>
        {live.map((s) => (
          <option key={s._id} value={s._id}>
            {s.provider} · last used {new Date(s.lastUsedAt).toLocaleString()} · {s._id.slice(0, 8)}…
          </option>
        ))}
      </select>
    </label>
  );
}
