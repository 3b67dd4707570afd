import { duration, formatDuration, parseDuration } from '../../src/core/duration';

test.each([
  ['90s', 90_000],
  ['15m', 900_000],
  ['24h', 86_400_000],
  ['2w', 14 * 86_400_000],
  ['250ms', 250],
  ['1.5h', 5_400_000],
  ['1h30m', 5_400_000],
  ['1h 30m', 5_400_000],
  ['1d12h', 36 * 3_600_000],
  ['2m30s500ms', 150_500],
  [' 7d ', 7 * 86_400_000],
  [1000, 1000],
] as const)('%p is %i ms', (input, ms) => {
  expect(parseDuration(input)).toBe(ms);
});

test.each(['', 'soon', '1h30', '30m1h', '1h1h', 'h', '1 hour', '1h-30m', '-5m', '1x'])('%p is refused with the accepted forms', (input) => {
  expect(() => parseDuration(input)).toThrow(/invalid duration/);
});

test('a unit out of order says how to write it', () => {
  expect(() => parseDuration('30m1h')).toThrow('name each unit once, largest first: e.g. 1h30m');
});

test('the zod form yields milliseconds and reports bad input as an issue', () => {
  expect(duration().parse('1h30m')).toBe(5_400_000);
  const r = duration().safeParse('1h30');
  expect(r.success).toBe(false);
  expect(r.error?.issues[0].message).toContain('invalid duration "1h30"');
});

test('formatDuration shows the largest unit', () => {
  expect(formatDuration(5_400_000)).toBe('1.5h');
  expect(formatDuration(90 * 86_400_000)).toBe('90d');
  expect(formatDuration(250)).toBe('250ms');
});
