/** One document: formatted JSON with clickable references, and the editor for edits and inserts. */
import { useMemo, useState, type FormEvent } from "react";
import { admin } from "./api.js";
import type { DocumentView, TableSummary } from "./Data.js";
import { navigate } from "./router.js";
import { Badge, ErrorText, JsonView, useAdminData } from "./ui.js";
import { templateFor } from "./validators.js";

export function DocumentPanel({ id, table }: { id: string; table: TableSummary }) {
  const { data, error } = useAdminData<DocumentView & { table: string }>("documents/get", { id }, [table.name]);
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const close = () => navigate(`/data/${encodeURIComponent(table.name)}`);
  if (editing && data) return <DocumentEditor table={table} existing={data.doc} onClose={() => setEditing(false)} />;
  return (
    <div className="card doc-panel" aria-label="Document">
      <div className="heading-row">
        <h2 className="mono">{id}</h2>
        <div className="row-actions">
          {data && <button onClick={() => setEditing(true)}>Edit</button>}
          {data && !confirming && (
            <button className="danger" onClick={() => setConfirming(true)}>
              Delete
            </button>
          )}
          {confirming && (
            <button
              className="danger solid"
              onClick={async () => {
                try {
                  await admin("documents/delete", { id });
                  close();
                } catch (caught) {
                  setDeleteError(caught);
                }
              }}
            >
              Really delete
            </button>
          )}
          <button className="link" onClick={close}>
            Close
          </button>
        </div>
      </div>
      <ErrorText error={error ?? deleteError} />
      {table.hiddenFields.length > 0 && <p className="muted small">Hidden (never sent to the dashboard): {table.hiddenFields.join(", ")}.</p>}
      {data && <JsonView value={data.doc} refs={data.refs} />}
    </div>
  );
}

export function DocumentEditor({ table, existing, onClose }: { table: TableSummary; existing?: Record<string, unknown>; onClose: () => void }) {
  const initial = useMemo(() => {
    if (!existing) return JSON.stringify(templateFor(table.validator), null, 2);
    const { _id, _creationTime, ...fields } = existing;
    return JSON.stringify(fields, null, 2);
  }, [existing, table.validator]);
  const [text, setText] = useState(initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  async function save(event: FormEvent) {
    event.preventDefault();
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (caught) {
      setError(new Error(`This is not valid JSON: ${(caught as Error).message}`));
      return;
    }
    setBusy(true);
    try {
      if (existing) await admin("documents/replace", { id: existing._id, document });
      else {
        const { id } = await admin<{ id: string }>("documents/insert", { table: table.name, document });
        navigate(`/data/${encodeURIComponent(table.name)}?doc=${id}`);
      }
      onClose();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="card doc-panel" onSubmit={save} aria-label={existing ? "Edit document" : "New document"}>
      <div className="heading-row">
        <h2>{existing ? <>Edit <span className="mono">{existing._id as string}</span></> : `New document in ${table.name}`}</h2>
        <Badge tone="soft">checked against the schema</Badge>
      </div>
      <label htmlFor="doc-json" className="small muted">
        The document's fields as JSON{existing ? " (_id and _creationTime are kept)" : ""}
        {table.hiddenFields.length > 0 && existing ? `; hidden fields (${table.hiddenFields.join(", ")}) keep their values` : ""}.
      </label>
      <textarea id="doc-json" className="code" spellCheck={false} rows={Math.min(24, Math.max(6, text.split("\n").length + 1))} value={text} onChange={(e) => setText(e.target.value)} />
      <ErrorText error={error} />
      <div className="row-actions">
        <button className="primary" disabled={busy}>
          {busy ? "Saving…" : existing ? "Save" : "Insert"}
        </button>
        <button type="button" className="link" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  );
}
