#!/usr/bin/env node
'use strict';
// The compiled CLI; `npm run build` produces dist/.
// The pinned AWS SDK warns on every start that *future* releases will need Node 22. That
// multi-line warning would interleave with our JSON logs on stderr; the lockfile pins the
// SDK, so the notice says nothing about this build. An operator can still opt back in.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = require('../dist/src/cli.js');
main().then((code) => {
  process.exitCode = code;
  // Long-running commands (daemon, demo --daemon) resolve only when they stop; anything
  // still holding the loop after that is a leak we refuse to hang on.
  setTimeout(() => process.exit(code), 10_000).unref();
});
