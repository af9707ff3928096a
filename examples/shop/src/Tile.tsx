import type { CSSProperties } from "react";

/** A product's picture: a tinted tile with its initials (no image files, no emoji fonts needed). */
export function Tile({ name, hue, size }: { name: string; hue: number; size: "large" | "small" }) {
  const initials = name
    .split(/\s+/)
    .filter((word) => word.length > 0)
    .slice(0, 2)
    .map((word) => word[0]!.toUpperCase())
    .join("");
  return (
    <span className={`tile ${size}`} style={{ "--hue": hue } as CSSProperties} aria-hidden="true">
      {initials}
    </span>
  );
}

/** The shop's logo: a shopping bag. */
export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" width="28" height="28" aria-hidden="true">
      <path d="M5 8h14l-1.2 12.1a1 1 0 0 1-1 .9H7.2a1 1 0 0 1-1-.9L5 8z" fill="currentColor" />
      <path d="M9 10V7a3 3 0 0 1 6 0v3" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" />
    </svg>
  );
}

/** A check mark in a circle, for a placed order. */
export function CheckIcon() {
  return (
    <svg className="check" viewBox="0 0 48 48" width="56" height="56" aria-hidden="true">
      <circle cx="24" cy="24" r="22" fill="currentColor" />
      <path d="M14 25l7 7 13-15" fill="none" stroke="#fff" strokeWidth="4" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}
