'use strict';
// A Tributary functions worker in Node.js, with Node's standard library only.
//
//   node worker.js [functions.js]
//
// It speaks the JSON-lines protocol of docs/functions-protocol.md: one JSON object per line,
// invocations on stdin, results and logs on stdout. The functions are the async (or plain)
// functions the module exports, by name; their triggers, bindings, retry policy and filter
// are in tributary.toml, so the ready line describes none (`functions: []`).
//
// A handler is called as `handler(documents, context)` and returns
//   - nothing: the batch succeeded and sets no output binding;
//   - `{ outputs: { binding: [documents] } }`: the documents to write per output binding;
//   - `{ batchItemFailures: [{ itemIdentifier: id }] }`: these items failed (the others
//     succeeded); the host retries and dead-letters only them. Both keys may be given.
// A thrown error fails the whole batch: the host retries it, then isolates the failing items.
//
// `context` has `functionName`, `invocationId`, `lease`, `attempt`, `inputs` (documents per
// input binding), `outputs` (the names of the output bindings) and `log(level, message)`;
// console.log/info/warn/error/debug inside a handler are log lines of its invocation too.

const path = require('path');
const readline = require('readline');
const util = require('util');
const { AsyncLocalStorage } = require('async_hooks');

const LEVELS = new Set(['trace', 'debug', 'info', 'warning', 'error', 'critical']);

// stdout carries the protocol: nothing else may write to it.
const writeStdout = process.stdout.write.bind(process.stdout);
function send(message) {
  writeStdout(JSON.stringify(message) + '\n');
}
// The host has gone away (EPIPE): there is no one left to answer.
process.stdout.on('error', () => process.exit(0));

// The invocation the current code runs for, across awaits (for console.* calls).
const running = new AsyncLocalStorage();

function sendLog(invocation, level, message) {
  send({
    type: 'log',
    id: invocation ? invocation.id : null,
    function: invocation ? invocation.function : null,
    level: LEVELS.has(level) ? level : 'info',
    message: String(message),
  });
}

// console.* becomes protocol log lines (of the running invocation, if any).
for (const [method, level] of [['log', 'info'], ['info', 'info'], ['warn', 'warning'],
  ['error', 'error'], ['debug', 'debug'], ['trace', 'trace']]) {
  console[method] = (...args) => sendLog(running.getStore(), level, util.format(...args));
}

function fatal(error) {
  send({ type: 'fatal', error });
  process.exit(1);
}

// What went wrong loading the module, on one line (a SyntaxError's location is in its stack).
function loadError(error) {
  if (!(error instanceof Error)) {
    return String(error);
  }
  // Node's "Require stack:" lines after a missing module's name say nothing more here.
  const message = error.code === 'MODULE_NOT_FOUND' ? error.message.split('\n')[0] : error.message;
  let text = `${error.name}: ${message}`;
  const first = String(error.stack || '').split('\n')[0];
  if (error instanceof SyntaxError && first && !first.startsWith(error.name)) {
    text += ` (at ${first})`;
  }
  return text.replace(/\s*\n\s*/g, ' ');
}

const modulePath = path.resolve(process.argv[2] || 'functions.js');
let handlers;
try {
  handlers = require(modulePath);
} catch (error) {
  fatal(`cannot load ${modulePath}: ${loadError(error)}`);
}
const names = Object.keys(handlers).filter((name) => typeof handlers[name] === 'function');
if (names.length === 0) {
  fatal(`${modulePath} exports no functions; export one per [[function]] of tributary.toml, e.g. exports.project_orders = async (documents, context) => ...`);
}

// The stack without the frames of worker.js and the Node internals that called the handler.
function handlerStack(stack) {
  const lines = String(stack).split('\n');
  const ours = lines.findIndex((line) => /^\s+at /.test(line) && line.includes(__filename));
  return (ours > 0 ? lines.slice(0, ours) : lines).join('\n');
}

