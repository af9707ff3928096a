/**
 * Password hashing with scrypt (node:crypto), self-describing: `scrypt$N$r$p$salt$hash`, so
 * parameters can be raised later and old hashes still verify. The default N=2^17, r=8, p=1
 * is OWASP's recommendation for scrypt (128 MiB, on the order of 100 ms here); tests may pass
 * cheaper parameters.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { SecretCrypto } from "./providers/types.js";

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize("NFKC"), salt, KEY_BYTES, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/**
 * A well-formed hash with `params` that no password is known to match (random salt and key):
 * verifying a password against it costs exactly one scrypt run, as against a real hash. It
 * is what an unknown email is checked against, made without running scrypt at all, so that
 * no sign-in (not even the first of a process) does more work for an unknown email.
 */
export function dummyPasswordHash(params: ScryptParams = DEFAULT_SCRYPT): string {
  return `scrypt$${params.N}$${params.r}$${params.p}$${randomBytes(16).toString("base64url")}$${randomBytes(KEY_BYTES).toString("base64url")}`;
}

/** Whether `password` matches `stored`; false for a malformed hash. Compares in constant time. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const expected = Buffer.from(parts[5]!, "base64url");
  if (![N, r, p].every(Number.isSafeInteger) || expected.length !== KEY_BYTES) return false;
  const key = await derive(password, Buffer.from(parts[4]!, "base64url"), { N, r, p });
  return timingSafeEqual(key, expected);
}

/** Secrets kept as scrypt hashes with `params`: the default `crypto` of providers that keep secrets (providers/types.ts). */
export function scryptCrypto(params: ScryptParams = DEFAULT_SCRYPT): SecretCrypto {
  return { hashSecret: (secret) => hashPassword(secret, params), verifySecret: (secret, hash) => verifyPassword(secret, hash) };
}
