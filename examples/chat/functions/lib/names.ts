/**
 * Display names: the friendly random name a visitor gets at once, and the rule every name
 * (generated or chosen) follows.
 */
import { WalkinError } from "walkin/server";

const ADJECTIVES = ["Amber", "Brisk", "Calm", "Daring", "Eager", "Fuzzy", "Gentle", "Happy", "Jolly", "Keen", "Lucky", "Mellow", "Nimble", "Plucky", "Quiet", "Rosy", "Sunny", "Witty"];
const ANIMALS = ["Otter", "Heron", "Lynx", "Panda", "Fox", "Koala", "Puffin", "Badger", "Gecko", "Ibis", "Marten", "Newt", "Quokka", "Raven", "Seal", "Wombat"];

export const MAX_NAME = 40;

/** "Sunny Otter": what an anonymous visitor is called until they rename themselves. */
export function generateName(): string {
  const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}

/** The trimmed name, or a WalkinError the UI shows next to the field. */
export function cleanName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > MAX_NAME) {
    throw new WalkinError(`Names are 1 to ${MAX_NAME} characters.`, { data: { field: "name" } });
  }
  return trimmed;
}