function errorText(error) {
  if (error instanceof Error) {
    return { error: `${error.name}: ${error.message}`, traceback: error.stack ? handlerStack(error.stack) : null };
  }
  return { error: `non-Error thrown: ${util.inspect(error)}`, traceback: null };
}

// The result line for what a handler returned.
function resultOf(id, returned) {
  const result = { type: 'result', id, ok: true, outputs: {}, failed_items: [] };
  if (returned === undefined || returned === null) {
    return result;
  }
  if (typeof returned !== 'object') {
    throw new TypeError(`a handler returns nothing, { outputs }, or { batchItemFailures }, not ${util.inspect(returned)}`);
  }
  for (const [binding, documents] of Object.entries(returned.outputs || {})) {
    if (documents !== undefined && documents !== null) {
      result.outputs[binding] = Array.isArray(documents) ? documents : [documents];
    }
  }
  for (const failure of returned.batchItemFailures || []) {
    const id = failure && failure.itemIdentifier;
    if (typeof id !== 'string' && typeof id !== 'number') {
      throw new TypeError(`a batchItemFailures entry has no itemIdentifier: ${util.inspect(failure)}`);
    }
    result.failed_items.push(String(id));
  }
  return result;
}

async function invoke(message) {
  const invocation = { id: message.id, function: message.function };
  const handler = names.includes(message.function) ? handlers[message.function] : undefined;
  if (!handler) {
    return {
      type: 'result', id: message.id, ok: false,
      error: `Error: ${path.basename(modulePath)} exports no function '${message.function}' (it has: ${names.join(', ')})`,
      traceback: null,
    };
  }
  const given = message.context || {};
  const context = {
    functionName: message.function,
    invocationId: given.invocation_id,
    lease: given.lease,
    attempt: given.attempt,
    inputs: message.inputs || {},
    outputs: message.outputs || [],
    log: (level, ...parts) => sendLog(invocation, level, util.format(...parts)),
  };
  try {
    const returned = await running.run(invocation, () => handler(message.documents || [], context));
    return resultOf(message.id, returned);
  } catch (error) {
    return { type: 'result', id: message.id, ok: false, ...errorText(error) };
  }
}

// Sends a result; one that cannot be JSON (a cycle, a BigInt) is a failure of the invocation,
// so that the host still gets an answer.
function sendResult(result) {
  let line;
  try {
    line = JSON.stringify(result);
  } catch (error) {
    line = JSON.stringify({
      type: 'result', id: result.id, ok: false,
      error: `${error.name}: the function's result cannot be sent as JSON: ${error.message}`,
      traceback: null,
    });
  }
  writeStdout(line + '\n');
}

const inFlight = new Set();

function onLine(line) {
  if (!line.trim()) {
    return;
  }
  let message;
  try {
    message = JSON.parse(line);
  } catch (error) {
    sendLog(null, 'warning', `worker.js: ignored a line that is not JSON: ${line.slice(0, 200)}`);
    return;
  }
  if (!message || message.type !== 'invoke') {
    sendLog(null, 'warning', `worker.js: ignored a message of type ${message && message.type}`);
    return;
  }
  // Not awaited: invocations run concurrently, each answered when it finishes.
  const done = invoke(message).then(sendResult);
  inFlight.add(done);
  done.finally(() => inFlight.delete(done));
}

// A promise a handler dropped without awaiting: report it instead of crashing the worker
// (which would fail every invocation in flight on it).
process.on('unhandledRejection', (reason) => {
  const { error, traceback } = errorText(reason);
  sendLog(running.getStore() || null, 'error', `unhandled promise rejection: ${traceback || error}`);
});

const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
input.on('line', onLine);
// The host closes stdin to stop the worker: finish what is in flight, then exit (even if a
// handler left a timer or a socket open).
input.on('close', () => {
  Promise.allSettled([...inFlight]).then(() => process.exit(0));
});

sendLog(null, 'debug', `worker.js: serving ${names.join(', ')} from ${modulePath}`);
send({ type: 'ready', functions: [] });
