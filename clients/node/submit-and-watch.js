#!/usr/bin/env node
'use strict';
// Submit a workflow manifest to treadle, watch it to completion, and print its outputs.
//
//   node submit-and-watch.js [--server HOST:PORT] [-p NAME=VALUE]... FILE
//
// Exit codes: 0 the workflow Succeeded, 1 it Failed or hit an Error, 2 bad
// usage or a manifest the server rejected, 3 any other failed call.

const fs = require('node:fs');
const { TreadleClient, codeName, describeError, DEFAULT_SERVER } = require('./treadle');

const USAGE = `usage: submit-and-watch.js [--server HOST:PORT] [-p NAME=VALUE]... FILE
  --server HOST:PORT     treadle server (default: $TREADLE_SERVER or ${DEFAULT_SERVER})
  -p, --parameter N=V    override a workflow parameter (repeatable)`;
const EXIT = { succeeded: 0, failed: 1, usage: 2, rpc: 3 };
const REJECTED = new Set(['INVALID_ARGUMENT', 'ALREADY_EXISTS', 'NOT_FOUND']);

function parseArgs(argv) {
  const options = { server: process.env.TREADLE_SERVER || DEFAULT_SERVER, parameters: {}, file: '' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--server') {
      options.server = argv[++i];
    } else if (arg === '-p' || arg === '--parameter') {
      const pair = argv[++i] || '';
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`${arg} takes NAME=VALUE, got ${JSON.stringify(pair)}`);
      options.parameters[pair.slice(0, at)] = pair.slice(at + 1);
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new Error(`unknown option ${arg}`);
    } else if (options.file) {
      throw new Error('one FILE only');
    } else {
      options.file = arg;
    }
  }
  if (!options.file) throw new Error('FILE is required');
  if (!options.server) throw new Error('--server needs HOST:PORT');
  return options;
}

/** 'WORKFLOW_PHASE_SUCCEEDED' -> 'Succeeded', as Argo writes phases. */
function phaseWord(phase) {
  const word = phase.replace(/^(WORKFLOW|NODE)_PHASE_/, '').toLowerCase();
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function printOutputs(outputs, indent) {
  const lines = [];
  if (outputs.result) lines.push(`result: ${outputs.result.split('\n').join(`\n${indent}        `)}`);
  if (outputs.exitCode) lines.push(`exit code: ${outputs.exitCode}`);
  for (const p of outputs.parameters) lines.push(`parameter ${p.name} = ${p.value}`);
  for (const a of outputs.artifacts) {
    const where = a.stored && a.stored.key ? ` (${a.stored.key}, ${a.stored.sizeBytes} bytes)` : '';
    lines.push(`artifact ${a.name}${where}`);
  }
  for (const line of lines) console.log(`${indent}${line}`);
}

function printResult(workflow) {
  const { status } = workflow;
  console.log(`phase: ${phaseWord(status.phase)}`);
  if (status.message) console.log(`message: ${status.message}`);
  const startedMs = (node) => (node.startedAt ? Number(node.startedAt.seconds) * 1e3 + node.startedAt.nanos / 1e6 : 0);
  const nodes = Object.values(status.nodes).sort(
    (a, b) => startedMs(a) - startedMs(b) || a.displayName.localeCompare(b.displayName),
  );
  for (const node of nodes) {
    const type = node.type.replace('NODE_TYPE_', '').toLowerCase();
    console.log(`node ${node.displayName} [${type}] ${phaseWord(node.phase)}${node.message ? `: ${node.message}` : ''}`);
    if (node.outputs) printOutputs(node.outputs, '  ');
  }
  if (status.outputs && (status.outputs.parameters.length || status.outputs.artifacts.length)) {
    console.log('workflow outputs:');
    printOutputs(status.outputs, '  ');
  }
}

async function main(argv) {
  let options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    console.error(`submit-and-watch: ${error.message}\n${USAGE}`);
    return EXIT.usage;
  }
  let manifest;
  try {
    manifest = fs.readFileSync(options.file === '-' ? 0 : options.file, 'utf8');
  } catch (error) {
    console.error(`submit-and-watch: cannot read ${options.file}: ${error.message}`);
    return EXIT.usage;
  }
  const client = new TreadleClient(options.server);
  try {
    const admitted = await client.submit({ manifest, parameters: options.parameters });
    const name = admitted.metadata.name;
    console.log(`submitted ${name}`);
    let last = admitted;
    for await (const workflow of client.watch(name, { resourceVersion: admitted.metadata.resourceVersion })) {
      console.log(`${name}: ${phaseWord(workflow.status.phase)} (resource version ${workflow.metadata.resourceVersion})`);
      last = workflow;
    }
    printResult(last);
    return last.status.phase === 'WORKFLOW_PHASE_SUCCEEDED' ? EXIT.succeeded : EXIT.failed;
  } catch (error) {
    if (error.code === undefined) throw error;
    console.error(`submit-and-watch: ${describeError(error)}`);
    return REJECTED.has(codeName(error)) ? EXIT.usage : EXIT.rpc;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`submit-and-watch: ${error.stack || error}`);
    process.exit(EXIT.rpc);
  },
);
