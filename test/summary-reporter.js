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
    // The slowest tests, so a CI log shows which ones come near their timeout on a loaded machine.
    const slow = results.testResults
      .flatMap((file) => file.testResults.map((t) => ({ name: `${file.testFilePath.replace(/^.*?\/test\//, 'test/')} › ${t.fullName}`, ms: t.duration ?? 0 })))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5);
    if (slow.length > 0 && slow[0].ms > 0) process.stdout.write(`slowest: ${slow.map((t) => `${t.name} ${(t.ms / 1000).toFixed(1)} s`).join('; ')}\n`);
  }
}
module.exports = SummaryReporter;
