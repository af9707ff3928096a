/** The resolve hook of `compiled.mjs`: `<repo>/src/X.js` → `<repo>/dist/X.js`. */
let src = "";
let dist = "";

export function initialize(data) {
  ({ src, dist } = data);
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (resolved.url.startsWith(src) && !resolved.url.includes("/dashboard/app/")) {
    const target = dist + resolved.url.slice(src.length).replace(/\.tsx?$/, ".js");
    return { ...resolved, url: target, format: "module" };
  }
  return resolved;
}
