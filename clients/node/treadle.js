'use strict';
// A small Node.js client for treadle's AdmissionService, on @grpc/grpc-js with
// the .proto files loaded at run time by @grpc/proto-loader (no generated code).
//
//   const { TreadleClient } = require('./treadle');
//   const client = new TreadleClient('127.0.0.1:7733');
//   const workflow = await client.submit({ manifest: text, parameters: { who: 'node' } });
//   for await (const state of client.watch(workflow.metadata.name)) console.log(state.status.phase);

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const DEFAULT_SERVER = '127.0.0.1:7733';
// Every unary call gets a deadline; a watch gets one per connection and resumes after it.
const CALL_TIMEOUT_MS = 30_000;
const WATCH_CONNECTION_MS = 3_600_000;
const WATCH_RETRIES = 5;
const RETRY_DELAY_MS = 1_000;

const LOADER_OPTIONS = {
  keepCase: false, // lowerCamelCase field names, as in proto3 JSON
  longs: String,
  enums: String, // 'WORKFLOW_PHASE_SUCCEEDED' rather than 3
  defaults: true, // absent fields read as their zero value
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

// google.rpc.Status and the details treadle sends, declared here so that no
// googleapis .proto files are needed (field numbers as in google/rpc/*.proto).
const RPC_STATUS_TYPES = {
  nested: {
    google: {
      nested: {
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'PackedDetail', id: 3 },
              },
            },
            // google.protobuf.Any, under another name so that protobufjs leaves it as bytes.
            PackedDetail: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            BadRequest: {
              fields: { fieldViolations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: 'string', id: 1 }, description: { type: 'string', id: 2 } },
                },
              },
            },
            PreconditionFailure: {
              fields: { violations: { rule: 'repeated', type: 'Violation', id: 1 } },
              nested: {
                Violation: {
                  fields: {
                    type: { type: 'string', id: 1 },
                    subject: { type: 'string', id: 2 },
                    description: { type: 'string', id: 3 },
                  },
                },
              },
            },
            ResourceInfo: {
              fields: {
                resourceType: { type: 'string', id: 1 },
                resourceName: { type: 'string', id: 2 },
                owner: { type: 'string', id: 3 },
                description: { type: 'string', id: 4 },
              },
            },
          },
        },
      },
    },
  },
};

function loadAdmission() {
  const definition = protoLoader.loadSync('treadle/admission/v1/admission.proto', LOADER_OPTIONS);
  return grpc.loadPackageDefinition(definition).treadle.admission.v1.AdmissionService;
}

const statusTypes = protoLoader.fromJSON(RPC_STATUS_TYPES, { ...LOADER_OPTIONS, includeDirs: [] });

/** The google.rpc.Status a failed call carries, with its details decoded; null when there is none. */
function richStatus(error) {
  const raw = error && error.metadata ? error.metadata.get('grpc-status-details-bin')[0] : undefined;
  if (!raw) return null;
  const status = statusTypes['google.rpc.Status'].deserialize(raw);
  const details = status.details.map((packed) => {
    const kind = packed.typeUrl.slice(packed.typeUrl.lastIndexOf('/') + 1);
    const type = statusTypes[kind];
    return type ? { kind, ...type.deserialize(packed.value) } : { kind };
  });
  return { code: status.code, message: status.message, details };
}

/** The name of a failed call's status code, like 'INVALID_ARGUMENT'. */
function codeName(error) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === error.code) || String(error.code);
}

/** A one-paragraph description of a failed call: code, message and each detail. */
function describeError(error) {
  const lines = [`${codeName(error)}: ${error.details || error.message}`];
  const status = richStatus(error);
  for (const detail of status ? status.details : []) {
    if (detail.kind === 'google.rpc.BadRequest') {
      for (const v of detail.fieldViolations) lines.push(`  field ${v.field}: ${v.description}`);
    } else if (detail.kind === 'google.rpc.PreconditionFailure') {
      for (const v of detail.violations) lines.push(`  precondition ${v.type} ${v.subject}: ${v.description}`);
    } else if (detail.kind === 'google.rpc.ResourceInfo') {
      lines.push(`  resource ${detail.resourceType} ${JSON.stringify(detail.resourceName)}`);
    }
  }
  return lines.join('\n');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const deadlineIn = (ms) => new Date(Date.now() + ms);

class TreadleClient {
  constructor(server = process.env.TREADLE_SERVER || DEFAULT_SERVER, credentials = grpc.credentials.createInsecure()) {
    const AdmissionService = loadAdmission();
    this.stub = new AdmissionService(server, credentials);
  }

  close() {
    this.stub.close();
  }

  /** Calls a unary RPC with a deadline; resolves to its response. */
  unary(method, request, timeoutMs = CALL_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.stub[method](request, { deadline: deadlineIn(timeoutMs) }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  /** SubmitWorkflow: resolves to the workflow as admitted. */
  async submit(request) {
    return (await this.unary('SubmitWorkflow', request)).workflow;
  }

  /** GetWorkflow: the workflow with its status and every node. */
  async get(name) {
    return (await this.unary('GetWorkflow', { name })).workflow;
  }

  /**
   * WatchWorkflow as an async iterator of workflow states, ending once the workflow is final.
   * A connection that fails with UNAVAILABLE or reaches its deadline is reopened from the last
   * resource version, so no state is repeated; states that passed meanwhile fold into the next one.
   */
  async *watch(name, { resourceVersion = '', connectionMs = WATCH_CONNECTION_MS } = {}) {
    let lastVersion = resourceVersion;
    let retriesLeft = WATCH_RETRIES;
    for (;;) {
      const call = this.stub.WatchWorkflow(
        { name, resourceVersion: lastVersion },
        { deadline: deadlineIn(connectionMs) },
      );
      const versionBefore = lastVersion;
      try {
        for await (const event of call) {
          lastVersion = event.workflow.metadata.resourceVersion;
          yield event.workflow;
        }
        return;
      } catch (error) {
        if (lastVersion !== versionBefore) retriesLeft = WATCH_RETRIES;
        const retryable = error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED;
        if (!retryable || retriesLeft-- === 0) throw error;
        await sleep(RETRY_DELAY_MS);
      } finally {
        call.cancel();
      }
    }
  }
}

module.exports = { TreadleClient, codeName, describeError, richStatus, DEFAULT_SERVER };
