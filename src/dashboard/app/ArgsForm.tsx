/** The arguments form the Functions screen generates from a function's validator. */
import { describe, inputKind, templateFor, type ValidatorData } from "./validators.js";

export function initialValues(fields: Record<string, ValidatorData> | null): Record<string, string | boolean> {
  const values: Record<string, string | boolean> = {};
  for (const [name, v] of Object.entries(fields ?? {})) {
    const kind = inputKind(v);
    values[name] = kind === "checkbox" ? false : kind === "json" && v.isOptional !== "optional" ? JSON.stringify(templateFor(v)) : kind === "select" ? JSON.stringify(v.members?.[0]?.value) : "";
  }
  return values;
}

export function ArgsForm({ fields, values, onChange }: {
  fields: Record<string, ValidatorData>;
  values: Record<string, string | boolean>;
  onChange: (name: string, value: string | boolean) => void;
}) {
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
