/**
 * Test files in jest's own order (on a machine with no timing cache: largest file first),
 * except that the few files that run for minutes start first: started last, one of them
 * would run alone on one worker at the end of the run while the other worker sits idle.
 * Their durations, on a 2-core machine running both workers, are printed by the summary
 * reporter's "slowest" line.
 */
const Sequencer = require('@jest/test-sequencer').default;

const LONG_FIRST = [
  'test/fleet/chain-million.test.ts',
  'test/fleet/many.test.ts',
  'test/alerts/alerts.test.ts',
  'test/e2e/paging-replicas.test.ts',
];

class LongFirst extends Sequencer {
  sort(tests) {
    const rank = (t) => {
      const path = t.path.split('\\').join('/');
      const i = LONG_FIRST.findIndex((p) => path.endsWith(p));
      return i < 0 ? LONG_FIRST.length : i;
    };
    // Array.prototype.sort is stable: the rest keep jest's order.
    return [...super.sort(tests)].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = LongFirst;
