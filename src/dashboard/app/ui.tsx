/** Pieces shared by the screens: JSON view with clickable references, badges, errors, hooks. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import { admin, stream, type StreamEvent } from "./api.js";
import { navigate } from "./router.js";

/** Formatted JSON; strings at `refs` paths (IDs of other documents) are links to them. */
export function JsonView({ value, refs = {} }: { value: unknown; refs?: Record<string, string> }) {
  return (
    <pre className="json" tabIndex={0}>
      <JsonNode value={value} path="" refs={refs} indent={0} />
    </pre>
  );
}

function JsonNode({ value, path, refs, indent }: { value: unknown; path: string; refs: Record<string, string>; indent: number }): ReactNode {
  const pad = "  ".repeat(indent + 1);
  const end = "  ".repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return (
      <>
        {"[\n"}
        {value.map((item, i) => (
          <span key={i}>
            {pad}
            <JsonNode value={item} path={path ? `${path}.${i}` : String(i)} refs={refs} indent={indent + 1} />
            {i < value.length - 1 ? ",\n" : "\n"}
          </span>
        ))}
        {end}]
      </>
    );
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return (
      <>
        {"{\n"}
        {entries.map(([key, item], i) => (
          <span key={key}>
            {pad}
            <span className="json-key">{JSON.stringify(key)}</span>:{" "}
            <JsonNode value={item} path={path ? `${path}.${key}` : key} refs={refs} indent={indent + 1} />
            {i < entries.length - 1 ? ",\n" : "\n"}
          </span>
        ))}
        {end}
        {"}"}
      </>
    );
  }
  if (typeof value === "string" && refs[path]) {
    return <DocLink id={value} table={refs[path]!} quoted />;
  }
  const kind = value === null ? "null" : typeof value;
  return <span className={`json-${kind}`}>{JSON.stringify(value)}</span>;
}

/** A link to a document: opens its table in the Data screen with the document shown. */
export function DocLink({ id, table, quoted = false, label }: { id: string; table: string; quoted?: boolean; label?: string }) {
  return (
    <a
      className="ref"
      href={`#/data/${encodeURIComponent(table)}?doc=${encodeURIComponent(id)}`}
      title={`Open ${id} in ${table}`}
      onClick={(event) => {
        event.preventDefault();
        navigate(`/data/${encodeURIComponent(table)}?doc=${encodeURIComponent(id)}`);
      }}
    >
      {label ?? (quoted ? JSON.stringify(id) : id)}
    </a>
  );
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error-text" role="alert">
      {(error as Error).message ?? String(error)}
    </p>
  );
}

export function Badge({ children, tone = "plain" }: { children: ReactNode; tone?: string }) {
  return <span className={`badge ${tone}`}>{children}</span>;
}

/** A labelled figure (health, user counts). */
export function Figure({ label, value, note }: { label: string; value: string; note?: string }) {
  return (
    <div className="figure">
      <span className="figure-label">{label}</span>
      <span className="figure-value">{value}</span>
      {note && <span className="figure-note">{note}</span>}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** Listens to the live stream while mounted. */
export function useStream(listener: (event: StreamEvent) => void): void {
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => stream.on((event) => latest.current(event)), []);
}

/**
 * Loads `path` (GET, or POST with `body`) and reloads it when a commit touches one of
 * `tables` ("*" for any), at most every `throttleMs` (300 ms; more for views that cost a
 * scan). Keeps the last data while reloading, so the screen never blanks or jumps.
 */
export function useAdminData<T>(path: string | null, body: unknown, tables: string[] | "*" | null, throttleMs = 300) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const key = JSON.stringify([path, body]);
  const generation = useRef(0);
  const load = useCallback(async () => {
    if (path === null) return;
    const mine = ++generation.current;
    try {
      const result = await admin<T>(path, body === undefined ? undefined : body);
      if (mine === generation.current) {
        setData(result);
        setError(null);
      }
    } catch (caught) {
      if (mine === generation.current) setError(caught);
    }
    // Re-run only when the key changes.
  }, [key]);
  // The previous data stays until the new arrives (a page turn, a filter): no blank, no jump.
  useEffect(() => {
    void load();
  }, [load]);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useStream((event) => {
    if (event.type !== "commit" || tables === null) return;
    if (tables !== "*" && !event.tables.some((t) => tables.includes(t))) return;
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      void load();
    }, throttleMs);
  });
  useEffect(() => () => clearTimeout(pending.current ?? undefined), []);
  return { data, error, reload: load };
}
