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
import { ArgsForm, initialValues } from "./ArgsForm.js";
import { RunAsPicker, type RunAs } from "./RunAs.js";
import { describe, inputKind, templateFor, type ValidatorData } from "./validators.js";

interface FunctionSummary {
  path: string;
  type: "query" | "mutation" | "action";
  visibility: "public" | "internal";
  args: ValidatorData | null;
  returns: ValidatorData | null;
}


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
                <span className="mono">
                  {f.path}
                  {f.visibility === "internal" && <span className="muted small"> internal</span>}
                </span>
                <span className={`type-tag ${f.type}`} title={f.type}>
                  {f.type[0]!.toUpperCase()}
                </span>
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
  if (session) return { kind: "session", authSessionId: session };
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
