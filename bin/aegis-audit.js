#!/usr/bin/env node
'use strict';
// The compiled CLI; `npm run build` produces dist/.
// `--version` and `checks list` are answered from the build's check catalog without loading
// the command line's parser or any check (dist/src/app/check-catalog.js); everything else,
// and those too when the catalog is not of this build, runs the full command line.
// Node 22.1 and later can keep the bytecode of the modules a command loads in a cache on disk,
// so that the next command compiles none of them again (as TypeScript's own command does). The
// cache is the user's own — $XDG_CACHE_HOME or ~/.cache — not the shared temporary directory:
// code from it runs in a process that reads the deployment's secrets. NODE_COMPILE_CACHE sets
// another directory, NODE_DISABLE_COMPILE_CACHE=1 turns it off; older Node has no such cache, and
// a directory that cannot be written only leaves every module compiled, as without it.
try {
  const { enableCompileCache } = require('node:module');
  if (typeof enableCompileCache === 'function' && !process.env.NODE_COMPILE_CACHE) {
    const { homedir } = require('node:os');
    const { isAbsolute, join } = require('node:path');
    // A relative XDG_CACHE_HOME is ignored (XDG's rule), and a cache is never made relative to
    // the working directory.
    const xdg = process.env.XDG_CACHE_HOME;
    const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
    if (isAbsolute(base)) enableCompileCache(join(base, 'aegis-audit', 'node-compile-cache'));
  }
} catch {
  // No cache: every module is compiled, as without it.
}
// A reader that stops early (`aegis-audit checks list | head`) closes the pipe: the rest of the
// output is dropped, not thrown as an unhandled 'error' event; the command still finishes and
// exits with its own code (a CI gate's verdict is not lost to a closed pipe).
process.stdout.on('error', (e) => {
  if (e && (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED')) return;
  throw e;
});
const quick = require('../dist/src/app/check-catalog.js').quickCommand(process.argv.slice(2), (s) => process.stdout.write(s));
if (quick !== undefined) {
  process.exitCode = quick;
} else {
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
}
