// @vitest-environment jsdom
import { expect, it } from "vitest";
import { readSessionIdCookie } from "../cookie.js";
import { generateSessionId } from "./id.js";
import { cookieStore } from "./stores.js";

it("the cookie the client store writes is the one the server helper reads", () => {
  const id = generateSessionId();
  cookieStore("my-app-session").set(id);
  expect(readSessionIdCookie(document.cookie, "my-app-session")).toBe(id);
  expect(readSessionIdCookie(document.cookie, "walkin-session-id")).toBeNull();
  expect(document.cookie).toContain("my-app-session=");
});
