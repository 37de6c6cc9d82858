#!/usr/bin/env node
// `calyxctl`: everything is in runCalyxctl; this only binds it to the process.
import { runCalyxctl } from '../run.js';

process.exitCode = await runCalyxctl(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  stdin: process.stdin,
});
