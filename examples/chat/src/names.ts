const ADJECTIVES = ["Amber", "Brisk", "Calm", "Daring", "Eager", "Fuzzy", "Gentle", "Happy", "Jolly", "Keen", "Lucky", "Mellow", "Nimble", "Plucky", "Quiet", "Rosy", "Sunny", "Witty"];
const ANIMALS = ["Otter", "Heron", "Lynx", "Panda", "Fox", "Koala", "Puffin", "Badger", "Gecko", "Ibis", "Marten", "Newt", "Quokka", "Raven", "Seal", "Wombat"];

/** A friendly random name, e.g. "Plucky Otter". */
export function randomName(): string {
  const pick = <T,>(list: T[]) => list[Math.floor(Math.random() * list.length)]!;
  return `${pick(ADJECTIVES)} ${pick(ANIMALS)}`;
}
