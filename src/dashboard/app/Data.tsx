/**
 * Data: tables with counts; a table's documents newest first, a page at a time, filtered by
 * an index and by field values; a document as JSON with clickable references; insert, edit
 * and delete, each checked by the schema on the server (its message shown inline). Live: a
 * commit to the table shown reloads the page shown, in place.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { formatCount, formatTime, shortJson } from "./format.js";
import { useRoute } from "./router.js";
import { DocumentEditor, DocumentPanel } from "./DocumentPanel.js";
import { DocLink, Empty, ErrorText, useAdminData } from "./ui.js";
import { filterValue, type ValidatorData } from "./validators.js";

export interface TableSummary {
  name: string;
  count: number;
  countCapped: boolean;
  indexes: Array<{ name: string; fields: string[] }>;
  validator: ValidatorData | null;
  hiddenFields: string[];
}

export interface DocumentView {
  doc: Record<string, unknown>;
  refs: Record<string, string>;
}

interface Page {
  page: DocumentView[];
  isDone: boolean;
  continueCursor: string;
  /** Documents looked at; `partial` when the filters stopped looking before the page filled. */
  scanned: number;
  partial: boolean;
}

interface FieldFilter {
  field: string;
  op: string;
  value: string;
}

const PAGE_SIZE = 25;

export function DataScreen() {
  const route = useRoute();
  const { data: tables, error } = useAdminData<TableSummary[]>("tables", undefined, "*");
  // No table in the address: show the first one (without rewriting the address, which would
  // race with a table picked meanwhile).
  const selected = route.rest[0] ?? tables?.[0]?.name ?? null;
  const docId = route.params.get("doc");
  const table = tables?.find((t) => t.name === selected) ?? null;
  // On a narrow screen the tables are a scrolling row: keep the chosen one in view.
  const list = useRef<HTMLUListElement>(null);
  useEffect(() => {
    list.current?.querySelector("a.active")?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }, [selected, tables]);
  return (
    <div className="split">
      <aside className="sidebar card" aria-label="Tables">
        <h2>Tables</h2>
        <ErrorText error={error} />
        {tables && tables.length === 0 && <Empty>No tables yet. Define them in functions/schema.ts, or insert from a mutation.</Empty>}
        <ul className="nav-list" ref={list}>
          {tables?.map((t) => (
            <li key={t.name}>
              <a href={`#/data/${encodeURIComponent(t.name)}`} className={t.name === selected ? "active" : ""} aria-current={t.name === selected ? "page" : undefined}>
                <span>{t.name}</span>
                <span className="count">{formatCount(t.count)}{t.countCapped ? "+" : ""}</span>
              </a>
            </li>
          ))}
        </ul>
      </aside>
      <section className="main-column">
        {table ? <TableView key={`${table.name}|${route.params.get("index") ?? ""}|${route.params.get("value") ?? ""}`} table={table} docId={docId} indexParam={route.params.get("index")} valueParam={route.params.get("value")} /> : tables && selected && <Empty>There is no table “{selected}”.</Empty>}
      </section>
    </div>
  );
}

function columnsOf(table: TableSummary, page: DocumentView[] | undefined): string[] {
  const fields = table.validator?.kind === "object" ? Object.keys(table.validator.fields ?? {}) : [];
  const seen = new Set(fields.filter((f) => !table.hiddenFields.includes(f)));
  if (fields.length === 0) for (const view of page ?? []) for (const key of Object.keys(view.doc)) if (!key.startsWith("_")) seen.add(key);
  return [...seen].slice(0, 6);
}

