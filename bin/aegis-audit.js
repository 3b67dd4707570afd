#!/usr/bin/env node
'use strict';
// The compiled CLI; `npm run build` produces dist/.
const { main } = require('../dist/src/cli.js');
main().then((code) => {
  process.exitCode = code;
  // Long-running commands (daemon, demo --daemon) resolve only when they stop; anything
  // still holding the loop after that is a leak we refuse to hang on.
  setTimeout(() => process.exit(code), 10_000).unref();
});
