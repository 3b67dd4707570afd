/**
 * A plain closing line after jest's own summary, for CI logs and people scrolling back:
 * "N passed, N failed, N skipped". Also says when a suite failed to run at all (a suite that
 * does not compile has no failed test, yet the run failed).
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const broken = results.numRuntimeErrorTestSuites;
    const line = `${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests + results.numTodoTests} skipped`;
    process.stdout.write(`\n${line}${broken ? `; ${broken} test suite(s) failed to run` : ''}\n`);
  }
}
module.exports = SummaryReporter;