function TableView({ table, docId, indexParam, valueParam }: { table: TableSummary; docId: string | null; indexParam: string | null; valueParam: string | null }) {
  const [index, setIndex] = useState(indexParam ?? "by_creation_time");
  const [indexValues, setIndexValues] = useState<string[]>(valueParam !== null ? [valueParam] : []);
  const [filters, setFilters] = useState<FieldFilter[]>([]);
  const [applied, setApplied] = useState(() => ({ index: indexParam ?? "by_creation_time", indexValues: valueParam !== null ? [valueParam] : ([] as string[]), filters: [] as FieldFilter[] }));
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [adding, setAdding] = useState(false);
  const indexInfo = table.indexes.find((i) => i.name === index);
  const asValue = (field: string, text: string) => filterValue(table.validator, field, text);

  const body = useMemo(() => {
    const info = table.indexes.find((i) => i.name === applied.index);
    const values = applied.indexValues.filter((v, i) => v !== "" && applied.indexValues.slice(0, i).every((x) => x !== ""));
    return {
      table: table.name,
      index: applied.index,
      indexValues: values.map((text, i) => asValue(info?.fields[i] ?? "", text)),
      filters: applied.filters.filter((f) => f.field.trim() !== "").map((f) => ({ field: f.field.trim(), op: f.op, value: asValue(f.field.trim(), f.value) })),
      cursor: cursors[cursors.length - 1],
      numItems: PAGE_SIZE,
    };
    // Keyed on the table, the applied filter and the page only: the form's drafts do not refetch.
  }, [table.name, applied, cursors]);
  const { data: page, error } = useAdminData<Page>("documents/list", body, [table.name]);
  const columns = columnsOf(table, page?.page);
  const pageNumber = cursors.length;

  function apply(event: FormEvent) {
    event.preventDefault();
    setApplied({ index, indexValues, filters });
    setCursors([null]);
  }
  function clear() {
    setIndex("by_creation_time");
    setIndexValues([]);
    setFilters([]);
    setApplied({ index: "by_creation_time", indexValues: [], filters: [] });
    setCursors([null]);
  }
  const filtered = applied.indexValues.some((v) => v !== "") || applied.filters.length > 0 || applied.index !== "by_creation_time";

  return (
    <>
      <div className="card">
        <div className="heading-row">
          <h2>
            {table.name} <span className="muted small">{formatCount(table.count)}{table.countCapped ? "+" : ""} documents</span>
          </h2>
          <button className="primary" onClick={() => setAdding(true)}>
            Add document
          </button>
        </div>
        <form className="filters" onSubmit={apply} aria-label="Filter documents">
          <label>
            Index
            <select
              value={index}
              onChange={(e) => {
                setIndex(e.target.value);
                setIndexValues([]);
              }}
            >
              {table.indexes
                .filter((i) => i.name !== "by_id")
                .map((i) => (
                  <option key={i.name} value={i.name}>
                    {i.name}
                    {i.name === "by_creation_time" ? " (newest first)" : ` (${i.fields.join(", ")})`}
                  </option>
                ))}
            </select>
          </label>
          {index !== "by_creation_time" &&
            indexInfo?.fields.map((field, i) => (
              <label key={field}>
                {field} =
                <input value={indexValues[i] ?? ""} placeholder={i === 0 ? "value" : "optional"} onChange={(e) => setIndexValues((old) => Object.assign([...old], { [i]: e.target.value }))} />
              </label>
            ))}
          {filters.map((filter, i) => (
            <div className="filter-row" key={i}>
              <input aria-label="Field" placeholder="field" value={filter.field} onChange={(e) => setFilters((old) => old.map((f, j) => (j === i ? { ...f, field: e.target.value } : f)))} />
              <select aria-label="Comparison" value={filter.op} onChange={(e) => setFilters((old) => old.map((f, j) => (j === i ? { ...f, op: e.target.value } : f)))}>
                {[["eq", "="], ["neq", "≠"], ["lt", "<"], ["lte", "≤"], ["gt", ">"], ["gte", "≥"]].map(([op, label]) => (
                  <option key={op} value={op}>
                    {label}
                  </option>
                ))}
              </select>
              <input aria-label="Value" placeholder="value (JSON or text)" value={filter.value} onChange={(e) => setFilters((old) => old.map((f, j) => (j === i ? { ...f, value: e.target.value } : f)))} />
              <button type="button" className="link" aria-label="Remove this filter" onClick={() => setFilters((old) => old.filter((_, j) => j !== i))}>
                ✕
              </button>
            </div>
          ))}
          <div className="filter-actions">
            <button type="button" onClick={() => setFilters((old) => [...old, { field: "", op: "eq", value: "" }])}>
              + Field filter
            </button>
            <button className="primary">Apply</button>
            {filtered && (
              <button type="button" className="link" onClick={clear}>
                Clear
              </button>
            )}
          </div>
        </form>
        <ErrorText error={error} />
        <div className="table-wrap">
          <table className="docs">
            <thead>
              <tr>
                <th scope="col">_id</th>
                {columns.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
                <th scope="col">created</th>
              </tr>
            </thead>
            <tbody>
              {page?.page.map(({ doc, refs }) => (
                <tr key={doc._id as string} className={doc._id === docId ? "selected" : ""}>
                  <td>
                    <a className="mono" href={`#/data/${encodeURIComponent(table.name)}?doc=${doc._id}`} aria-label={`Open document ${doc._id}`}>
                      {(doc._id as string).slice(0, 10)}…
                    </a>
                  </td>
                  {columns.map((c) => (
                    <td key={c}>{refs[c] ? <DocLink id={doc[c] as string} table={refs[c]!} label={`${(doc[c] as string).slice(0, 10)}…`} /> : <span className={doc[c] === undefined ? "muted" : ""}>{doc[c] === undefined ? "—" : shortJson(doc[c])}</span>}</td>
                  ))}
                  <td className="nowrap">{formatTime(doc._creationTime as number)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {page && page.page.length === 0 && !page.partial && <Empty>{filtered ? "No documents match these filters." : "This table is empty."}</Empty>}
          {page?.partial && (
            <p className="muted small" role="status">
              Looked at {formatCount(page.scanned)} documents without filling this page; <em>Older →</em> looks further. An index on the filtered field finds them at once.
            </p>
          )}
        </div>
        <div className="pager">
          <button disabled={pageNumber === 1} onClick={() => setCursors((old) => old.slice(0, -1))}>
            ← Newer
          </button>
          <span className="muted small">Page {pageNumber}</span>
          <button disabled={!page || page.isDone} onClick={() => page && setCursors((old) => [...old, page.continueCursor])}>
            Older →
          </button>
        </div>
      </div>
      {adding && <DocumentEditor table={table} onClose={() => setAdding(false)} />}
      {docId && !adding && <DocumentPanel key={docId} id={docId} table={table} />}
    </>
  );
}
