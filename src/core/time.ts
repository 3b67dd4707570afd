import { types } from 'node:util';

/**
 * A valid Date from any realm. `instanceof Date` fails for Dates made by Node's core
 * modules when the caller runs in another realm (jest's test sandbox), so we ask V8.
 */
export function isValidDate(v: unknown): v is Date {
  return types.isDate(v) && !Number.isNaN((v as Date).getTime());
}
